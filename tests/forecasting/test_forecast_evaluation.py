"""Rolling-origin evaluation: arithmetic, output formats, the CLI entry, one real trace."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from forecasting import History, load_trace
from forecasting.evaluation import (
    EvalResult,
    evaluate,
    format_table,
    main,
    parse_horizons,
    results_to_json,
)
from forecasting.traces import Trace

SeriesFactory = Callable[..., History]

HORIZON_CASES = {
    "5m,15m,60m": (300.0, 900.0, 3600.0),
    " 90s , 1h ": (90.0, 3600.0),
    "2d": (172_800.0,),
    "300": (300.0,),  # bare number: seconds
    "5m,5m": (300.0,),
}


@pytest.mark.parametrize("text", HORIZON_CASES, ids=list(HORIZON_CASES))
def test_parse_horizons(text: str) -> None:
    assert parse_horizons(text) == HORIZON_CASES[text]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("", "no horizon"), ("5x", "bad horizon '5x'"), ("0m", "must be positive"), ("-5m", "bad")],
)
def test_parse_horizons_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_horizons(text)


def _trace(history: History, name: str = "golden") -> Trace:
    counts = history.values * history.step_s
    return Trace(name=name, start_s=history.start_s, step_s=history.step_s, counts=counts)


def test_evaluate_shapes_and_baseline_arithmetic(daily: SeriesFactory) -> None:
    trace = _trace(daily(days=4, step_s=600.0, seed=2))
    results = evaluate(trace, (300.0, 3600.0), ["persistence", "seasonal-naive"])
    assert [(r.model, r.horizon_s) for r in results] == [
        ("persistence", 300.0),
        ("persistence", 3600.0),
        ("seasonal-naive", 300.0),
        ("seasonal-naive", 3600.0),
    ]
    for r in results:
        assert r.mae > 0 and 0.0 <= r.coverage <= 1.0 and r.fit_predict_ms >= 0.0
    # The persistence model is baseline A and seasonal naive (daily) is baseline B, so the
    # better of the two scores exactly 1 and the other at least 1.
    for horizon in (300.0, 3600.0):
        rel = sorted(r.rel_mae for r in results if r.horizon_s == horizon)
        assert rel[0] == pytest.approx(1.0) and rel[1] >= 1.0


def test_missing_targets_are_excluded_not_zero(daily: SeriesFactory) -> None:
    history = daily(days=4, step_s=600.0, seed=2, daily_amp=0.0)  # flat 20 rps + noise
    values = history.values.copy()
    values[-100:-60] = np.nan  # a gap inside the evaluation quarter
    zeros = np.where(np.isnan(values), 0.0, values)

    def mae(h: History) -> float:
        (r,) = evaluate(_trace(h), (3600.0,), ["persistence"], zero_runs_as_missing_min=None)
        return r.mae

    with_gap, as_zero = mae(History(0.0, 600.0, values)), mae(History(0.0, 600.0, zeros))
    without = mae(history)
    # Excluded, the gap leaves the MAE of the order of the complete series' (noise, ~0.2
    # rps); read as zeros, its targets would add errors of ~20 rps each.
    assert with_gap < 1.5 * without
    assert as_zero > 2.0 * with_gap


def test_evaluate_rejects_bad_input(daily: SeriesFactory) -> None:
    trace = _trace(daily(days=3, step_s=600.0))
    with pytest.raises(ValueError, match="unknown model"):
        evaluate(trace, (300.0,), ["persistence", "nope"])
    with pytest.raises(ValueError, match="horizons"):
        evaluate(trace, (0.0,), ["persistence"])
    tiny = Trace(name="tiny", start_s=0.0, step_s=60.0, counts=np.ones(3))
    with pytest.raises(ValueError, match="too short"):
        evaluate(tiny, (300.0,), ["persistence"])


def test_table_and_json() -> None:
    results = [EvalResult("auto", 300.0, 1.5, 0.9, 0.91, 12.0, scored=24)]
    table = format_table(results)
    assert "auto" in table and "5m" in table and "0.900" in table
    assert results_to_json(results) == {
        "results": [
            {
                "model": "auto",
                "horizon_s": 300.0,
                "mae": 1.5,
                "rel_mae": 0.9,
                "coverage": 0.91,
                "fit_predict_ms": 12.0,
                "scored_origins": 24,
            }
        ]
    }
    nan = EvalResult("auto", 300.0, float("nan"), float("nan"), float("nan"), 1.0)
    assert results_to_json([nan])["results"][0]["mae"] is None  # JSON has no NaN


def _write_trace(path: Path, history: History) -> Path:
    lines = ["timestamp_s,requests"]
    for i, v in enumerate(history.values):
        lines.append(f"{history.start_s + i * history.step_s:.0f},{v * history.step_s:.0f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_main_prints_table_and_writes_json(
    tmp_path: Path, daily: SeriesFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _write_trace(tmp_path / "t.csv", daily(days=3, step_s=600.0))
    out = tmp_path / "r.json"
    argv = ["--trace", str(trace), "--horizons", "5m,60m", "--models", "persistence,auto"]
    assert main([*argv, "--json", str(out)]) == 0
    assert "persistence" in capsys.readouterr().out
    rows = json.loads(out.read_text())["results"]
    assert {(r["model"], r["horizon_s"]) for r in rows} == {
        (m, h) for m in ("persistence", "auto") for h in (300.0, 3600.0)
    }


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--trace", "/nonexistent.csv"], "cannot read trace"),
        (["--trace", "{trace}", "--horizons", "5x"], "bad horizon"),
        (["--trace", "{trace}", "--models", "prophet"], "unknown model"),
        (["--horizons", "5m"], "required"),
    ],
)
def test_main_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    fragment: str,
    tmp_path: Path,
    daily: SeriesFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trace = _write_trace(tmp_path / "t.csv", daily(days=1, step_s=600.0))
    assert main([a.replace("{trace}", str(trace)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_main_rejects_a_file_with_another_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "util.csv"
    bad.write_text("timestamp_s,mean_util\n0,1\n60,2\n")
    assert main(["--trace", str(bad)]) == 2
    assert "expected header" in capsys.readouterr().err


def test_real_trace_auto_beats_the_baselines_an_hour_ahead(traces_dir: Path) -> None:
    # One real trace, one horizon, inside the normal suite's budget (a few seconds):
    # ServeGen m-large, 10-minute steps, 14 days, with level shifts and hourly bursts.
    trace = load_trace(traces_dir / "servegen_m-large_per_10min.csv")
    (result,) = evaluate(trace, (3600.0,), ["auto"])
    assert result.rel_mae <= 1.0
    assert 0.85 <= result.coverage <= 0.95
