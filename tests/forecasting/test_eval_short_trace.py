"""``forecast-eval`` on a trace too short for a horizon says why, instead of printing ``nan``.

Before, a 3-hour trace evaluated at 60 m printed ``nan`` rows with nothing said: its only
origin (the last quarter starts at 2 h 15 min) has 45 min of trace after it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.evaluation import format_span
from sloscale.cli import main


def write_trace(path: Path, minutes: int) -> Path:
    rows = [f"{60 * i},{100 + (i % 7)}" for i in range(minutes)]
    path.write_text("timestamp_s,requests\n" + "\n".join(rows) + "\n")
    return path


def test_a_horizon_the_trace_cannot_score_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = write_trace(tmp_path / "three-hours.csv", 180)
    args = [
        "forecast-eval",
        "--trace",
        str(trace),
        "--horizons",
        "5m,60m",
        "--models",
        "persistence",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "nan" not in out
    row_5m, row_60m = (line for line in out.splitlines() if line.startswith("persistence"))
    assert row_5m.split()[1] == "5m" and float(row_5m.split()[2]) >= 0
    assert row_60m.split()[1] == "60m"
    assert "not scored: none of the 1 origins in the evaluated span" in row_60m
    assert "45m" in row_60m and "has 60m of complete trace after it" in row_60m


def test_no_horizon_scored_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write_trace(tmp_path / "three-hours.csv", 180)
    args = ["forecast-eval", "--trace", str(trace), "--horizons", "60m", "--models", "persistence"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("sloscale forecast-eval: error: not scored: ")
    assert "use a shorter horizon or a longer trace" in captured.err


@pytest.mark.parametrize(
    ("minutes", "span"),
    [
        pytest.param(58, "58 minutes", id="under-an-hour"),  # the Azure code trace's span
        pytest.param(180, "3.0 hours", id="hours"),
        pytest.param(3 * 1440, "3.0 days", id="days"),
    ],
)
def test_the_header_gives_a_short_trace_s_span_in_a_unit_that_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], minutes: int, span: str
) -> None:
    """A trace under a day read ``0.0 days`` (or ``0.1 days`` for three hours)."""
    trace = write_trace(tmp_path / "short.csv", minutes)
    args = ["forecast-eval", "--trace", str(trace), "--horizons", "5m", "--models", "persistence"]
    assert main(args) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header == f"short: step 60 s, {span}"


def test_format_span_units() -> None:
    assert format_span(90.0) == "90 s"
    assert format_span(120.0) == "2 minutes"
    assert format_span(7199.0) == "120 minutes"
    assert format_span(7200.0) == "2.0 hours"
    assert format_span(86399.0) == "24.0 hours"
    assert format_span(86400.0) == "1.0 days"
    assert format_span(14 * 86400.0) == "14.0 days"
