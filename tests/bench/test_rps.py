"""``rps``: the HPA on requests per second per pod (a Pods metric, AverageValue target)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from controller.domain import WorkloadMetrics
from loadtests.shapes import traces_dir
from sloscale.bench.hpa import MetricTarget, PodPhase, PodSample, replica_count
from sloscale.bench.rps import RpsHpaPolicy, reference_rps, target_rps
from sloscale.bench.runner import RunSpec, run_one
from sloscale.bench.settings import BenchSettings
from sloscale.bench.setup import prepare

TRACE = traces_dir() / "servegen_mm-image_per_10min.csv"


def pods(rate: float, ready: int, starting: int = 0, pending: int = 0) -> list[PodSample]:
    """What ``pods_of`` lists: ready pods share the rate; starting pods report nothing."""
    out = [PodSample(f"ready-{i}", rate / ready) for i in range(ready)]
    out += [PodSample(f"starting-{i}", None, ready=False) for i in range(starting)]
    out += [
        PodSample(f"pending-{i}", None, ready=False, phase=PodPhase.PENDING) for i in range(pending)
    ]
    return out


@pytest.mark.parametrize(
    ("rate", "ready", "target"), [(10.0, 2, 3.0), (2.0, 4, 3.0), (7.9, 3, 2.0)]
)
def test_every_pod_reporting_is_ceil_of_the_sum_over_the_target(
    rate: float, ready: int, target: float
) -> None:
    assert replica_count(ready, pods(rate, ready), MetricTarget(target)) == math.ceil(rate / target)


def test_tolerance_holds_and_pending_pods_are_ignored() -> None:
    # 6.2 rps over 2 pods at a target of 3: ratio 1.03, within 0.1
    assert replica_count(2, pods(6.2, 2, pending=3), MetricTarget(3.0)) == 2


def test_unready_pods_are_missing_not_set_aside() -> None:
    # scale-up: 12 rps over 2 ready pods, target 3 -> ratio 2; the 2 starting pods count as 0:
    # 12 / 4 pods = 3 per pod -> within tolerance: hold (a CPU target would set them aside)
    assert replica_count(4, pods(12.0, 2, starting=2), MetricTarget(3.0)) == 4
    # scale-down: 1 rps over 2 ready pods; the starting pod counts at the target:
    # (0.5 + 0.5 + 3) / 3 pods = 1.33 per pod -> ratio 0.44 -> ceil(0.44 x 3) = 2
    assert replica_count(3, pods(1.0, 2, starting=1), MetricTarget(3.0)) == 2


def test_pod_value_is_the_rate_shared_over_ready_pods() -> None:
    policy = RpsHpaPolicy.__new__(RpsHpaPolicy)
    assert policy.pod_value(WorkloadMetrics(request_rate_rps=9.0), 3) == 3.0
    assert policy.pod_value(WorkloadMetrics(request_rate_rps=None), 3) is None
    assert policy.pod_value(WorkloadMetrics(request_rate_rps=9.0), 0) is None


@pytest.mark.skipif(not TRACE.exists(), reason="shared traces not available")
def test_a_lower_target_holds_more_gpus() -> None:
    setup = prepare(BenchSettings(Path(TRACE), hours=1.0))
    assert target_rps(setup, 50) == pytest.approx(reference_rps(setup) / 2)
    low = run_one(setup, RunSpec("rps", rps_target_pct=40))
    high = run_one(setup, RunSpec("rps", rps_target_pct=100))
    assert low.name == "rps@40" and low.hpa_target_pct is None
    assert low.gpu_hours > high.gpu_hours
    assert low.slo_attainment is not None and high.slo_attainment is not None
    assert low.slo_attainment >= high.slo_attainment
