"""The suite's verdicts: yardsticks per cell, the issue's checks, and the aggregate.

Purely computational. Yardsticks of one cell:

* ``hpa*``: the cheapest utilisation target of the cell's search that met the objective;
* ``rps*``: the same for the HPA on requests per second per pod;
* ``hindsight``: the cheaper of the two, the HPA a team tunes per cell in hindsight;
* ``hpa-fixed``: one utilisation target for every cell, the lowest of the cells' highest
  targets that met (``hpa_fixed_target``): the best a team does without per-trace hindsight;
* ``oracle``: the lower bound.

Checks of one cell (``Checks``): *objective*: sloscale meets its objective when any target of
either search did, and otherwise attains at least the best HPA replayed; *hindsight*: its
GPU-hours are at most ``HINDSIGHT_BOUND`` x the hindsight HPA's; *fixed*: fewer GPU-hours
than ``hpa-fixed``. The aggregate adds the median cell's ratio to the hindsight HPA (at most
1).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sloscale.bench.suite.cells import Cell
from sloscale.bench.suite.outcome import Outcome
from sloscale.bench.suite.search import SearchResult

HINDSIGHT_BOUND = 1.05
"""On no cell more than 5 % more GPU-hours than the HPA tuned in hindsight."""
MEDIAN_BOUND = 1.0
"""On the median cell no more GPU-hours than the HPA tuned in hindsight."""
YARDSTICKS = ("hpa*", "rps*", "hindsight", "hpa-fixed", "oracle")


@dataclass(frozen=True, slots=True)
class SearchOutcomes:
    """A finished search and the outcome of every target it replayed."""

    kind: str  # "hpa" or "rps"
    result: SearchResult
    outcomes: Mapping[int, Outcome]

    @property
    def star_target(self) -> int | None:
        """The cheapest replayed target that met (``None``: none did)."""
        met = [(o.gpu_hours, t) for t, o in self.outcomes.items() if o.met]
        return min(met)[1] if met else None

    @property
    def star(self) -> Outcome | None:
        t = self.star_target
        return None if t is None else self.outcomes[t]

    @property
    def best_attainment(self) -> float | None:
        values = [o.slo_attainment for o in self.outcomes.values() if o.slo_attainment is not None]
        return max(values, default=None)


def hpa_fixed_target(searches: Sequence[SearchResult]) -> int | None:
    """The lowest of the cells' highest targets that met; cells where none met are left out
    (no target meets there). ``None`` when no cell has a target that met."""
    bests = [s.best for s in searches if s.best is not None]
    return min(bests) if bests else None


@dataclass(frozen=True, slots=True)
class CellResult:
    cell: Cell
    sloscale: Outcome
    oracle: Outcome
    hpa: SearchOutcomes
    rps: SearchOutcomes
    hpa_fixed: Outcome | None  # ``None``: no fixed target (no cell met with any target)

    @property
    def hindsight(self) -> Outcome | None:
        stars = [s for s in (self.hpa.star, self.rps.star) if s is not None]
        return min(stars, key=lambda o: o.gpu_hours) if stars else None

    def yardstick(self, name: str) -> Outcome | None:
        return {
            "hpa*": self.hpa.star,
            "rps*": self.rps.star,
            "hindsight": self.hindsight,
            "hpa-fixed": self.hpa_fixed,
            "oracle": self.oracle,
        }[name]

    def ratio(self, name: str) -> float | None:
        """sloscale's GPU-hours over the yardstick's."""
        y = self.yardstick(name)
        return self.sloscale.gpu_hours / y.gpu_hours if y is not None and y.gpu_hours > 0 else None

    @property
    def best_hpa_attainment(self) -> float | None:
        values = [a for a in (self.hpa.best_attainment, self.rps.best_attainment) if a is not None]
        return max(values, default=None)

    @property
    def checks(self) -> Checks:
        return checks(self)


@dataclass(frozen=True, slots=True)
class Checks:
    objective: bool
    hindsight: bool | None  # ``None``: no target of either search met
    fixed: bool | None  # ``None``: no hpa-fixed target

    @property
    def passed(self) -> bool:
        return self.objective and self.hindsight is not False and self.fixed is not False


def checks(c: CellResult) -> Checks:
    if c.hindsight is not None:
        objective = c.sloscale.met
    else:
        best = c.best_hpa_attainment
        att = c.sloscale.slo_attainment
        objective = c.sloscale.met or best is None or (att is not None and att >= best)
    ratio = c.ratio("hindsight")
    hindsight = None if ratio is None else ratio <= HINDSIGHT_BOUND + 1e-12
    fixed = None if c.hpa_fixed is None else c.sloscale.gpu_hours < c.hpa_fixed.gpu_hours
    return Checks(objective, hindsight, fixed)


@dataclass(frozen=True, slots=True)
class RatioStats:
    """sloscale's GPU-hours over a yardstick's, across the cells that have it."""

    cells: int
    median: float | None
    worst: float | None  # the largest


def ratio_stats(values: Sequence[float]) -> RatioStats:
    if not values:
        return RatioStats(0, None, None)
    return RatioStats(len(values), statistics.median(values), max(values))


@dataclass(frozen=True, slots=True)
class Tally:
    passed: int
    of: int  # cells where the check applies


@dataclass(frozen=True, slots=True)
class Aggregate:
    cells: int
    met: Mapping[str, int]  # cells meeting the objective: sloscale and each yardstick
    ratios: Mapping[str, RatioStats]  # per yardstick
    objective: Tally
    hindsight: Tally
    fixed: Tally
    median_hindsight_ok: bool | None  # the median cell's ratio to hindsight <= 1

    @property
    def passed(self) -> bool:
        return (
            self.objective.passed == self.objective.of
            and self.hindsight.passed == self.hindsight.of
            and self.fixed.passed == self.fixed.of
            and self.median_hindsight_ok is not False
        )


def aggregate(cells: Sequence[CellResult]) -> Aggregate:
    met = {"sloscale": sum(c.sloscale.met for c in cells)}
    for name in YARDSTICKS:
        met[name] = sum(1 for c in cells if (y := c.yardstick(name)) is not None and y.met)
    ratios = {
        name: ratio_stats([r for c in cells if (r := c.ratio(name)) is not None])
        for name in YARDSTICKS
    }
    all_checks = [c.checks for c in cells]

    def tally(values: Sequence[bool | None]) -> Tally:
        applied = [v for v in values if v is not None]
        return Tally(sum(applied), len(applied))

    median = ratios["hindsight"].median
    return Aggregate(
        cells=len(cells),
        met=met,
        ratios=ratios,
        objective=tally([k.objective for k in all_checks]),
        hindsight=tally([k.hindsight for k in all_checks]),
        fixed=tally([k.fixed for k in all_checks]),
        median_hindsight_ok=None if median is None else median <= MEDIAN_BOUND + 1e-12,
    )
