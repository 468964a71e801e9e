"""The time on a log line: the wall clock's, or the simulated clock's while a simulation runs.

Why it exists: ``sloscale demo -v`` runs a simulated day in seconds, so the wall-clock time on
its lines said when the machine printed them, not when in the simulated day the controller
decided. While ``simulated_time`` is active, every record created on the thread that runs the
simulation carries ``sim_time`` (``day 1 03:15:00``), and ``LogFormatter`` prints it where
the wall-clock time would be. Records of other threads (the API server's requests) keep the
wall clock: they happen in real time.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SIM_TIME_ATTR = "sim_time"
"""The attribute of a log record that holds its simulated time, formatted."""
DAY_S = 86400.0


def format_sim_time(t_s: float, start_s: float = 0.0) -> str:
    """``day 1 03:15:00``: the day of the simulation (the one ``start_s`` falls in is day 1)
    and the simulated time of day (midnight at ``t = 0 mod 86400``, as the load patterns have
    it). Purely computational."""
    day = math.floor(t_s / DAY_S) - math.floor(start_s / DAY_S) + 1
    seconds = int(t_s - math.floor(t_s / DAY_S) * DAY_S)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"day {day} {hours:02d}:{minutes:02d}:{secs:02d}"


class LogFormatter(logging.Formatter):
    """``LOG_FORMAT``'s formatter: a record's simulated time, when it has one, as its time."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        sim_time = getattr(record, SIM_TIME_ATTR, None)
        if isinstance(sim_time, str):
            return sim_time
        return super().formatTime(record, datefmt)


def configure(level: int) -> None:
    """The CLI's logging: ``LOG_FORMAT`` on standard error (nothing if already configured)."""
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])


@contextmanager
def simulated_time(now_s: Callable[[], float], start_s: float = 0.0) -> Iterator[None]:
    """While inside, records created on this thread carry ``now_s()`` as their simulated time
    (``format_sim_time``); the previous record factory is restored on the way out."""
    previous = logging.getLogRecordFactory()
    thread = threading.get_ident()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if threading.get_ident() == thread:
            setattr(record, SIM_TIME_ATTR, format_sim_time(now_s(), start_s))
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)
