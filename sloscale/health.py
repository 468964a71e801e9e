"""The loop's heartbeat: what ``/healthz`` and ``/readyz`` answer from.

Why it exists: a loop can wedge (a tick blocked on a socket without a timeout, a deadlock) or
stop ticking while the API thread still answers; probes that only say "the process answers"
or "a tick once ran" would keep such a controller in service forever. The thread that ticks
marks each tick's start and end here; the API's probes only read.

- ready (``/readyz``): a tick completed within ``ready_intervals`` intervals;
- live (``/healthz``): no tick has been running for longer than ``wedged_after_s``, and one
  completed within ``wedged_after_s`` (counted from start-up before the first one).

``wedged_after_s`` defaults to ten intervals, and never less than two minutes: the first tick
of a workload reads its rate history (the warm start), which may take a while.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

READY_INTERVALS = 3.0
WEDGED_INTERVALS = 10.0
WEDGED_FLOOR_S = 120.0


def default_wedged_after_s(interval_s: float) -> float:
    return max(WEDGED_INTERVALS * interval_s, WEDGED_FLOOR_S)


@dataclass(frozen=True, slots=True)
class Health:
    """One reading of the heartbeat, for a probe."""

    ready: bool
    live: bool
    reason: str
    ticks: int
    last_tick_age_s: float | None  # since the last completed tick (None: none yet)
    tick_running_s: float | None  # how long the tick in progress has run (None: idle)


class Heartbeat:
    """Tick starts and ends, written by the loop thread, read by the probes; thread-safe."""

    def __init__(
        self,
        interval_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        ready_intervals: float = READY_INTERVALS,
        wedged_after_s: float | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.interval_s = interval_s
        self.ready_within_s = ready_intervals * interval_s
        self.wedged_after_s = (
            default_wedged_after_s(interval_s) if wedged_after_s is None else wedged_after_s
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._created = clock()
        self._running_since: float | None = None
        self._completed: float | None = None
        self._ticks = 0

    # ---- written by the loop -----------------------------------------------------------------

    def started(self) -> None:
        with self._lock:
            self._running_since = self._clock()

    def finished(self) -> None:
        self.completed_at(self._clock())

    def completed_at(self, at: float) -> None:
        """A tick completed at ``at`` (on this heartbeat's clock)."""
        with self._lock:
            self._running_since = None
            if self._completed is None or at > self._completed:
                self._completed = at
                self._ticks += 1

    @contextmanager
    def tick(self) -> Iterator[None]:
        """Around one tick: a tick that raises is not a completed one."""
        self.started()
        ok = False
        try:
            yield
            ok = True
        finally:
            if ok:
                self.finished()
            else:
                with self._lock:
                    self._running_since = None

    # ---- read by the probes ------------------------------------------------------------------

    def health(self) -> Health:
        with self._lock:
            now = self._clock()
            running = None if self._running_since is None else now - self._running_since
            age = None if self._completed is None else now - self._completed
            silence = now - (self._completed if self._completed is not None else self._created)
            ticks = self._ticks
        bound = self.wedged_after_s
        if silence > bound or (running is not None and running > bound):
            doing = "none running" if running is None else f"one running for {running:.0f} s"
            reason = (
                f"no tick completed in the last {silence:.0f} s, {doing} "
                f"(bound {bound:g} s): wedged"
            )
            return Health(False, False, reason, ticks, age, running)
        if age is None:
            return Health(False, True, "waiting for the first tick", ticks, age, running)
        if age > self.ready_within_s:
            reason = (
                f"last tick completed {age:.0f} s ago, more than {self.ready_within_s:.0f} s "
                f"({self.ready_within_s / self.interval_s:g} intervals of {self.interval_s:g} s)"
            )
            return Health(False, True, reason, ticks, age, running)
        return Health(True, True, "ok", ticks, age, running)
