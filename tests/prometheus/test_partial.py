"""Partial and hostile input against a real Prometheus: never a lower valid rate, and one
workload's broken query costs only that workload.

- a ready pod that is not scraped (or a window only partly covered) must not read as a lower
  rate: it is sized on the larger of the partial reading and the last full one, or unavailable;
- a ``custom`` query that is not valid PromQL makes only its own workload unavailable: the
  other workloads' batched queries still answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from actuators.prometheus import PodInfo, PrometheusMetricsSource, SourceSettings
from controller.domain import MetricsProfile
from tests.prometheus.conftest import SCRAPE_S, WINDOW_S, Stack, start_stack, target
from tests.prometheus.synthetic import Pod, Synthetic

API_PODS = tuple(f"api-7d5c9b8f6-p{i}abc" for i in range(4))
POD_MAP = {("shop", p): PodInfo("shop/api", 25) for p in API_PODS}
API = target("shop/api")
FULL_RPS = 80.0  # four pods at 20 rps
LOW = 0.95 * FULL_RPS  # below this a reading is not the full rate (scrape jitter stays above)


@pytest.fixture(scope="module")
def stack(stack_factory: list[Stack], tmp_path_factory: pytest.TempPathFactory) -> Stack:
    synthetic = Synthetic(
        http=[Pod("shop", p, 20.0, latency_max_s=0.2) for p in API_PODS],
        custom=[Pod("own", "cust-0", 7.0), Pod("mine", "mine-0", 3.0)],
    )
    s = start_stack(stack_factory, tmp_path_factory.mktemp("partial"), synthetic)
    s.prom.wait_for(
        f"count_over_time(up[{int((2 * WINDOW_S + SCRAPE_S) * 1000)}ms]) >= 13", timeout_s=30
    )
    return s


def make_source(stack: Stack) -> PrometheusMetricsSource:
    return PrometheusMetricsSource(
        stack.client(), SourceSettings(window_s=WINDOW_S, max_age_s=WINDOW_S), pods=lambda: POD_MAP
    )


@pytest.fixture
def source(stack: Stack) -> Iterator[PrometheusMetricsSource]:
    src = make_source(stack)
    yield src
    src.close()


def api_rate(source: PrometheusMetricsSource) -> tuple[float | None, tuple[str, ...]]:
    obs = source.observe([API], time.time())
    return obs.get(API.ref.key).request_rate_rps, obs.errors


def test_a_ready_pod_not_scraped_never_reads_as_a_lower_rate(
    stack: Stack, source: PrometheusMetricsSource
) -> None:
    rate, errors = api_rate(source)
    assert not errors
    assert rate == pytest.approx(FULL_RPS, rel=0.04)  # the last full reading

    stack.synthetic.missing.add(API_PODS[3])  # one of the four ready pods is not scraped
    try:
        readings = []
        deadline = time.monotonic() + 3 * WINDOW_S
        while time.monotonic() < deadline:  # while its samples age out of the window, and after
            readings.append(api_rate(source))
            time.sleep(SCRAPE_S / 2)
        low = [(r, e) for r, e in readings if r is not None and r < LOW]
        assert not low, f"partial readings passed off as the rate: {low}"
        rate, errors = readings[-1]
        assert rate == pytest.approx(FULL_RPS, rel=0.04), errors  # the last full reading
        assert any("shop/api" in e and "partial" in e and API_PODS[3] in e for e in errors), errors

        fresh = make_source(stack)  # no full reading to fall back on: unavailable, not 60
        try:
            rate, errors = api_rate(fresh)
        finally:
            fresh.close()
        assert rate is None, rate
        assert any("shop/api" in e and "partial" in e for e in errors), errors
    finally:
        stack.synthetic.missing.clear()

    readings = []
    deadline = time.monotonic() + 4 * WINDOW_S
    while time.monotonic() < deadline:  # the pod is back: its window fills up again
        readings.append(api_rate(source))
        time.sleep(SCRAPE_S / 2)
    low = [(r, e) for r, e in readings if r is not None and r < LOW]
    assert not low, f"a window only partly covered passed off as the rate: {low}"
    rate, errors = readings[-1]
    assert not errors
    assert rate == pytest.approx(FULL_RPS, rel=0.04)


def test_a_prometheus_just_started_never_reads_a_steady_workload_low(
    stack_factory: list[Stack], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A fresh Prometheus scrapes a workload that has served 80 rps for an hour: until one
    series covers a whole window, every reading is partial (here, with no earlier full
    reading, unavailable), never a low rate that would permit a scale-down."""
    hour_ago = time.time() - 3600.0
    synthetic = Synthetic(http=[Pod("shop", p, 20.0, 0.2, started_s=hour_ago) for p in API_PODS])
    fresh = start_stack(stack_factory, tmp_path_factory.mktemp("fresh"), synthetic)
    src = make_source(fresh)
    readings: list[tuple[float | None, bool, tuple[str, ...]]] = []
    try:
        deadline = time.monotonic() + 3 * WINDOW_S
        while time.monotonic() < deadline:  # from the first scrape until past one full window
            obs = src.observe([API], time.time())
            metrics = obs.get(API.ref.key)
            readings.append((metrics.request_rate_rps, metrics.rate_partial, obs.errors))
            time.sleep(SCRAPE_S / 2)
    finally:
        src.close()
    low = [r for r in readings if r[0] is not None and r[0] < LOW and not r[1]]
    assert not low, f"a window Prometheus had only started to fill passed off as the rate: {low}"
    first = readings[0]
    assert first[0] is None or first[1], first  # the first tick permits no scale-down
    new = [r for r in readings if any("shop/api" in e and "is new" in e for e in r[2])]
    assert new, readings  # the rate series existed, and was said to be new, before it was full
    rate, partial, errors = readings[-1]
    assert rate == pytest.approx(FULL_RPS, rel=0.04) and not partial, errors


