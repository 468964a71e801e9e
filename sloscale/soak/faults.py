"""The fault schedule of a soak: which fault, when, for how long, drawn from one seed.

A ``FaultPlan`` is a plain, reproducible list of ``Fault`` events: the same ``(days, seed)``
gives the same plan on every machine, so a violation found by a soak is replayed exactly by
running it again. Every class gets at least ``min_per_class`` events (and ``per_day`` a day
on longer soaks), each at a uniform time after a warm-up hour (the controller learns its
capacity models first) and ending before the soak does. Events of different classes may
overlap, as real faults do. Purely computational.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

DAY_S = 86400.0
WARM_UP_S = 3600.0
"""No fault in the first hour: a fault-free start gives every capacity model its first data."""


class FaultClass(StrEnum):
    """What goes wrong, at the port it goes wrong at (``sloscale.soak.ports``)."""

    PROMETHEUS_OUTAGE = "prometheus-outage"  # MetricsSource: every query fails
    PARTIAL_SCRAPE = "partial-scrape"  # MetricsSource: one workload's rate misses pods
    NAN_STALE = "nan-stale"  # MetricsSource: one workload's series NaN or stale
    WATCH_FAILURE = "watch-failure"  # Cluster.snapshot: cache frozen, then refused as stale
    CONFLICT = "conflict-409"  # Cluster.apply: another writer changed the Deployment
    API_5XX = "api-5xx"  # Cluster.apply: 503 from the API server
    THROTTLED = "throttled-429"  # Cluster.apply: 429 with Retry-After
    SLOW_API = "slow-api"  # Cluster: each call takes seconds of simulated time
    FAILED_ROLLOUT = "failed-rollout"  # outside writer: a template whose pods OOM
    RESTART = "restart"  # the controller process is recreated from its saved memory
    LEADER_CHANGE = "leader-change"  # a follower takes over from the same state store


INSTANT = frozenset({FaultClass.FAILED_ROLLOUT, FaultClass.RESTART, FaultClass.LEADER_CHANGE})
"""Classes that happen at one moment (their ``duration_s`` is 0)."""

DURATION_S: dict[FaultClass, tuple[float, float]] = {
    FaultClass.PROMETHEUS_OUTAGE: (330.0, 900.0),  # longer than the 300 s scale-down window
    FaultClass.PARTIAL_SCRAPE: (60.0, 600.0),
    FaultClass.NAN_STALE: (60.0, 600.0),
    FaultClass.WATCH_FAILURE: (45.0, 300.0),
    FaultClass.CONFLICT: (15.0, 90.0),
    FaultClass.API_5XX: (30.0, 300.0),
    FaultClass.THROTTLED: (30.0, 180.0),
    FaultClass.SLOW_API: (60.0, 600.0),
}
"""Range of each lasting class's duration, uniform."""


@dataclass(frozen=True, slots=True, order=True)
class Fault:
    """One injected fault. ``pick`` chooses among the candidates where the class needs one
    (which workload, how slow, how long a Retry-After), the same way on every replay."""

    start_s: float  # seconds since the soak's start
    fault_class: FaultClass
    duration_s: float = 0.0
    pick: int = 0

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def active(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Every fault of one soak, in start order."""

    faults: tuple[Fault, ...]
    duration_s: float
    seed: int

    def counts(self) -> dict[FaultClass, int]:
        out = dict.fromkeys(FaultClass, 0)
        for f in self.faults:
            out[f.fault_class] += 1
        return out

    def starting(self, after_s: float, until_s: float) -> tuple[Fault, ...]:
        """The faults that start in ``(after_s, until_s]``."""
        return tuple(f for f in self.faults if after_s < f.start_s <= until_s)

    def active(self, t_s: float) -> tuple[Fault, ...]:
        """The lasting faults in force at ``t_s``."""
        return tuple(f for f in self.faults if f.duration_s > 0 and f.active(t_s))


def parse_classes(names: Sequence[str]) -> frozenset[FaultClass]:
    """Class names (``all``, ``none``, or ``FaultClass`` values); ``ValueError`` on others."""
    chosen: set[FaultClass] = set()
    for name in names:
        if name == "all":
            chosen |= set(FaultClass)
        elif name != "none":
            try:
                chosen.add(FaultClass(name))
            except ValueError:
                known = ", ".join(c.value for c in FaultClass)
                raise ValueError(
                    f"unknown fault class {name!r}; known: all, none, {known}"
                ) from None
    return frozenset(chosen)


def plan_faults(
    days: float,
    seed: int,
    *,
    classes: Collection[FaultClass] = frozenset(FaultClass),
    min_per_class: int = 10,
    per_day: float = 3.0,
) -> FaultPlan:
    """A reproducible schedule: ``max(min_per_class, per_day x days)`` events per class."""
    if not days > 0:
        raise ValueError(f"days must be positive, got {days}")
    duration_s = days * DAY_S
    warm_up_s = min(WARM_UP_S, duration_s / 4)
    rng = random.Random(f"sloscale-soak/{seed}")
    n = max(min_per_class, math.ceil(per_day * days))
    faults = []
    for fault_class in FaultClass:  # a fixed order: the draws do not depend on ``classes``
        for _ in range(n):
            lo, hi = DURATION_S.get(fault_class, (0.0, 0.0))
            length_s = rng.uniform(lo, hi) if hi > 0 else 0.0
            latest_s = max(warm_up_s, duration_s - length_s - 60.0)
            start_s = rng.uniform(warm_up_s, latest_s)
            pick = rng.randrange(1 << 30)
            if fault_class in classes:
                faults.append(Fault(round(start_s, 3), fault_class, round(length_s, 3), pick))
    return FaultPlan(tuple(sorted(faults)), duration_s, seed)


__all__ = [
    "DURATION_S",
    "INSTANT",
    "Fault",
    "FaultClass",
    "FaultPlan",
    "parse_classes",
    "plan_faults",
]
