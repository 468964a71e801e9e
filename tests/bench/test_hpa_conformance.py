"""The bench's HPA against the published Kubernetes cases (``replica_calculator_test.go``)
and the default ``behavior`` of ``horizontal.go``: one named case per upstream test."""

from __future__ import annotations

import pytest

from sloscale.bench.hpa import (
    Behavior,
    HpaState,
    MetricTarget,
    PodPhase,
    PodSample,
    ScalingPolicy,
    normalize,
    record_scale,
    replica_count,
)


def cpu_pods(
    levels: list[int],
    requests: list[int] | None = None,
    ready: list[bool] | None = None,
    n: int | None = None,
) -> list[PodSample]:
    """Pods ``pod-0..``; the first ``len(levels)`` have a metric (milli-CPU), the rest none."""
    n = n if n is not None else len(levels)
    requests = requests or [1000] * n
    ready = ready or [True] * n
    return [
        PodSample(f"pod-{i}", float(levels[i]) if i < len(levels) else None, requests[i], ready[i])
        for i in range(n)
    ]


CPU_CASES = {
    # (current, pods, target %, expected)
    # 1500 m of 3000 m = 50 % -> ratio 50/30 = 1.67 -> ceil(1.67 x 3) = 5
    "ScaleUp": (3, cpu_pods([300, 500, 700]), 30, 5),
    # the unready pod is set aside: 1200/2000 = 60 % -> 2.0 > 1, so it counts as 0:
    # 1200/3000 = 40 % -> 1.33 -> ceil(1.33 x 3) = 4
    "ScaleUpUnreadyLessScale": (3, cpu_pods([300, 500, 700], ready=[False, True, True]), 30, 4),
    # 400/1000 = 40 % -> 1.33; with the unready at 0: 400/3000 = 13 % -> 0.44: direction flips
    "ScaleUpUnreadyNoScale": (3, cpu_pods([400, 500, 700], ready=[True, False, False]), 30, 3),
    # 1400/5000 = 28 % -> 0.56 -> ceil(0.56 x 5) = 3
    "ScaleDown": (5, cpu_pods([100, 300, 500, 250, 250]), 50, 3),
    # unready pods ignored on a scale-down: 900/3000 = 30 % -> 0.6 -> ceil(0.6 x 3) = 2
    "ScaleDownIgnoresUnreadyPods": (
        5,
        cpu_pods([100, 300, 500, 250, 250], ready=[True, True, True, False, False]),
        50,
        2,
    ),
    # 3060/3000 = 102 % -> within the 0.1 tolerance
    "Tolerance": (3, cpu_pods([1010, 1030, 1020], requests=[900, 1000, 1100]), 100, 3),
    # 495/2000 = 24 % -> scale-down: missing pods at 100 %: 2495/4000 = 62 % -> ceil(2.48) = 3
    "MissingMetrics": (4, cpu_pods([400, 95], n=4), 100, 3),
    # 100 % exactly: hold
    "MissingMetricsNoChangeEq": (2, cpu_pods([1000], n=2), 100, 2),
    # 190 % -> scale-up, the missing pod at 0: 1900/2000 = 95 % -> within tolerance
    "MissingMetricsNoChangeGt": (2, cpu_pods([1900], n=2), 100, 2),
    # 60 % -> scale-down, the missing pod at 100 %: 1600/2000 = 80 % -> ceil(1.6) = 2
    "MissingMetricsNoChangeLt": (2, cpu_pods([600], n=2), 100, 2),
    # 450/1000 = 45 % of 50 -> 0.9; missing at 100 %: 1450/2000 = 72 % -> 1.44: direction flips
    "MissingMetricsUnreadyNoChange": (
        3,
        cpu_pods([100, 450], ready=[False, True, True], n=3),
        50,
        3,
    ),
    # 2000/1000 = 200 % -> 4.0; unready and missing at 0: 2000/3000 = 66 % -> ceil(3.96) = 4
    "MissingMetricsUnreadyScaleUp": (
        3,
        cpu_pods([100, 2000], ready=[False, True, True], n=3),
        50,
        4,
    ),
    # 200/2000 = 10 % -> 0.2; the missing pod at 100 %: 1200/3000 = 40 % -> ceil(2.4) = 3
    "MissingMetricsUnreadyScaleDown": (
        4,
        cpu_pods([100, 100, 100], ready=[False, True, True, True], n=4),
        50,
        3,
    ),
}


@pytest.mark.parametrize("case", list(CPU_CASES), ids=list(CPU_CASES))
def test_replica_calculator_matches_kubernetes(case: str) -> None:
    current, pods, target_pct, expected = CPU_CASES[case]
    assert replica_count(current, pods, MetricTarget(target_pct, resource=True)) == expected


def test_superfluous_metrics_of_unknown_pods_are_ignored() -> None:
    # upstream TestReplicaCalcSuperfluousMetrics: 4 pods, 23500 m of 4000 m = 587 % -> 24
    pods = cpu_pods([4000, 9500, 3000, 7000])
    assert replica_count(4, pods, MetricTarget(100, resource=True)) == 24


def test_plain_metric_scale_down_cm() -> None:
    # upstream TestReplicaCalcScaleDownCM: 5 pods at 12 of target 20 -> ceil(0.6 x 5) = 3
    pods = [PodSample(f"p{i}", 12.0) for i in range(5)]
    assert replica_count(5, pods, MetricTarget(20)) == 3


