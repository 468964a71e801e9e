"""The suite's yardsticks, checks and aggregate, on hand-made outcomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloscale.bench.suite.aggregate import (
    CellResult,
    SearchOutcomes,
    aggregate,
    checks,
    hpa_fixed_target,
    ratio_stats,
)
from sloscale.bench.suite.cells import Cell, Regime, SuiteTrace
from sloscale.bench.suite.outcome import Outcome
from sloscale.bench.suite.search import SearchRange, SearchResult

TRACE = SuiteTrace("t_per_minute", Path("t.csv"), 24.0, 60.0, "0" * 64)
SPAN = SearchRange(20, 95)


def outcome(label: str, gpu_h: float, attainment: float) -> Outcome:
    return Outcome(label, attainment, None, gpu_h, None, attainment >= 0.99, 0, 0, 100)


def search(kind: str, points: dict[int, tuple[float, float]]) -> SearchOutcomes:
    """``points``: target -> (GPU-h, attainment); best = the highest that met."""
    outcomes = {t: outcome(f"{kind}@{t}", g, a) for t, (g, a) in points.items()}
    met = [t for t, o in outcomes.items() if o.met]
    result = SearchResult(
        SPAN, max(met) if met else None, tuple((t, o.met) for t, o in outcomes.items()), ()
    )
    return SearchOutcomes(kind, result, outcomes)


def cell(
    sloscale: tuple[float, float],
    hpa: dict[int, tuple[float, float]],
    rps: dict[int, tuple[float, float]],
    fixed: tuple[float, float] | None = (120.0, 0.995),
    seed: int = 1,
) -> CellResult:
    return CellResult(
        cell=Cell(TRACE, Regime.COLD, seed, None),
        sloscale=outcome("sloscale", *sloscale),
        oracle=outcome("oracle", 80.0, 0.996),
        hpa=search("hpa", hpa),
        rps=search("rps", rps),
        hpa_fixed=None if fixed is None else outcome("hpa@60", *fixed),
    )


def test_stars_are_the_cheapest_target_that_met_and_hindsight_the_cheaper() -> None:
    c = cell(
        (100.0, 0.992),
        {60: (110.0, 0.995), 61: (108.0, 0.991), 62: (104.0, 0.98)},
        {90: (105.0, 0.993), 91: (101.0, 0.97)},
    )
    assert c.hpa.star_target == 61 and c.hpa.star is not None and c.hpa.star.gpu_hours == 108.0
    assert c.rps.star_target == 90
    assert c.hindsight is c.rps.star
    assert c.ratio("hindsight") == pytest.approx(100 / 105)
    assert c.ratio("oracle") == pytest.approx(100 / 80)
    assert checks(c).passed


def test_hindsight_bound_is_five_percent() -> None:
    hpa = {60: (100.0, 0.995), 61: (99.0, 0.98)}
    assert checks(cell((105.0, 0.992), hpa, {}, fixed=(130.0, 0.995))).hindsight is True
    assert checks(cell((105.1, 0.992), hpa, {}, fixed=(130.0, 0.995))).hindsight is False


def test_objective_check_when_some_target_met_and_when_none_did() -> None:
    some = {60: (100.0, 0.995)}
    assert checks(cell((90.0, 0.989), some, {})).objective is False
    none_met = {20: (200.0, 0.95), 40: (150.0, 0.93)}
    # no target met: sloscale must reach the best HPA's attainment (95 %)
    assert checks(cell((90.0, 0.951), none_met, {20: (210.0, 0.94)}, fixed=None)).objective
    assert not checks(cell((90.0, 0.949), none_met, {}, fixed=None)).objective
    c = checks(cell((90.0, 0.949), none_met, {}, fixed=None))
    assert c.hindsight is None and c.fixed is None  # nothing to compare with


def test_fixed_check_is_strictly_fewer_gpu_hours() -> None:
    hpa = {60: (100.0, 0.995)}
    assert checks(cell((99.0, 0.995), hpa, {}, fixed=(99.5, 0.995))).fixed is True
    assert checks(cell((99.5, 0.995), hpa, {}, fixed=(99.5, 0.995))).fixed is False


def test_hpa_fixed_is_the_lowest_of_the_highest_targets_that_met() -> None:
    def result(best: int | None) -> SearchResult:
        return SearchResult(SPAN, best, (), ())

    assert hpa_fixed_target([result(70), result(55), result(None), result(81)]) == 55
    assert hpa_fixed_target([result(None)]) is None
    assert hpa_fixed_target([]) is None


def test_ratio_stats_median_and_worst() -> None:
    assert ratio_stats([1.2, 0.9, 1.0]) == ratio_stats([0.9, 1.0, 1.2])
    s = ratio_stats([1.2, 0.9, 1.0, 0.8])
    assert (s.cells, s.median, s.worst) == (4, pytest.approx(0.95), 1.2)
    assert ratio_stats([]).median is None


def test_aggregate_counts_and_the_median_check() -> None:
    hpa = {60: (100.0, 0.995)}
    cells = [
        cell((97.0, 0.992), hpa, {}, seed=1),  # 0.97 x hindsight, passes
        cell((104.0, 0.993), hpa, {}, seed=2),  # 1.04, passes
        cell((110.0, 0.985), hpa, {}, seed=3),  # 1.10 and misses its objective
    ]
    agg = aggregate(cells)
    assert agg.cells == 3
    assert agg.met["sloscale"] == 2 and agg.met["hpa*"] == 3 and agg.met["oracle"] == 3
    assert (agg.objective.passed, agg.objective.of) == (2, 3)
    assert (agg.hindsight.passed, agg.hindsight.of) == (2, 3)
    assert (agg.fixed.passed, agg.fixed.of) == (3, 3)
    assert agg.ratios["hindsight"].median == pytest.approx(1.04)
    assert agg.ratios["hindsight"].worst == pytest.approx(1.10)
    assert agg.median_hindsight_ok is False
    assert not agg.passed
    assert aggregate(cells[:1]).passed
