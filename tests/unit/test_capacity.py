"""The online capacity model: cost per request, saturation and latency calibration."""

import math

import pytest

from controller.capacity import (
    SETTLE_TICKS,
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


def test_low_load_latency_teaches_the_service_quantile() -> None:
    # t = 0.04 s at 50 %; 1 rps per replica: rho = 0.04, so latency is mostly service time.
    # prior (exponential): p99 = t * (4.6 + 4.6 * 0.04 / 0.96) = 192 ms; observed 100 ms
    low = metrics(request_rate_rps=2.0, gpu_util=0.04, latency_ms=100.0)
    m1 = update_capacity(CapacityModel(cost_card_s=0.02), low, TWO_AT_HALF, 2, 0.99)
    # a = 100 / 40 - 1 * 4.6 * 0.04 / 0.96 = 2.5 - 0.19 = 2.31
    assert m1.service_quantile_mult == pytest.approx(2.5 - math.log(100) * 0.04 / 0.96, rel=0.01)
    assert m1.wait_shape == 1.0


def test_high_load_latency_teaches_the_waiting_shape() -> None:
    # rho = 10 rps * 0.04 s = 0.4; with a = 2.5: L/t = 2.5 + k * 4.6 * 0.667. Observed 175 ms:
    # 175 / 40 = 4.375 -> k = (4.375 - 2.5) / 3.07 = 0.61 (service less variable than exponential)
    m = CapacityModel(cost_card_s=0.02, service_quantile_mult=2.5)
    obs = metrics(gpu_util=0.4, latency_ms=175.0)
    m1 = update_capacity(m, obs, TWO_AT_HALF, 2, 0.99)
    k_obs = (175 / 40 - 2.5) / (math.log(100) * 0.4 / 0.6)
    # one window moves the estimate by SHAPE_EWMA_ALPHA (0.05) in log space from the prior 1.0
    assert m1.wait_shape == pytest.approx(math.exp(0.95 * 0 + 0.05 * math.log(k_obs)), rel=1e-6)
    assert predicted_latency_ms(m1, 10.0, 50, 0.99) < predicted_latency_ms(m, 10.0, 50, 0.99)


def test_a_backlog_draining_after_an_overload_teaches_nothing() -> None:
    # After a burst the rate falls (2 rps, rho = 0.04) but the window's p99 still carries the
    # queue built during it: 8 s. Read as steady state it would make a = 200 (capped at 3z):
    # "no slice meets the target even idle". 8 s is well inside the 60 s window, so it is the
    # overload before it (rho 0.95) that arms the settling, which lasts SETTLE_TICKS windows.
    m = CapacityModel(cost_card_s=0.02, service_quantile_mult=2.5)
    overloaded = metrics(request_rate_rps=47.5, gpu_util=0.95, gpu_busy=0.95, latency_ms=4000.0)
    m1 = update_capacity(m, overloaded, TWO_AT_HALF, 2, 0.99)
    assert (m1.service_quantile_mult, m1.wait_shape) == (2.5, 1.0)
    assert m1.settle_ticks == SETTLE_TICKS
    draining = metrics(request_rate_rps=2.0, gpu_util=0.04, gpu_busy=0.04, latency_ms=8000.0)
    m2 = m1
    for _ in range(SETTLE_TICKS):
        m2 = update_capacity(m2, draining, TWO_AT_HALF, 2, 0.99)
        assert m2.service_quantile_mult == 2.5
    assert m2.settle_ticks == 0
    calm = metrics(request_rate_rps=2.0, gpu_util=0.04, gpu_busy=0.04, latency_ms=100.0)
    assert update_capacity(m2, calm, TWO_AT_HALF, 2, 0.99).latency_samples == 1


def test_a_quantile_longer_than_half_the_window_is_a_backlog() -> None:
    # 40 s p99 in a 60 s window: those requests were queued before the window began
    m = CapacityModel(cost_card_s=0.02, service_quantile_mult=2.5)
    slow = metrics(request_rate_rps=2.0, gpu_util=0.04, latency_ms=40_000.0, window_s=60.0)
    m1 = update_capacity(m, slow, TWO_AT_HALF, 2, 0.99)
    assert m1.service_quantile_mult == 2.5 and m1.settle_ticks == SETTLE_TICKS


def test_the_prior_is_exactly_m_m_1() -> None:
    m = CapacityModel(cost_card_s=0.02)  # mu = 25 rps at 50 %
    assert predicted_latency_ms(m, 10.0, 50, 0.99) == pytest.approx(1000 * math.log(100) / 15)


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
    assert lam == pytest.approx(25 - math.log(100) / 0.5)  # M/M/1 prior: 15.79 rps
    assert predicted_latency_ms(m, lam, 50, 0.99) == pytest.approx(500.0)
    assert max_rate_per_replica(m, 10, 0.99, 500.0) == 0.0  # mu = 5 < ln(100)/0.5: too slow idle
    assert max_rate_per_replica(m, 50, 0.99, 10_000.0) == pytest.approx(0.92 * 25)  # rho cap


def test_saturation_is_not_learnt_while_pods_of_two_slices_mix() -> None:
    # mid-resize from 50 % to 70 %: util and busy mix both slices; read against 70 % they
    # give an effective share of 0.21 x 70 / 0.37 = 40 %: a saturation that is not there
    mixed = metrics(request_rate_rps=4.0, gpu_util=0.21, gpu_busy=0.37)
    seventy = Allocation(replicas=2, slice_pct=70)
    m = CapacityModel(cost_card_s=0.02)
    assert update_capacity(m, mixed, seventy, 2, 0.99, one_slice=False).sat_pct is None
    assert update_capacity(m, mixed, seventy, 2, 0.99, one_slice=True).sat_pct == pytest.approx(
        0.21 * 70 / 0.37
    )
