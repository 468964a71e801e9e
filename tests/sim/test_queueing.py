"""The latency engine: vectorised Lindley against a plain event loop, and against M/M/1 theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actuators.sim.load import ConstantPattern, DiurnalPattern
from actuators.sim.model import ModelParams
from actuators.sim.queueing import Arrivals, ArrivalStream, serve_fifo


def reference_fifo(
    start_s: float,
    end_s: float,
    arrivals: Arrivals,
    service_s: np.ndarray,
    residual_s: np.ndarray,
    timeout_s: float,
) -> tuple[list[list[float]], list[float]]:
    """One request at a time: per replica, latencies in arrival order and final residual."""
    k = len(service_s)
    work = list(residual_s)
    last_t = [start_s] * k
    out: list[list[float]] = [[] for _ in range(k)]
    for t, u, m in zip(arrivals.times_s, arrivals.dispatch_u, arrivals.work, strict=True):
        r = min(int(u * k), k - 1)
        wait = max(0.0, work[r] - (t - last_t[r]))
        last_t[r] = t
        if wait > timeout_s:
            work[r] = wait
            out[r].append(math.inf)
        else:
            work[r] = wait + m * service_s[r]
            out[r].append(wait + m * service_s[r])
    residual = [max(0.0, w - (end_s - lt)) for w, lt in zip(work, last_t, strict=True)]
    return out, residual


def random_arrivals(rng: np.random.Generator, n: int, start: float, end: float) -> Arrivals:
    return Arrivals(np.sort(rng.uniform(start, end, n)), rng.random(n), rng.gamma(2.0, 0.5, n))


CASES = {
    "light load, one replica": (1, 50, 0.01, 0.0, math.inf),
    "heavy load, three replicas": (3, 400, 0.05, 0.0, math.inf),
    "carried-over work": (4, 100, 0.08, 3.0, math.inf),
    "overload with client timeout": (2, 600, 0.2, 5.0, 4.0),
    "some replicas get nothing": (8, 3, 0.1, 1.0, math.inf),
}


@pytest.mark.parametrize(("k", "n", "service", "residual", "timeout"), CASES.values(), ids=CASES)
def test_vectorised_lindley_matches_an_event_loop(
    k: int, n: int, service: float, residual: float, timeout: float
) -> None:
    rng = np.random.default_rng(7)
    arrivals = random_arrivals(rng, n, 100.0, 110.0)
    service_s = service * rng.uniform(0.5, 1.5, k)
    residual_s = residual * rng.random(k)
    got = serve_fifo(
        100.0, 110.0, arrivals, service_s=service_s, residual_s=residual_s, timeout_s=timeout
    )
    want, want_residual = reference_fifo(100.0, 110.0, arrivals, service_s, residual_s, timeout)
    # serve_fifo groups its output by replica, arrival order within a replica
    np.testing.assert_allclose(got.latency_s, np.concatenate([*want, []]), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.residual_s, want_residual, atol=1e-9)
    assert got.timed_out == sum(math.isinf(x) for r in want for x in r)
    # work conservation: busy time = work at start + accepted work - work at end
    assert got.busy_s.sum() <= k * 10.0 + 1e-9
    assert np.all(got.busy_s >= -1e-9)


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 6),
    n=st.integers(0, 300),
    service=st.floats(0.001, 0.5),
    residual=st.floats(0.0, 20.0),
    timeout=st.sampled_from([0.5, 3.0, math.inf]),
    seed=st.integers(0, 2**16),
)
def test_lindley_property_matches_the_event_loop(
    k: int, n: int, service: float, residual: float, timeout: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    arrivals = random_arrivals(rng, n, 0.0, 15.0)
    service_s = service * rng.uniform(0.5, 1.5, k)
    residual_s = residual * rng.random(k)
    got = serve_fifo(
        0.0, 15.0, arrivals, service_s=service_s, residual_s=residual_s, timeout_s=timeout
    )
    want, want_residual = reference_fifo(0.0, 15.0, arrivals, service_s, residual_s, timeout)
    np.testing.assert_allclose(got.latency_s, np.concatenate([*want, []]), rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(got.residual_s, want_residual, atol=1e-8)
    # work conservation per replica: busy = start work + accepted work - end work <= span
    assert np.all(got.busy_s <= 15.0 + 1e-8)


def test_no_ready_replica_fails_every_request() -> None:
    arrivals = random_arrivals(np.random.default_rng(1), 20, 0.0, 15.0)
    got = serve_fifo(0.0, 15.0, arrivals, service_s=np.empty(0), residual_s=np.empty(0))
    assert got.failed == 20
    assert got.served == 0
    assert np.all(np.isinf(got.latency_s))


def test_timeout_bounds_the_queue_under_overload() -> None:
    # 50 rps offered to a replica serving 10 rps: without the timeout the wait would grow
    # by ~4 s every second; with it no accepted request waits more than 30 s.
    model = ModelParams(t0_s=0.1, s_sat_pct=100, service_cv=1.0)
    stream = ArrivalStream(ConstantPattern(50.0), model, seed=3, key="ns/overload")
    residual = np.zeros(1)
    worst = 0.0
    for minute in range(10):
        a, b = minute * 60.0, (minute + 1) * 60.0
        r = serve_fifo(
            a,
            b,
            stream.between(a, b),
            service_s=np.array([0.1]),
            residual_s=residual,
            timeout_s=30.0,
        )
        residual = r.residual_s
        finite = r.latency_s[np.isfinite(r.latency_s)]
        worst = max(worst, float(finite.max()))
    assert residual[0] <= 30.0 + 2.0  # at most the timeout plus one request's service
    assert worst <= 30.0 + 2.0


def test_mm1_mean_and_p99_sojourn_match_theory() -> None:
    # lambda = 6, mu = 10 (t0 = 0.1 s, exponential service): sojourn ~ Exp(mu - lambda)
    # mean = 1 / (10 - 6) = 0.25 s; p99 = -ln(0.01) / 4 = 1.151 s. Over ~360 000 requests
    # seeds 0..9 land within 1.5 % (mean) and 3.3 % (p99) of theory.
    lam, mu = 6.0, 10.0
    model = ModelParams(t0_s=1.0 / mu, s_sat_pct=100, service_cv=1.0)
    stream = ArrivalStream(ConstantPattern(lam), model, seed=11, key="ns/mm1")
    residual = np.zeros(1)
    parts = []
    for minute in range(1000):
        a, b = minute * 60.0, (minute + 1) * 60.0
        r = serve_fifo(
            a, b, stream.between(a, b), service_s=np.array([1.0 / mu]), residual_s=residual
        )
        residual = r.residual_s
        parts.append(r.latency_s)
    sojourn = np.concatenate(parts)
    assert float(sojourn.mean()) == pytest.approx(1.0 / (mu - lam), rel=0.04)
    assert float(np.quantile(sojourn, 0.99)) == pytest.approx(
        -math.log(0.01) / (mu - lam), rel=0.07
    )


def test_arrivals_do_not_depend_on_how_time_is_sliced() -> None:
    pattern = DiurnalPattern(base_rps=5, peak_rps=50, seed=2)
    model = ModelParams(t0_s=0.05, s_sat_pct=50)
    whole = ArrivalStream(pattern, model, seed=9, key="ns/a").between(0.0, 1800.0)
    chunked = ArrivalStream(pattern, model, seed=9, key="ns/a")
    pieces = [chunked.between(t, t + 7.5) for t in np.arange(0.0, 1800.0, 7.5)]
    np.testing.assert_array_equal(whole.times_s, np.concatenate([p.times_s for p in pieces]))
    np.testing.assert_array_equal(whole.work, np.concatenate([p.work for p in pieces]))
    other = ArrivalStream(pattern, model, seed=9, key="ns/b").between(0.0, 1800.0)
    assert len(other) != len(whole) or not np.array_equal(other.times_s, whole.times_s)


def test_arrival_counts_follow_the_pattern() -> None:
    # 20 rps for an hour: 72 000 expected, Poisson sd ~ 268
    stream = ArrivalStream(
        ConstantPattern(20.0), ModelParams(t0_s=0.1, s_sat_pct=100), seed=4, key="ns/c"
    )
    assert len(stream.between(0.0, 3600.0)) == pytest.approx(72_000, abs=1_200)
    assert stream.expected(0.0, 3600.0) == pytest.approx(72_000)


def test_service_multipliers_have_unit_mean_and_the_requested_cv() -> None:
    rng = np.random.default_rng(5)
    m = ModelParams(t0_s=0.1, s_sat_pct=100, service_cv=0.5).work_multipliers(rng, 200_000)
    assert float(m.mean()) == pytest.approx(1.0, rel=0.01)
    assert float(m.std() / m.mean()) == pytest.approx(0.5, rel=0.02)


def test_service_rate_saturates_at_s_sat() -> None:
    m = ModelParams(t0_s=0.1, s_sat_pct=40)
    # mu(s) = min(s, 40) / (40 * 0.1): 20 % -> 5 rps, 40 % -> 10 rps, 80 % -> still 10 rps
    assert m.service_rate_rps(20) == pytest.approx(5.0)
    assert m.service_rate_rps(40) == pytest.approx(10.0)
    assert m.service_rate_rps(80) == pytest.approx(10.0)
    assert m.mean_service_s(20) == pytest.approx(0.2)
