"""Progress lines on stderr for the commands that run for minutes: ``bench`` (one trace or
the suite), ``forecast-eval`` and ``loadtest`` (``TickProgress``: the loop's decisions while
it runs).

One line per finished piece of work: wall time so far, an ETA from what the pieces done so far
cost, how many are done, and what was just done::

    [0:01:02 elapsed, ETA 0:03:10] replays 3/7: hpa@60: 99.912 % met, 12.3 GPU-h (8.1 s)

Cost is counted in *units* the caller chooses (simulated hours times a per-policy weight for
the benchmark, forecast origins for ``forecast-eval``); the ETA is the units left times the
seconds one unit took so far, over the workers. ``progress_stream`` says where lines go: to
stderr when it is a terminal, or when a ``--progress`` flag forces them on or off.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from controller.report import Recorder, TickReport

DEFAULT_SECONDS_PER_UNIT = 0.1
"""The ETA's guess before any piece has finished."""

StepCallback = Callable[[str, int, int], None]
"""Work counted in equal steps: ``(what was just done, steps done, steps in all)``."""


def progress_stream(force: bool | None, stream: TextIO | None = None) -> TextIO | None:
    """Where progress lines go: ``stream`` (stderr) when ``force`` is true, or when it is
    ``None`` (no flag given) and the stream is a terminal; else nowhere."""
    target = sys.stderr if stream is None else stream
    if force is None:
        isatty = getattr(target, "isatty", None)
        return target if isatty is not None and isatty() else None
    return target if force else None


def clock(seconds: float) -> str:
    """``H:MM:SS``; purely computational."""
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@dataclass
class Progress:
    """Progress lines on ``err`` (``None``: silent) for ``total`` pieces of work.

    ``every_s`` > 0 shows at most one line that often (the last piece always shows), for
    callers that report many small steps.
    """

    err: TextIO | None
    total: int
    noun: str = "cells"
    workers: int = 1
    every_s: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    spent_s: float = 0.0  # wall seconds of the pieces done in this run
    spent_units: float = 0.0  # their cost units
    _last_shown: float | None = None

    def rate(self) -> float:
        """Seconds per cost unit, from the pieces done so far."""
        if self.spent_units > 0:
            return self.spent_s / self.spent_units
        return DEFAULT_SECONDS_PER_UNIT

    def finished(self, wall_s: float, units: float) -> None:
        """Count one finished piece: its wall seconds and its cost units."""
        self.spent_s += wall_s
        self.spent_units += units

    def report(self, line: str, done: int, remaining_units: float) -> None:
        if self.err is None:
            return
        now = time.perf_counter()
        recent = self._last_shown is not None and now - self._last_shown < self.every_s
        if recent and done < self.total:
            return
        self._last_shown = now
        eta = remaining_units * self.rate() / max(1, self.workers)
        print(
            f"[{clock(now - self.started)} elapsed, ETA {clock(eta)}] "
            f"{self.noun} {done}/{self.total}: {line}",
            file=self.err,
            flush=True,
        )


def step_reporter(err: TextIO | None, noun: str, every_s: float = 2.0) -> StepCallback | None:
    """A ``StepCallback`` printing ``Progress`` lines for equal steps (``None`` when ``err``
    is): the ETA is the steps left times the mean wall time of the steps done."""
    if err is None:
        return None
    progress = Progress(err, 0, noun, every_s=every_s)

    def on_step(what: str, done: int, total: int) -> None:
        progress.total = total
        progress.spent_s = time.perf_counter() - progress.started
        progress.spent_units = done
        progress.report(what, done, total - done)

    return on_step


@dataclass
class TickProgress(Recorder):
    """A line on ``err`` (``None``: silent) at most every ``every_s`` of wall time while a
    loop of known length runs: time so far and left, and each decision of the tick, e.g.
    ``[0:00:35 elapsed, ETA 0:01:10] tick 12: default/web: 2 replicas x 50 % -> 4 replicas
    x 50 %, ScaleUp: sized for 41.0 rps``."""

    err: TextIO | None
    duration_s: float
    every_s: float = 5.0
    started: float = field(default_factory=time.monotonic)
    ticks: int = 0
    _last_shown: float | None = None

    def record(self, report: TickReport) -> None:
        self.ticks += 1
        if self.err is None:
            return
        now = time.monotonic()
        if self._last_shown is not None and now - self._last_shown < self.every_s:
            return
        self._last_shown = now
        elapsed = now - self.started
        what = "; ".join(d.log_line() for d in report.decisions) or "no workload"
        if report.errors:
            what += f" ({len(report.errors)} errors)"
        print(
            f"[{clock(elapsed)} elapsed, ETA {clock(self.duration_s - elapsed)}] "
            f"tick {self.ticks}: {what}",
            file=self.err,
            flush=True,
        )
