"""The values of the ``sloscale.io/*`` annotation schema: converters, durations, bounds.

Each converter takes a stripped, non-empty string and returns the typed value or raises
``ValueError`` whose message is the reason (``controller.spec`` adds the workload, the key and
the value). Purely computational, no side effects.

Every value is bounded, so that no annotation can make the planner allocate, divide or loop
without limit: the bounds are the constants below, and the README's annotation table states
them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TypeVar

from controller.domain import PRIORITY_NAMES, SHARE_UNIT_PCT

EnumT = TypeVar("EnumT", bound=StrEnum)

MAX_PRIORITY = 1_000_000_000  # a Kubernetes PriorityClass value's bound

MAX_REPLICAS = 1000
"""The ceiling on ``min-replicas`` and ``max-replicas``: the planner's work and memory grow
with the replicas it considers, and no GPU pool holds more pods of one Deployment."""
QUANTILE_RANGE = (0.5, 0.9999)
"""``latency-quantile`` bounds, both included: below the median the quantile says nothing of
the tail, past four nines a histogram cannot resolve it (and the latency model's arithmetic
degenerates towards 0 and 1)."""
OBJECTIVE_RANGE_PCT = (50.0, 99.999)
"""``objective`` bounds in %, both included: under half the requests good is no objective,
and past five nines the error budget is too small to count within a window."""
MAX_LATENCY_TARGET_MS = 3_600_000.0
"""``latency-target-ms`` ceiling: an hour."""
WINDOW_RANGE_S = (300.0, 366 * 86400.0)
"""``window`` bounds, both included: one error-budget bucket (5 min) to a year (366 d)."""
STABILIZATION_RANGE_S = (0.0, 3600.0)
"""``scale-down-stabilization`` bounds, both included: the HPA's ``stabilizationWindowSeconds``."""
MAX_SCALE_UP_PERCENT = 10000.0
"""The ceiling on ``scale-up-max-percent`` (x101 a tick); ``scale-down-max-percent`` is at
most 100 (every replica)."""
MAX_DURATION_S = 366 * 86400.0
"""The ceiling on every other duration (cooldowns, deadlines, idle times, runtimes)."""
MAX_SAMPLES = 1e15
"""The ceiling on ``retrain-threshold`` and ``retrain-urgent-threshold``."""
PRIORITY_CAP = PRIORITY_NAMES["high"]  # see controller.spec
"""The highest priority honoured outside the namespaces allowed ``critical``."""


# --------------------------------------------------------------------------------------------
# Durations
# --------------------------------------------------------------------------------------------

_UNIT_S: Mapping[str, float] = {
    "y": 365 * 86400.0,
    "w": 7 * 86400.0,
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 0.001,
}
_UNIT_ORDER = tuple(_UNIT_S)  # largest first
_NUMBER_RE = r"[0-9]+(?:\.[0-9]+)?"
_PLAIN_SECONDS = re.compile(_NUMBER_RE, re.ASCII)
_DURATION = re.compile(rf"(?:{_NUMBER_RE}(?:ms|[ywdhms]))+", re.ASCII)
_DURATION_PART = re.compile(rf"({_NUMBER_RE})(ms|[ywdhms])", re.ASCII)


def duration_s(text: str, *, allow_zero: bool) -> float:
    """Seconds in a duration; ``ValueError`` with the reason (not the text) otherwise."""
    text = text.strip()
    if not text:
        raise ValueError("cannot parse duration: empty")
    if text.startswith("-"):
        raise ValueError("duration must be positive")
    if _PLAIN_SECONDS.fullmatch(text):
        seconds = float(text)
    elif _DURATION.fullmatch(text):
        seconds = 0.0
        last_rank = -1
        for number, unit in _DURATION_PART.findall(text):
            rank = _UNIT_ORDER.index(unit)
            if rank <= last_rank:
                raise ValueError(
                    "cannot parse duration: units must go from largest to smallest, "
                    "each at most once (e.g. 1h30m)"
                )
            last_rank = rank
            seconds += float(number) * _UNIT_S[unit]
    else:
        raise ValueError(
            "cannot parse duration: expected a number of seconds or e.g. 500ms, 30s, 10m, "
            "1h30m, 28d, 1w"
        )
    if not math.isfinite(seconds):
        raise ValueError("duration is too large")
    if seconds == 0 and not allow_zero:
        raise ValueError("duration must be positive")
    return seconds


def parse_duration_s(text: str, *, allow_zero: bool = False) -> float:
    """Seconds in a Go/Prometheus-style duration; purely computational.

    Accepts ``500ms``, ``30s``, ``10m``, ``6h``, ``28d``, ``1w``, ``1y`` (365 d) and compounds
    with units largest first (``1h30m``, ``1d12h``); a plain number (``90``, ``1.5``) is
    seconds. Zero is rejected unless ``allow_zero``; negatives always are.

    >>> parse_duration_s("1h30m")
    5400.0

    Raises:
        ValueError: naming the text and what is wrong with it.
    """
    try:
        return duration_s(text, allow_zero=allow_zero)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None


# --------------------------------------------------------------------------------------------
# Value converters
# --------------------------------------------------------------------------------------------

_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DNS1123_SUBDOMAIN = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*", re.ASCII
)
_TEMPLATE_KINDS = ("cronjob", "configmap")