GOOD = target(
    "own/cust",
    MetricsProfile.CUSTOM,
    rate_query='sum(rate(my_app_requests_total{namespace="own"}[3s]))',
    latency_query='max(my_app_latency_p99_seconds{namespace="own"})',
    good_ratio_query='avg(my_app_good_ratio{namespace="own"})',
)
UNBALANCED = target(
    "mine/broken",
    MetricsProfile.CUSTOM,
    rate_query="sum((",
    latency_query='max(my_app_latency_p99_seconds{namespace="mine"})',
)
REJECTED = target(  # well bracketed, but Prometheus refuses it: rate() of an instant vector
    "mine/wrong",
    MetricsProfile.CUSTOM,
    rate_query='sum(rate(my_app_requests_total{namespace="mine"}))',
    latency_query='max(my_app_latency_p99_seconds{namespace="mine"})',
)


def test_an_invalid_custom_query_costs_only_its_own_workload(
    source: PrometheusMetricsSource,
) -> None:
    targets = [GOOD, UNBALANCED, REJECTED]
    for _ in range(2):  # the second tick too, when the broken queries are known
        obs = source.observe(targets, time.time())
        good = obs.get(GOOD.ref.key)
        assert good.request_rate_rps == pytest.approx(7.0, rel=0.03), obs.errors
        assert good.latency_ms == pytest.approx(123.0)
        assert good.good_ratio == pytest.approx(0.995)
        assert good.core_available()
        for broken in (UNBALANCED, REJECTED):
            metrics = obs.get(broken.ref.key)
            assert metrics.request_rate_rps is None
            assert metrics.latency_ms == pytest.approx(123.0)  # its valid query still answers
            assert any(broken.ref.key in e and "rate" in e for e in obs.errors), obs.errors
        assert not any(GOOD.ref.key in e for e in obs.errors), obs.errors
