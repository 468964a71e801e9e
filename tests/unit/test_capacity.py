"""The online capacity model: cost per request, saturation and latency calibration."""

import math

import pytest

from controller.capacity import (
    CapacityModel,
    max_rate_per_replica,
    predicted_latency_ms,
    service_time_s,
    update_capacity,
)
from controller.domain import Allocation, WorkloadMetrics

TWO_AT_HALF = Allocation(replicas=2, slice_pct=50)


def metrics(**kw: float | None) -> WorkloadMetrics:
    base: dict[str, float | None] = {"request_rate_rps": 20.0, "latency_ms": 150.0}
    base.update(kw)
    return WorkloadMetrics(**base)  # type: ignore[arg-type]


def test_cost_per_request_from_utilisation() -> None:
    # 10 rps per replica keep 40 % of a 50 % slice busy: 0.4 * 0.5 / 10 = 0.02 card-s/request
    m = update_capacity(CapacityModel(), metrics(gpu_util=0.4), TWO_AT_HALF, 2, 0.99)
    assert m.cost_card_s == pytest.approx(0.02)
    assert service_time_s(m, 50) == pytest.approx(0.04)  # 0.02 / 0.5


def test_busy_kernels_using_part_of_the_slice_reveal_saturation() -> None:
    # busy 80 % of the time but using 0.4 * 50 % of the card: 0.4 * 0.5 / 0.8 = 25 % effective
    m = update_capacity(CapacityModel(), metrics(gpu_util=0.4, gpu_busy=0.8), TWO_AT_HALF, 2, 0.99)
    assert m.sat_pct == pytest.approx(25.0)
    assert service_time_s(m, 100) == pytest.approx(
        service_time_s(m, 30)
    )  # beyond 25 % buys nothing


def test_full_use_of_the_slice_marks_it_explored() -> None:
    m = update_capacity(CapacityModel(), metrics(gpu_util=0.4, gpu_busy=0.4), TWO_AT_HALF, 2, 0.99)
    assert m.sat_pct is None
    assert m.explored_max_pct == 50


def test_latency_factor_calibrates_the_queueing_model() -> None:
    # mu = 1 / 0.04 = 25 rps; M/M/1 p99 at 10 rps = ln(100) / 15 = 307 ms; observed half of it
    m0 = update_capacity(
        CapacityModel(), metrics(gpu_util=0.4, latency_ms=None), TWO_AT_HALF, 2, 0.99
    )
    modelled = predicted_latency_ms(m0, 10.0, 50, 0.99)
    assert modelled == pytest.approx(1000 * math.log(100) / 15)
    m1 = update_capacity(m0, metrics(gpu_util=0.4, latency_ms=modelled / 2), TWO_AT_HALF, 2, 0.99)
    assert m1.latency_factor == pytest.approx(0.5, rel=0.02)


@pytest.mark.parametrize(
    ("observed", "ready"),
    [
        pytest.param(metrics(request_rate_rps=None, gpu_util=0.4), 2, id="rate-missing"),
        pytest.param(metrics(request_rate_rps=float("nan"), gpu_util=0.4), 2, id="rate-nan"),
        pytest.param(metrics(request_rate_rps=0.1, gpu_util=0.4), 2, id="too-few-requests"),
        pytest.param(metrics(gpu_util=0.4), 1, id="rollout-not-steady"),
    ],
)
def test_unusable_metrics_leave_the_model_unchanged(observed: WorkloadMetrics, ready: int) -> None:
    assert update_capacity(CapacityModel(), observed, TWO_AT_HALF, ready, 0.99) == CapacityModel()


def test_max_rate_inverts_the_latency_prediction() -> None:
    m = CapacityModel(cost_card_s=0.02)
    lam = max_rate_per_replica(m, 50, 0.99, 500.0)
    assert lam == pytest.approx(25 - math.log(100) / 0.5)  # 15.79 rps
    assert predicted_latency_ms(m, lam, 50, 0.99) == pytest.approx(500.0)
    assert max_rate_per_replica(m, 10, 0.99, 500.0) == 0.0  # mu = 5 < ln(100)/0.5: too slow idle
    assert max_rate_per_replica(m, 50, 0.99, 10_000.0) == pytest.approx(0.92 * 25)  # rho cap
