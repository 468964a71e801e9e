"""The log lines of a tick's problems, for an operator to read rather than scroll past.

Why it exists: a tick reports each failed Prometheus query on its own (``Observation.errors``,
also counted in ``/metrics``), so an unreachable Prometheus was nine warnings every tick, none
naming what could not be reached. ``ProblemLog`` turns a tick's problems into lines for the
log: the failed queries that share a cause become one line naming the cause (the client's
message names the URL) and the queries, and a line already logged is repeated only with
exponential backoff (1 min, 2, 4, ... at most 15 min) while it lasts, with how long it has.
A problem that goes away is said once, at INFO.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_QUERY_FAILED = re.compile(
    r"^prometheus query (?P<key>\S+)(?: of (?P<of>\S+))? failed: (?P<why>.+)$"
)


@dataclass(slots=True)
class _Seen:
    since_s: float
    next_s: float
    every_s: float


def grouped(problems: Sequence[str]) -> dict[str, str]:
    """Each problem's line, keyed by what makes it the same problem from tick to tick.

    Purely computational. Failed queries with the same cause are one line: ``prometheus:
    CAUSE (N queries failed: a, b, ...)``, keyed by the cause; anything else is its own line
    and key.
    """
    by_cause: dict[str, list[str]] = {}
    out: dict[str, str] = {}
    for problem in problems:
        m = _QUERY_FAILED.match(problem)
        if m is None:
            out.setdefault(problem, problem)
            continue
        name = m["key"] if m["of"] is None else f"{m['key']} of {m['of']}"
        by_cause.setdefault(m["why"], []).append(name)
    for why, names in by_cause.items():
        if len(names) == 1:
            out[f"prometheus: {why}"] = f"prometheus query {names[0]} failed: {why}"
            continue
        out[f"prometheus: {why}"] = (
            f"prometheus: {why} ({len(names)} queries failed: {', '.join(names)})"
        )
    return out


class ProblemLog:
    """Logs each tick's problems, grouped, each repeated with backoff while it lasts."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        first_repeat_s: float = 60.0,
        max_repeat_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._first_s = first_repeat_s
        self._max_s = max_repeat_s
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def report(self, problems: Sequence[str]) -> None:
        """Log what is new or due again among one tick's problems, and what went away."""
        now = self._clock()
        lines = grouped(problems)
        for key in [k for k in self._seen if k not in lines]:
            gone = self._seen.pop(key)
            self._log.info("resolved after %s: %s", _span(now - gone.since_s), key)
        for key, line in lines.items():
            seen = self._seen.get(key)
            if seen is None:
                self._seen[key] = _Seen(now, now + self._first_s, self._first_s)
                self._log.warning("%s", line)
            elif now >= seen.next_s:
                seen.every_s = min(self._max_s, seen.every_s * 2)
                seen.next_s = now + seen.every_s
                self._log.warning(
                    "%s (for %s; next reminder in %s)",
                    line,
                    _span(now - seen.since_s),
                    _span(seen.every_s),
                )


def _span(seconds: float) -> str:
    """``45 s``, ``3 min``, ``2 h 5 min``: a duration for a log line."""
    s = round(max(0.0, seconds))
    if s < 120:
        return f"{s} s"
    minutes = s // 60
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