def test_plain_metric_tolerance_cm() -> None:
    # upstream TestReplicaCalcToleranceCM: (20 + 21 + 21) / 3 = 20.67 of 20 -> 1.033: hold
    pods = [PodSample("a", 20.0), PodSample("b", 21.0), PodSample("c", 21.0)]
    assert replica_count(3, pods, MetricTarget(20)) == 3


def test_pending_pods_are_ignored_and_no_metrics_means_no_recommendation() -> None:
    pending = PodSample("p", None, ready=False, phase=PodPhase.PENDING)
    # 90 of 60 -> 1.5 > 1: the pending pod counts as idle, (90 + 0) / 2 = 45 -> 0.75: hold
    assert replica_count(2, [PodSample("a", 90.0), pending], MetricTarget(60)) == 2
    # with a pod starting (no metric yet) the same holds: missing pods count as idle
    assert replica_count(2, [PodSample("a", 90.0), PodSample("b", None)], MetricTarget(60)) == 2
    # without it: ceil(1.5 x 1) = 2 replicas for the one ready pod
    assert replica_count(1, [PodSample("a", 90.0)], MetricTarget(60)) == 2
    assert replica_count(2, [PodSample("a", None), pending], MetricTarget(60)) is None


def test_scale_down_waits_for_the_300_s_stabilisation_window() -> None:
    state = HpaState()
    assert normalize(10, 10, state, 0.0, min_replicas=1, max_replicas=50) == (
        10,
        "DesiredWithinRange",
    )
    # the recommendation drops to 4 at t=15: the window still holds 10
    assert normalize(10, 4, state, 15.0, min_replicas=1, max_replicas=50)[0] == 10
    # at t=300 the 10 recorded at t=0 has left the window (300 s after it): 4 wins
    assert normalize(10, 4, state, 300.0, min_replicas=1, max_replicas=50)[0] == 4


def test_scale_up_is_limited_to_max_of_double_and_four_pods_per_15_s() -> None:
    state = HpaState()
    # from 1: max(ceil(1 x 2), 1 + 4) = 5
    assert normalize(1, 20, state, 0.0, min_replicas=1, max_replicas=50) == (5, "ScaleUpLimit")
    record_scale(state, 0.0, 1, 5)
    # 15 s later the event has left the period: from 5, max(10, 9) = 10
    assert normalize(5, 20, state, 15.0, min_replicas=1, max_replicas=50)[0] == 10
    record_scale(state, 15.0, 5, 10)
    # within the same period a second step is measured from the period's start (5)
    assert normalize(10, 20, state, 20.0, min_replicas=1, max_replicas=50)[0] == 10
    # and max replicas bounds everything
    assert normalize(10, 20, HpaState(), 60.0, min_replicas=1, max_replicas=12) == (
        12,
        "TooManyReplicas",
    )


def test_default_behaviour_matches_autoscaling_v2_defaults() -> None:
    b = Behavior()
    assert b.scale_up_stabilization_s == 0 and b.scale_down_stabilization_s == 300
    assert {(p.kind, p.value, p.period_s) for p in b.scale_up} == {
        ("Percent", 100, 15.0),
        ("Pods", 4, 15.0),
    }


# Upstream's normalizeDesiredReplicasWithBehaviors after earlier scale events in the period
# (horizontal.go; kubernetes#109058): the period started at current - added + removed, and
# the scale-down limit is never above the current count. Two pods per minute down:
DOWN_2 = Behavior(scale_down=(ScalingPolicy("Pods", 2, 60.0),))


def _history(*events: tuple[str, float, int]) -> HpaState:
    state = HpaState(seen=True)  # an HPA that has reconciled before
    for kind, t, n in events:
        (state.up_events if kind == "up" else state.down_events).append((t, n))
    return state


def test_a_new_hpa_records_the_current_replicas_first() -> None:
    # TestScaleDownStabilizeInitialSize: 5 replicas, the metric asks for 3, no recommendation
    # yet: the current 5 is the window's first recommendation, so 5 holds
    assert normalize(5, 3, HpaState(), 0.0, min_replicas=2, max_replicas=6) == (
        5,
        "ScaleDownStabilized",
    )


def test_a_scale_up_in_the_period_lowers_the_scale_down_limit() -> None:
    # 10 now, 4 added 30 s ago: the period started at 6, so 2 down allows 4 (not 12)
    state = _history(("up", 30.0, 4))
    got = normalize(10, 1, state, 60.0, min_replicas=1, max_replicas=20, rules=DOWN_2)
    assert got == (4, "ScaleDownLimit")


def test_removals_in_the_period_use_up_the_scale_down_budget() -> None:
    # 8 now, 2 removed 30 s ago: the period started at 10, 2 down allows 8: nothing more
    state = _history(("down", 30.0, 2))
    got = normalize(8, 4, state, 60.0, min_replicas=1, max_replicas=20, rules=DOWN_2)
    assert got[0] == 8


def test_an_exhausted_scale_down_never_turns_into_a_scale_up() -> None:
    # 5 now, 4 removed 30 s ago: the period started at 9, 2 down gives 7, above 5: hold at 5
    state = _history(("down", 30.0, 4))
    got = normalize(5, 3, state, 60.0, min_replicas=1, max_replicas=20, rules=DOWN_2)
    assert got[0] == 5
