"""Progress lines on stderr for the long commands: ``bench`` (one trace), ``forecast-eval``
and the suite, from one home (``sloscale.progress``); shown when stderr is a terminal or when
``--progress`` asks, never with ``--no-progress``."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

import sloscale.progress
from sloscale.bench import main as bench
from sloscale.bench.suite import schedule
from sloscale.cli import main
from sloscale.progress import Progress, progress_stream, step_reporter

LINE = re.compile(r"^\[\d+:\d\d:\d\d elapsed, ETA \d+:\d\d:\d\d\] (\w+) (\d+)/(\d+): .+$")


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def write_trace(path: Path, minutes: int) -> Path:
    rows = [f"{60 * i},{100 + 10 * (i % 7)}" for i in range(minutes)]
    path.write_text("timestamp_s,requests\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("stream", "force", "shown"),
    [
        pytest.param(Terminal(), None, True, id="terminal"),
        pytest.param(io.StringIO(), None, False, id="pipe"),
        pytest.param(io.StringIO(), True, True, id="pipe-forced"),
        pytest.param(Terminal(), False, False, id="terminal-silenced"),
    ],
)
def test_lines_go_to_a_terminal_or_where_forced(
    stream: io.StringIO, force: bool | None, shown: bool
) -> None:
    assert (progress_stream(force, stream) is stream) is shown


def test_one_home_for_the_progress_line() -> None:
    assert vars(schedule)["Progress"] is sloscale.progress.Progress
    assert not hasattr(schedule, "_Progress")


def test_eta_is_the_units_left_at_the_rate_so_far() -> None:
    err = io.StringIO()
    p = Progress(err, 3, "cells", workers=2)
    p.finished(wall_s=30.0, units=10.0)  # 3 s a unit
    p.report("a", 1, remaining_units=40.0)
    # 40 units x 3 s / 2 workers = 60 s
    assert "ETA 0:01:00] cells 1/3: a" in err.getvalue()


def test_many_small_steps_show_at_most_one_line_per_interval_and_the_last() -> None:
    err = io.StringIO()
    on_step = step_reporter(err, "origins", every_s=3600.0)
    assert on_step is not None
    for i in range(1, 101):
        on_step(f"step {i}", i, 100)
    lines = err.getvalue().splitlines()
    assert [LINE.match(x).groups() for x in lines] == [  # type: ignore[union-attr]
        ("origins", "1", "100"),
        ("origins", "100", "100"),
    ]
    assert step_reporter(None, "origins") is None


BENCH = ["--hours", "0.5", "--policies", "static,oracle", "--workers", "1"]


@pytest.mark.parametrize(
    ("flags", "err_type", "shown"),
    [
        pytest.param(["--progress"], io.StringIO, True, id="forced"),
        pytest.param([], Terminal, True, id="terminal"),
        pytest.param([], io.StringIO, False, id="pipe"),
        pytest.param(["--no-progress"], Terminal, False, id="silenced"),
    ],
)
def test_bench_reports_each_replay_as_it_finishes(
    tmp_path: Path, flags: list[str], err_type: type[io.StringIO], shown: bool
) -> None:
    trace = write_trace(tmp_path / "day.csv", 24 * 60)
    out, err = io.StringIO(), err_type()
    assert bench(["--trace", str(trace), *BENCH, *flags], out=out, err=err) == 0
    lines = [x for x in err.getvalue().splitlines() if LINE.match(x)]
    if not shown:
        assert lines == []
        return
    assert [LINE.match(x).groups() for x in lines] == [  # type: ignore[union-attr]
        ("replays", "1", "2"),
        ("replays", "2", "2"),
    ]
    assert "static: " in lines[0] and "GPU-h" in lines[0]
    assert "SLO attained" in out.getvalue()  # the table stays on stdout


@pytest.mark.parametrize(("flags", "shown"), [(["--progress"], True), ([], False)])
def test_forecast_eval_reports_origins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], shown: bool
) -> None:
    """capsys' stderr is no terminal: lines only when forced. ``forecasting`` prints none
    itself; the CLI hands it the callback."""
    trace = write_trace(tmp_path / "day.csv", 24 * 60)
    args = ["forecast-eval", "--trace", str(trace), "--horizons", "5m", "--models"]
    assert main([*args, "persistence,seasonal-naive", *flags]) == 0
    captured = capsys.readouterr()
    lines = [x for x in captured.err.splitlines() if LINE.match(x)]
    if not shown:
        assert lines == []
        return
    # 6 origins in the last quarter of a day, hourly, for each of two models
    assert LINE.match(lines[-1]).groups() == ("origins", "12", "12")  # type: ignore[union-attr]
    assert "seasonal-naive: origin 6/6" in lines[-1]
    assert "persistence" in captured.out


TICK_LINE = re.compile(r"^\[\d+:\d\d:\d\d elapsed, ETA \d+:\d\d:\d\d\] tick (\d+): .+$")


def test_a_running_loop_reports_its_decisions_at_most_once_per_interval() -> None:
    """``loadtest``'s progress: the loop's decisions while it runs, as the log writes them."""
    from controller.domain import WorkloadMetrics
    from controller.loop import Controller, LoopConfig
    from sloscale.progress import TickProgress
    from tests.fakes import FakeClock, FakeCluster, FakeMetrics, slo_annotations

    clock = FakeClock(1000.0)
    cluster, metrics = FakeCluster(clock), FakeMetrics()
    key = cluster.add("web", slo_annotations(), replicas=2, slice_pct=50).key
    metrics.values[key] = WorkloadMetrics(
        request_rate_rps=40.0, latency_ms=900.0, good_ratio=0.9, gpu_util=0.95, gpu_busy=0.95
    )
    every, quiet, silent = io.StringIO(), io.StringIO(), TickProgress(None, 60.0)
    recorders = [TickProgress(every, 60.0, every_s=0.0), TickProgress(quiet, 60.0), silent]
    loop = Controller(cluster, metrics, clock, LoopConfig(interval_s=15.0), recorders=recorders)
    for _ in range(3):
        clock.advance(15.0)
        loop.tick()
    lines = every.getvalue().splitlines()
    matches = [TICK_LINE.match(line) for line in lines]
    assert [m.group(1) if m else line for m, line in zip(matches, lines, strict=True)] == [
        "1",
        "2",
        "3",
    ]
    assert f"{key}: 2 replicas x 50 % ->" in lines[0] and "ScaleUp" in lines[0], lines[0]
    assert len(quiet.getvalue().splitlines()) == 1  # the next one only 5 s later
    assert silent.ticks == 3
