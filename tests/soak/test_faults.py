"""The soak's fault schedule: seeded, reproducible, enough of every class, inside the soak."""

from __future__ import annotations

import pytest

from sloscale.soak.faults import (
    DURATION_S,
    INSTANT,
    FaultClass,
    parse_classes,
    plan_faults,
)


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    assert plan_faults(7, 1) == plan_faults(7, 1)
    assert plan_faults(7, 1).faults != plan_faults(7, 2).faults


@pytest.mark.parametrize(
    ("days", "min_per_class", "each"),
    [
        (7.0, 10, 21),  # 3 a day x 7 days > 10
        (1.0, 10, 10),  # the floor
        (0.25, 3, 3),  # the CI soak
    ],
)
def test_every_class_gets_at_least_its_share(days: float, min_per_class: int, each: int) -> None:
    plan = plan_faults(days, 1, min_per_class=min_per_class)
    assert plan.counts() == dict.fromkeys(FaultClass, each)


def test_a_week_has_over_200_faults_for_every_seed() -> None:
    for seed in (1, 2, 3):
        assert len(plan_faults(7, seed).faults) >= 200  # 11 classes x 21


def test_faults_start_after_the_warm_up_and_end_inside_the_soak() -> None:
    plan = plan_faults(1, 3)
    for f in plan.faults:
        assert f.start_s >= 3600.0 and f.end_s <= plan.duration_s
        if f.fault_class in INSTANT:
            assert f.duration_s == 0
        else:
            lo, hi = DURATION_S[f.fault_class]
            assert lo <= f.duration_s <= hi
    outages = [f for f in plan.faults if f.fault_class is FaultClass.PROMETHEUS_OUTAGE]
    assert min(f.duration_s for f in outages) > 300.0  # longer than the scale-down window


def test_choosing_classes_keeps_the_others_times() -> None:
    everything = plan_faults(1, 5)
    restarts = plan_faults(1, 5, classes={FaultClass.RESTART})
    assert restarts.faults == tuple(
        f for f in everything.faults if f.fault_class is FaultClass.RESTART
    )


def test_active_and_starting() -> None:
    plan = plan_faults(1, 1)
    outage = next(f for f in plan.faults if f.fault_class is FaultClass.PROMETHEUS_OUTAGE)
    assert outage in plan.active(outage.start_s + 1.0)
    assert outage not in plan.active(outage.end_s)
    assert outage in plan.starting(outage.start_s - 15.0, outage.start_s)
    assert outage not in plan.starting(outage.start_s, outage.start_s + 15.0)


def test_class_names() -> None:
    assert parse_classes(["all"]) == frozenset(FaultClass)
    assert parse_classes(["none"]) == frozenset()
    assert parse_classes(["restart", "api-5xx"]) == {FaultClass.RESTART, FaultClass.API_5XX}
    with pytest.raises(ValueError, match="unknown fault class 'restrat'"):
        parse_classes(["restrat"])
    with pytest.raises(ValueError, match="days must be positive"):
        plan_faults(0, 1)
