"""Traces that would cost gigabytes are refused at load, before anything is allocated (B8).

A 52 KB trace with a 1 us step made ``forecast-eval`` use 7 GB; a 10^7-row trace cost about
2.8 GB in the demo, the bench and ``forecast-eval`` alike. Each CLI now exits 2 with one
line naming the limit (``forecasting.traces``: ``MIN_STEP_S``, ``MAX_ROWS``, ``MAX_SPAN_S``,
``MAX_TRACE_BYTES``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MAX_ROWS = 1_000_000  # the documented limits (README, forecasting.traces)
MAX_TRACE_BYTES = 64 * 2**20

HEADER = "timestamp_s,requests\n"
COMMANDS = {
    "demo": ["demo", "--no-serve", "--quiet", "--hours", "0.1", "--trace"],
    "bench": ["bench", "--hours", "0.1", "--trace"],
    "forecast-eval": ["forecast-eval", "--horizons", "5m", "--trace"],
}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sloscale.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_refused(command: str, trace: Path, needle: str) -> None:
    proc = run_cli(*COMMANDS[command], str(trace))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def microsecond_step(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 52 KB: 3,500 rows one microsecond apart."""
    path = tmp_path_factory.mktemp("traces") / "microsecond.csv"
    path.write_text(HEADER + "".join(f"{i / 1e6:.6f},{1 + i % 7}\n" for i in range(3500)))
    return path


@pytest.fixture(scope="module")
def too_many_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One row more than the limit, one second apart (11.6 days: within the span)."""
    path = tmp_path_factory.mktemp("traces") / "rows.csv"
    path.write_text(HEADER + "".join(f"{i},{1 + i % 7}\n" for i in range(MAX_ROWS + 1)))
    return path


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_microsecond_step_is_refused(command: str, microsecond_step: Path) -> None:
    assert_refused(command, microsecond_step, "step 1e-06 s is under the minimum of 1 s")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_more_rows_than_the_limit_are_refused(command: str, too_many_rows: Path) -> None:
    assert_refused(command, too_many_rows, f"more than {MAX_ROWS:,} rows")


def test_a_span_over_a_year_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "span.csv"
    step_s = 200 * 86400  # two rows: 400 days
    path.write_text(f"{HEADER}0,1\n{step_s},2\n")
    assert_refused("forecast-eval", path, "spans 400 days, over the limit of 366 days")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(HEADER)
    os.truncate(path, MAX_TRACE_BYTES + 1)  # sparse: no disk used, NULs if it were read
    assert_refused("forecast-eval", path, "over the limit of 64 MiB")
