"""The HPA's ``behavior`` as annotations (issue #24): parsed into ``SloSpec.behavior`` and
applied by the stabilise stage, with the HPA's semantics and its defaults.

HPA (``autoscaling/v2`` ``HPAScalingRules``): ``stabilizationWindowSeconds`` 0 to 3600,
300 by default for scale-down; policies ``Percent`` and ``Pods`` per period (here a tick),
``selectPolicy: Max`` (the policy allowing the larger change wins); setting a direction's
policies replaces its defaults (up: 100 % and 4 pods; down: 100 %).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.capacity import CapacityModel
from controller.domain import (
    Allocation,
    DeploymentState,
    Reason,
    ScalingBehavior,
    ScalingRules,
    SloSpec,
    WorkloadMetrics,
    WorkloadRef,
)
from controller.policy.inputs import PlannerMemory, WorkloadInput
from controller.policy.stabilise import (
    StabiliseConfig,
    apply_scale_down_delay,
    apply_step_limit,
    scale_down_limit,
    scale_up_limit,
)
from controller.policy.verdict import Proposal
from tests.unit.spec_helpers import ann, ok_spec, only_error, parse

# --- parsing --------------------------------------------------------------------------------


def test_the_defaults_are_the_hpa_s() -> None:
    assert ok_spec({}).behavior == ScalingBehavior(
        scale_down_stabilization_s=None,  # 300 s, or 40 min for an on/off service
        scale_up=ScalingRules(max_percent=100.0, max_pods=4),
        scale_down=ScalingRules(max_percent=100.0, max_pods=None),
    )


BEHAVIORS = [
    pytest.param(
        ann(scale_down_stabilization="10m"),
        ScalingBehavior(scale_down_stabilization_s=600.0),
        id="window",
    ),
    pytest.param(
        ann(scale_down_stabilization="0"),
        ScalingBehavior(scale_down_stabilization_s=0.0),
        id="no-window",
    ),
    pytest.param(
        ann(scale_up_max_pods="2"),
        ScalingBehavior(scale_up=ScalingRules(max_pods=2)),  # the default 100 % is replaced
        id="up-pods-alone",
    ),
    pytest.param(
        ann(scale_up_max_percent="50", scale_up_max_pods="1"),
        ScalingBehavior(scale_up=ScalingRules(50.0, 1)),
        id="up-both",
    ),
    pytest.param(
        ann(scale_down_max_pods="1"),
        ScalingBehavior(scale_down=ScalingRules(max_pods=1)),
        id="down-pods",
    ),
    pytest.param(
        ann(scale_down_max_percent="10"),
        ScalingBehavior(scale_down=ScalingRules(max_percent=10.0)),
        id="down-percent",
    ),
]


@pytest.mark.parametrize(("annotations", "behavior"), BEHAVIORS)
def test_behavior_annotations(annotations: dict[str, str], behavior: ScalingBehavior) -> None:
    assert ok_spec(annotations).behavior == behavior


BAD = [
    pytest.param(ann(scale_down_stabilization="2h"), "at most 1h", id="window-over-an-hour"),
    pytest.param(ann(scale_down_max_percent="150"), "at most 100", id="down-over-100"),
    pytest.param(ann(scale_up_max_percent="0"), "positive", id="up-zero-percent"),
    pytest.param(ann(scale_up_max_pods="0"), ">= 1", id="up-zero-pods"),
    pytest.param(ann(scale_down_max_pods="x"), "integer", id="down-pods-not-a-number"),
]


@pytest.mark.parametrize(("annotations", "reason"), BAD)
def test_bad_behavior_values(annotations: dict[str, str], reason: str) -> None:
    assert reason in only_error(parse(annotations)).message


# --- the limits -----------------------------------------------------------------------------

UP = [
    pytest.param(1, ScalingRules(100.0, 4), 5, id="default-small-plus-4"),  # max(2, 1 + 4)
    pytest.param(10, ScalingRules(100.0, 4), 20, id="default-large-doubles"),  # max(20, 14)
    pytest.param(10, ScalingRules(50.0, None), 15, id="half"),  # ceil(10 * 1.5)
    pytest.param(3, ScalingRules(10.0, None), 4, id="percent-rounded-up"),  # ceil(3.3)
    pytest.param(10, ScalingRules(None, 2), 12, id="pods"),  # 10 + 2
    pytest.param(0, ScalingRules(50.0, None), 1, id="from-zero-at-least-one"),
]


@pytest.mark.parametrize(("current", "rules", "limit"), UP)
def test_scale_up_limit(current: int, rules: ScalingRules, limit: int) -> None:
    assert scale_up_limit(current, rules) == limit


DOWN = [
    pytest.param(10, ScalingRules(100.0, None), 0, id="default-unlimited"),  # int(10 * 0)
    pytest.param(10, ScalingRules(None, 1), 9, id="one-pod"),  # 10 - 1
    pytest.param(10, ScalingRules(25.0, None), 7, id="percent-truncated"),  # int(7.5)
    pytest.param(10, ScalingRules(10.0, 3), 7, id="larger-change-wins"),  # min(9, 7)
    pytest.param(2, ScalingRules(None, 5), 0, id="never-below-zero"),
]


@pytest.mark.parametrize(("current", "rules", "limit"), DOWN)
def test_scale_down_limit(current: int, rules: ScalingRules, limit: int) -> None:
    assert scale_down_limit(current, rules) == limit


FRESH = PlannerMemory()


def workload(
    replicas: int, behavior: ScalingBehavior, memory: PlannerMemory = FRESH
) -> WorkloadInput:
    spec = SloSpec(latency_target_ms=500.0, behavior=behavior)
    state = DeploymentState(WorkloadRef("prod", "chat"), {}, replicas, replicas, 50, 8192)
    metrics = WorkloadMetrics(request_rate_rps=40.0, latency_ms=300.0, good_ratio=1.0)
    return WorkloadInput(spec, state, metrics, None, CapacityModel(), memory)


def test_a_scale_down_is_limited_with_its_own_reason() -> None:
    inp = workload(10, ScalingBehavior(scale_down=ScalingRules(max_pods=2)))
    p = apply_step_limit(inp, Proposal(Allocation(3, 50), Reason.SCALE_DOWN))
    assert p.allocation == Allocation(8, 50)  # 10 - 2
    assert p.reason is Reason.SCALE_DOWN_LIMITED
    assert p.conditions[-1].message == "limited to 8 replicas this tick"


def test_a_scale_up_policy_of_one_pod_a_tick() -> None:
    inp = workload(4, ScalingBehavior(scale_up=ScalingRules(max_pods=1)))
    p = apply_step_limit(inp, Proposal(Allocation(9, 50), Reason.SCALE_UP))
    assert (p.allocation, p.reason) == (Allocation(5, 50), Reason.SCALE_UP_LIMITED)


def test_the_workload_s_window_replaces_the_default_even_when_on_off() -> None:
    # 4 x 50 % recommended at 900 s; by default (300 s) it bounds a scale-down at 1100 s
    seen = PlannerMemory(((900.0, Allocation(4, 50)),))
    down = Proposal(Allocation(2, 50), Reason.SCALE_DOWN)
    cfg = StabiliseConfig()
    held, _ = apply_scale_down_delay(workload(4, ScalingBehavior(), seen), down, 1100.0, cfg)
    assert held.allocation == Allocation(4, 50)
    short = workload(4, ScalingBehavior(scale_down_stabilization_s=120.0), seen)
    on_off = replace(short, rate_profile_rps=(0.0,) * 50 + (1.0,) * 50)  # half idle
    p, _ = apply_scale_down_delay(on_off, down, 1100.0, cfg)  # 200 s later: outside 120 s
    assert p.allocation == Allocation(2, 50)
