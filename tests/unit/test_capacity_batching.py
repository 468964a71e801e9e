"""The capacity model of a continuously batching LLM replica (#28): a TTFT or TPOT SLO.

A batching replica keeps its GPU busy at any load and serves many requests at once, so the
card-seconds a request costs overstate how busy it is; only its serial work (the prefill, a
slot in a full batch) queues. The model learns that serial time, the knee of the latency
curve, from the rate and the chosen latency alone, under the one-at-a-time cost.
"""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.capacity import (
    LOW_LOAD_RHO,
    SERIAL_EWMA_ALPHA,
    CapacityModel,
    max_rate_per_replica,
    predicted_latency_ms,
    quantile_multiplier,
    serial_time_s,
    service_time_s,
    update_capacity,
)
from controller.domain import Allocation, LatencyMetric, WorkloadMetrics

P95 = 0.95
Z95 = quantile_multiplier(P95)
TTFT = LatencyMetric.TTFT
WHOLE = 100
T_ALONE_S = 0.28  # a request alone on a card (prefill and decode): what busy time reflects
T_SERIAL_S = 0.05  # its prefill: what queues
BASE_MULT = 2.0  # the p95 of a lone prefill, in prefills


def first_token_p95_s(rate_per_replica: float) -> float:
    """A batching card's p95 TTFT: the prefill's own quantile plus an M/M/1 wait on prefills."""
    rho = rate_per_replica * T_SERIAL_S
    assert rho < 1
    return T_SERIAL_S * (BASE_MULT + Z95 * rho / (1 - rho))


def busy(rate_per_replica: float) -> float:
    """Time with any sequence running: near 1 long before first tokens slow down."""
    return min(0.99, 1 - math.exp(-rate_per_replica * T_ALONE_S))


def window(
    replicas: int, rate_per_replica: float, latency_s: float | None = None
) -> WorkloadMetrics:
    lat = first_token_p95_s(rate_per_replica) if latency_s is None else latency_s
    return WorkloadMetrics(
        request_rate_rps=replicas * rate_per_replica,
        latency_ms=1000.0 * lat,
        gpu_util=busy(rate_per_replica),
        window_s=60.0,
    )


def learn(model: CapacityModel, m: WorkloadMetrics, replicas: int) -> CapacityModel:
    return update_capacity(model, m, Allocation(replicas, WHOLE), replicas, P95, True, TTFT)


def test_one_at_a_time_a_batching_card_looks_full_at_a_fraction_of_its_knee() -> None:
    # the #28 defect: at 8 rps a card is busy 89 % of the time, so by card-seconds it costs
    # 0.11 s a request and is "full" at 9 rps; its first tokens stay under 500 ms to 14.5 rps
    fifo = CapacityModel(cost_card_s=busy(8.0) / 8.0)
    assert max_rate_per_replica(fifo, WHOLE, P95, 500.0) < 5.0
    assert first_token_p95_s(14.5) < 0.5


def test_flat_first_tokens_at_load_teach_the_knee() -> None:
    model = CapacityModel()
    for _ in range(40):
        model = learn(model, window(2, 8.0), 2)
    assert model.cost_card_s is not None and model.serial_cost_card_s is not None
    assert model.serial_cost_card_s < 0.5 * model.cost_card_s  # far under the card-seconds
    assert service_time_s(model, WHOLE) == pytest.approx(T_SERIAL_S, rel=0.2)
    # the model reproduces the latency it saw, and sizes near the true knee (14.5 rps)
    predicted = predicted_latency_ms(model, 8.0, WHOLE, P95)
    assert predicted == pytest.approx(1000.0 * first_token_p95_s(8.0), rel=0.01)
    assert 12.0 < max_rate_per_replica(model, WHOLE, P95, 500.0) < 18.0


def test_sized_on_its_own_knee_a_64_rps_step_takes_about_five_cards() -> None:
    # closed loop: size for 64 rps from what was learnt, serve, learn; from two cards at the
    # quiet load to the few the step needs (the one-at-a-time model asked for max-replicas)
    model = CapacityModel()
    for _ in range(20):
        model = learn(model, window(2, 8.0), 2)
    replicas = 2
    for _ in range(30):
        per_replica = max_rate_per_replica(model, WHOLE, P95, 500.0)
        replicas = math.ceil(64.0 / per_replica)
        model = learn(model, window(replicas, 64.0 / replicas), replicas)
    assert replicas in (5, 6)
    assert first_token_p95_s(64.0 / replicas) < 0.5


def test_one_window_moves_the_serial_cost_by_its_ewma_weight() -> None:
    prior = CapacityModel(cost_card_s=0.1)
    m = learn(prior, window(2, 8.0, latency_s=0.2), 2)
    # a, k priors: z and 1 (M/M/1): t = L / (z + rate L) = 0.2 / (3.0 + 1.6)
    t_obs = serial_time_s(0.2, 8.0, Z95, 1.0, Z95)
    assert t_obs == pytest.approx(0.2 / (Z95 + 1.6))
    # from the prior, the window's cost (the cost is learnt first, from the same window)
    assert m.cost_card_s is not None
    expected = math.exp(
        (1 - SERIAL_EWMA_ALPHA) * math.log(m.cost_card_s) + SERIAL_EWMA_ALPHA * math.log(t_obs)
    )
    assert m.serial_cost_card_s == pytest.approx(expected)
    assert (m.service_quantile_mult, m.wait_shape) == (None, 1.0)


