"""``forecast-eval`` on a trace too short for a horizon says why, instead of printing ``nan``.

Before, a 3-hour trace evaluated at 60 m printed ``nan`` rows with nothing said: its only
origin (the last quarter starts at 2 h 15 min) has 45 min of trace after it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