def number(text: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise ValueError("must be a number")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def integer(text: str) -> int:
    if not _INT.fullmatch(text):
        raise ValueError("must be an integer")
    try:
        return int(text)
    except ValueError:  # more digits than int() accepts from a string
        raise ValueError("must be an integer of sensible size") from None


def positive(text: str) -> float:
    value = number(text)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def positive_at_most(high: float) -> Callable[[str], float]:
    def convert(text: str) -> float:
        value = positive(text)
        if value > high:
            raise ValueError(f"must be at most {high:g}")
        return value

    return convert


def open_interval(
    low: float, high: float, supported: tuple[float, float]
) -> Callable[[str], float]:
    """A number in (``low``, ``high``) and, within it, in the ``supported`` range."""

    def convert(text: str) -> float:
        value = number(text)
        if not low < value < high:
            raise ValueError(f"must be in ({low:g}, {high:g}), bounds excluded")
        if not supported[0] <= value <= supported[1]:
            raise ValueError(f"must be in [{supported[0]:g}, {supported[1]:g}] (supported range)")
        return value

    return convert


def objective_pct(text: str) -> float:
    """The objective in %, in ``OBJECTIVE_RANGE_PCT``; a ratio (``0.99``) gets a hint.

    ``0.99`` read as a percentage is an objective of under one good request in a hundred, so
    under 50 % the message says what the value probably meant (``did you mean 99?``).
    """
    value = open_interval(0, 100, OBJECTIVE_RANGE_PCT)
    try:
        return value(text)
    except ValueError as exc:
        low = OBJECTIVE_RANGE_PCT[0]
        given = number(text)
        if 0 < given < 1 and low <= given * 100 <= OBJECTIVE_RANGE_PCT[1]:
            raise ValueError(
                f"{exc}: the objective is a percentage, not a ratio; did you mean {given * 100:g}?"
            ) from None
        if given < low:
            raise ValueError(f"{exc}: the objective is a percentage (99 means 99 %)") from None
        raise


def int_in(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        value = integer(text)
        if value < low:
            raise ValueError(f"must be an integer >= {low}")
        if value > high:
            raise ValueError(f"must be at most {high} (the controller's ceiling)")
        return value

    return convert


def share_pct(text: str) -> int:
    value = integer(text)
    if not 0 < value <= 100:
        raise ValueError("must be in 1..100 (% of a card)")
    return value


def step_pct(text: str) -> int:
    value = integer(text)
    if not SHARE_UNIT_PCT <= value <= 100 or value % SHARE_UNIT_PCT:
        raise ValueError(
            f"must be a multiple of {SHARE_UNIT_PCT} in {SHARE_UNIT_PCT}..100 "
            f"(cards are sliced in {SHARE_UNIT_PCT} % units)"
        )
    return value


def duration(
    *, allow_zero: bool, low_s: float = 0.0, high_s: float = MAX_DURATION_S
) -> Callable[[str], float]:
    def convert(text: str) -> float:
        seconds = duration_s(text, allow_zero=allow_zero)
        if seconds < low_s:
            raise ValueError(f"must be at least {format_s(low_s)}")
        if seconds > high_s:
            raise ValueError(f"must be at most {format_s(high_s)}")
        return seconds

    return convert


def format_s(seconds: float) -> str:
    """A bound in its largest whole unit (``366d``, ``5m``)."""
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_S[unit] == 0:
            return f"{seconds / _UNIT_S[unit]:g}{unit}"
    return f"{seconds:g}s"


def priority(text: str) -> int:
    named = PRIORITY_NAMES.get(text.lower())
    if named is not None:
        return named
    try:
        value = integer(text)
    except ValueError:
        raise ValueError(f"must be one of {', '.join(PRIORITY_NAMES)} or an integer") from None
    if abs(value) > MAX_PRIORITY:
        raise ValueError(f"must be within ±{MAX_PRIORITY}")
    return value


def boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError('must be "true" or "false"')
    return lowered == "true"


def choice(enum: type[EnumT]) -> Callable[[str], EnumT]:
    def convert(text: str) -> EnumT:
        try:
            return enum(text.lower())
        except ValueError:
            raise ValueError(f"must be one of {', '.join(m.value for m in enum)}") from None

    return convert


def job_template(text: str) -> str:
    kind, sep, name = text.partition("/")
    if not sep or kind.lower() not in _TEMPLATE_KINDS:
        raise ValueError("must be cronjob/NAME or configmap/NAME")
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a DNS-1123 name (lower-case letters, digits, '-' and '.')"
        )
    return f"{kind.lower()}/{name}"


def text(text: str) -> str:
    return text


__all__ = [
    "MAX_DURATION_S",
    "MAX_LATENCY_TARGET_MS",
    "MAX_PRIORITY",
    "MAX_REPLICAS",
    "MAX_SAMPLES",
    "MAX_SCALE_UP_PERCENT",
    "OBJECTIVE_RANGE_PCT",
    "PRIORITY_CAP",
    "QUANTILE_RANGE",
    "STABILIZATION_RANGE_S",
    "WINDOW_RANGE_S",
    "boolean",
    "choice",
    "duration",
    "int_in",
    "job_template",
    "objective_pct",
    "open_interval",
    "parse_duration_s",
    "positive",
    "positive_at_most",
    "priority",
    "share_pct",
    "step_pct",
    "text",
]