def test_the_serial_cost_never_exceeds_what_a_request_costs() -> None:
    # an overload's long first tokens teach at most the one-at-a-time cost: the pessimistic
    # prior is also the bound
    prior = CapacityModel(cost_card_s=0.05, serial_cost_card_s=0.05)
    m = learn(prior, window(2, 19.0, latency_s=20.0), 2)
    assert m.cost_card_s is not None and m.serial_cost_card_s is not None
    assert m.serial_cost_card_s <= m.cost_card_s


def test_busy_time_is_no_overload_for_a_batching_replica() -> None:
    # busy 99 %: one at a time this window is an overload and teaches nothing; batching, it
    # is an ordinary loaded window
    loaded = WorkloadMetrics(
        request_rate_rps=24.0, latency_ms=250.0, gpu_util=0.99, gpu_busy=0.99, window_s=60.0
    )
    m = CapacityModel(cost_card_s=0.08)
    e2e = update_capacity(m, loaded, Allocation(2, WHOLE), 2, P95)
    assert e2e.settle_ticks > 0 and e2e.latency_samples == 0
    batching = learn(m, loaded, 2)
    assert batching.settle_ticks == 0 and batching.latency_samples == 1
    assert batching.serial_cost_card_s is not None and batching.serial_cost_card_s < 0.08


def test_a_backlog_still_arms_the_settling() -> None:
    m = CapacityModel(cost_card_s=0.08, serial_cost_card_s=0.04)
    drained = learn(m, window(2, 2.0, latency_s=40.0), 2)
    assert drained.serial_cost_card_s == 0.04 and drained.settle_ticks > 0


def test_low_load_first_tokens_teach_the_base_not_the_knee() -> None:
    m = CapacityModel(cost_card_s=0.08, serial_cost_card_s=0.05)
    rate = 0.5 * LOW_LOAD_RHO / T_SERIAL_S  # rho 0.15 by the serial time
    m1 = learn(m, window(2, rate, latency_s=0.1), 2)
    assert m1.serial_cost_card_s == 0.05
    queueing = Z95 * 0.15 / 0.85
    assert m1.service_quantile_mult == pytest.approx(0.1 / 0.05 - queueing)
    assert m1.calibrated


@pytest.mark.parametrize("metric", [LatencyMetric.E2E, TTFT, LatencyMetric.TPOT])
def test_only_a_batching_slo_learns_a_serial_cost(metric: LatencyMetric) -> None:
    m = update_capacity(CapacityModel(), window(2, 8.0), Allocation(2, WHOLE), 2, P95, True, metric)
    assert (m.serial_cost_card_s is not None) is (metric is not LatencyMetric.E2E)


def test_the_serial_cost_scales_with_the_slice_as_the_cost_does() -> None:
    m = CapacityModel(cost_card_s=0.1, serial_cost_card_s=0.02, sat_pct=50.0)
    assert service_time_s(m, 25) == pytest.approx(0.08)  # 0.02 / 0.25
    assert service_time_s(m, 100) == service_time_s(m, 50)  # past saturation, nothing more


@given(
    latency_s=st.floats(1e-4, 100.0),
    rate=st.floats(1e-3, 1e4),
    a=st.floats(1e-3, 20.0),
    k=st.floats(0.01, 3.0),
    quantile=st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_the_serial_time_is_the_model_inverted(
    latency_s: float, rate: float, a: float, k: float, quantile: float
) -> None:
    z = quantile_multiplier(quantile)
    t = serial_time_s(latency_s, rate, a, k, z)
    assert 0.0 < t < 1.0 / rate  # a steady queue
    m = CapacityModel(cost_card_s=1.0, serial_cost_card_s=t, service_quantile_mult=a, wait_shape=k)
    assert predicted_latency_ms(m, rate, WHOLE, quantile) == pytest.approx(
        1000.0 * latency_s, rel=1e-6
    )


@given(
    steps=st.lists(
        st.tuples(
            st.floats(0.05, 200.0),  # rate per replica
            st.floats(1.0, 60_000.0),  # latency, ms
            st.floats(1e-6, 1.0),  # gpu util
            st.one_of(st.none(), st.floats(0.0, 1.0)),  # gpu busy
        ),
        max_size=30,
    ),
    metric=st.sampled_from([TTFT, LatencyMetric.TPOT]),
)
def test_a_batching_model_stays_finite_and_positive(
    steps: list[tuple[float, float, float, float | None]], metric: LatencyMetric
) -> None:
    m = CapacityModel()
    for rate, latency_ms, util, gpu_busy in steps:
        w = WorkloadMetrics(
            request_rate_rps=2 * rate, latency_ms=latency_ms, gpu_util=util, gpu_busy=gpu_busy
        )
        m = update_capacity(m, w, Allocation(2, WHOLE), 2, P95, True, metric)
        if m.serial_cost_card_s is not None:
            assert m.cost_card_s is not None
            assert m.serial_cost_card_s > 0 and math.isfinite(m.serial_cost_card_s)
            assert max_rate_per_replica(m, WHOLE, P95, 500.0) >= 0.0
        if m.service_quantile_mult is not None:
            assert 0 < m.service_quantile_mult <= 3 * Z95 + 1e-9
