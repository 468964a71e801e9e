"""The Prometheus source against a real Prometheus, one synthetic workload per profile.

The exporter's counters grow at set rates with latencies uniform on ``[0, L]``, so each number
the source reports is checked against the arithmetic (and, for quantiles, against the server's
own ``histogram_quantile`` over the same data). Tolerances: rates within 3 % (scrape jitter),
quantiles within 1e-6 of the server's and 2 % of the hand-computed value.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actuators.prometheus import PodInfo, PrometheusMetricsSource, SourceSettings
from controller.domain import MetricsProfile, Observation
from tests.prometheus.conftest import SCRAPE_S, WINDOW_S, Stack, start_stack, target
from tests.prometheus.synthetic import Pod, Synthetic, expected_quantile

HTTP_PODS = ("web-6d9f8b7c5-abcde", "web-6d9f8b7c5-fghij")
POD_MAP = {
    ("shop", HTTP_PODS[0]): PodInfo("shop/web", 50),
    ("shop", HTTP_PODS[1]): PodInfo("shop/web", 50),
    ("llm", "chat-0"): PodInfo("llm/chat", 30),
}


def synthetic() -> Synthetic:
    return Synthetic(
        http=[
            Pod("shop", HTTP_PODS[0], 10.0, latency_max_s=0.4),
            Pod("shop", HTTP_PODS[1], 20.0, latency_max_s=0.4),
            # not in the pod map: found by its ``deployment`` label, then by ReplicaSet naming
            Pod("shop", "search-xyz", 4.0, latency_max_s=0.2, deployment="search"),
            Pod("shop", "cart-5c4b3a291-qwert", 6.0, latency_max_s=0.2),
            Pod("shop", "unmanaged-1", 100.0),  # no target: ignored
        ],
        vllm=[Pod("llm", "chat-0", 5.0, latency_max_s=2.0), Pod("llm", "idle-0", 0.0)],
        vllm_in_flight={"chat-0": (3.0, 2.0), "idle-0": (1.0, 4.0)},
        http_active={HTTP_PODS[0]: 5.0, HTTP_PODS[1]: 7.0},
        triton=[Pod("vision", "resnet-7f6e5d4c3-aaaaa", 8.0)],
        custom=[Pod("own", "cust-0", 7.0)],
        dcgm={HTTP_PODS[0]: ("shop", 40.0, 10000.0), HTTP_PODS[1]: ("shop", 40.0, 12000.0)},
        hami={"chat-0": ("llm", 24.0, 8 * 1024**3)},
    )


@pytest.fixture(scope="module")
def stack(stack_factory: list[Stack], tmp_path_factory: pytest.TempPathFactory) -> Stack:
    s = start_stack(stack_factory, tmp_path_factory.mktemp("prom"), synthetic())
    s.prom.wait_for(
        f"count_over_time(up[{int((WINDOW_S + SCRAPE_S) * 1000)}ms]) >= 7", timeout_s=20
    )
    return s


@pytest.fixture
def source(stack: Stack) -> Iterator[PrometheusMetricsSource]:
    src = PrometheusMetricsSource(
        stack.client(),
        SourceSettings(window_s=WINDOW_S, max_age_s=WINDOW_S),
        pods=lambda: POD_MAP,
    )
    yield src
    src.close()


TARGETS = [
    target("shop/web"),
    target("shop/search", target_ms=300.0),
    target("shop/cart"),
    target("llm/chat", MetricsProfile.VLLM, target_ms=1000.0),
    target("llm/idle", MetricsProfile.VLLM),
    target("vision/resnet", MetricsProfile.TRITON, target_ms=50.0),
    target(
        "own/cust",
        MetricsProfile.CUSTOM,
        rate_query='sum(rate(my_app_requests_total{namespace="own"}[3s]))',
        latency_query='max(my_app_latency_p99_seconds{namespace="own"})',
        good_ratio_query='avg(my_app_good_ratio{namespace="own"})',
    ),
]


@pytest.fixture
def observed(source: PrometheusMetricsSource) -> Observation:
    return source.observe(TARGETS, time.time())


def test_http_rate_sums_the_workloads_pods(observed: Observation) -> None:
    assert not observed.errors
    web = observed.get("shop/web")
    assert web.request_rate_rps == pytest.approx(30.0, rel=0.03)  # 10 + 20 rps


def test_http_requests_in_flight_sum_the_pods_and_are_optional(observed: Observation) -> None:
    # http_server_active_requests (OpenTelemetry's http.server.active_requests): 5 + 7
    assert observed.get("shop/web").in_flight == pytest.approx(12.0)
    assert observed.get("shop/search").in_flight is None  # not exported: unknown, not zero
    assert observed.get("llm/chat").in_flight == pytest.approx(5.0)  # vLLM running + waiting


def test_http_quantile_matches_prometheus_histogram_quantile(
    stack: Stack, source: PrometheusMetricsSource
) -> None:
    now = time.time()
    web = source.observe(TARGETS, now).get("shop/web")
    server = stack.prom.query(
        "histogram_quantile(0.99, sum by (le) "
        '(rate(http_server_request_duration_seconds_bucket{namespace="shop",pod=~"web-.*"}[3s])))',
        now,
    )
    assert web.latency_ms == pytest.approx(float(server[0]["value"][1]) * 1000, rel=1e-6)
    # uniform on [0, 0.4 s]: rank 0.99 lies in (0.25, 0.5]: 0.25 + 0.25 * (0.99-0.625)/0.375
    assert web.latency_ms == pytest.approx(expected_quantile(0.99, 0.4) * 1000, rel=0.02)
    assert web.latency_ms == pytest.approx(493.3, rel=0.02)


def test_good_ratio_is_exact_at_a_bucket_bound(
    observed: Observation, source: PrometheusMetricsSource
) -> None:
    # target 250 ms is the le="0.25" bound: 0.25 / 0.4 = 0.625 of requests are good
    assert observed.get("shop/web").good_ratio == pytest.approx(0.625, rel=0.01)
    assert "shop/web" not in source.interpolated_thresholds


def test_good_ratio_between_bounds_is_interpolated_and_says_so(
    source: PrometheusMetricsSource, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "sloscale.prometheus"):
        search = source.observe(TARGETS, time.time()).get("shop/search")
    # uniform on [0, 0.2 s], target 300 ms is above every request: bucket (0.25, 0.5] is
    # empty, so the interpolation gives 1.0; what matters is the flag and the warning
    assert search.good_ratio == pytest.approx(1.0)
    assert "shop/search" in source.interpolated_thresholds
    assert any("not one of the bucket bounds" in r.message for r in caplog.records)


def test_workload_found_by_label_and_by_replicaset_pod_name(observed: Observation) -> None:
    assert observed.get("shop/search").request_rate_rps == pytest.approx(4.0, rel=0.03)
    assert observed.get("shop/cart").request_rate_rps == pytest.approx(6.0, rel=0.03)


def test_dcgm_gpu_utilisation_is_used_over_allocated_share(observed: Observation) -> None:
    web = observed.get("shop/web")
    assert web.gpu_util == pytest.approx(0.8)  # (0.40 + 0.40 card) / (0.5 + 0.5 card)
    assert web.gpu_memory_mib == pytest.approx(11000.0)  # mean of 10000 and 12000 MiB
    assert web.gpu_busy is None  # slices of shared cards: DCGM cannot tell busy time


def test_vllm_rate_latency_and_hami_gpu(observed: Observation) -> None:
    chat = observed.get("llm/chat")
    assert chat.request_rate_rps == pytest.approx(5.0, rel=0.03)
    # uniform on [0, 2 s]: rank 0.99 in (1.0, 2.5]: 1 + 1.5 * (0.99 - 0.5) / 0.5 = 2.47 s
    assert chat.latency_ms == pytest.approx(2470.0, rel=0.02)
    assert chat.good_ratio == pytest.approx(0.5, rel=0.01)  # le="1.0": 1 / 2
    assert chat.gpu_util == pytest.approx(0.8)  # HAMi: 24 % of a card on a 30 % slice
    assert chat.gpu_memory_mib == pytest.approx(8192.0)


def test_vllm_requests_in_flight_without_completions_is_unavailable_not_idle(
    observed: Observation,
) -> None:
    idle = observed.get("llm/idle")
    assert idle.request_rate_rps is None  # 5 requests running or waiting, none completed
    assert idle.latency_ms is None


def test_triton_counts_success_and_failure_and_reads_the_summary(observed: Observation) -> None:
    resnet = observed.get("vision/resnet")
    assert resnet.request_rate_rps == pytest.approx(9.0, rel=0.03)  # 8 ok + 1 failed per s
    assert resnet.latency_ms == pytest.approx(80.0)  # quantile="0.99": 80000 us
    # 50 ms between q0.9 = 40 ms and q0.99 = 80 ms: 0.9 + 0.09 * 10/40 = 0.9225
    assert resnet.good_ratio == pytest.approx(0.9225)


def test_custom_profile_uses_the_annotation_queries(observed: Observation) -> None:
    cust = observed.get("own/cust")
    assert cust.request_rate_rps == pytest.approx(7.0, rel=0.03)
    assert cust.latency_ms == pytest.approx(123.0)
    assert cust.good_ratio == pytest.approx(0.995)


def test_queries_per_tick_do_not_grow_with_workloads(
    stack: Stack, source: PrometheusMetricsSource
) -> None:
    """1 workload or 60 across 30 namespaces: the same number of queries reach Prometheus."""
    few = [target("shop/web")]
    many = [target(f"ns-{i % 30}/svc-{i}") for i in range(59)] + few

    def sent(targets: list) -> tuple[int, float]:  # type: ignore[type-arg]
        before_client = source.client.queries_total
        before_server = stack.prom.self_metric(
            "prometheus_http_requests_total", handler="/api/v1/query"
        )
        obs = source.observe(targets, time.time())
        assert not obs.errors
        after_server = stack.prom.self_metric(
            "prometheus_http_requests_total", handler="/api/v1/query"
        )
        return source.client.queries_total - before_client, after_server - before_server

    assert sent(few) == sent(many)
    client_count, server_count = sent(many)
    assert client_count == server_count == 8  # http: rate, buckets, in flight; gpu: 3 + 2
    mixed = sent(TARGETS)[0]
    assert mixed == sent(TARGETS * 1)[0] <= 17  # 12 for the profiles, 5 for the GPUs


def test_counter_reset_is_not_a_drop_in_rate(stack: Stack, source: PrometheusMetricsSource) -> None:
    stack.synthetic.reset(HTTP_PODS[1])  # the 20 rps pod restarts: its counter falls to 0
    time.sleep(4 * SCRAPE_S)
    rate = source.observe(TARGETS, time.time()).get("shop/web").request_rate_rps
    # rate() counts the restarted counter from 0; only the requests between the last scrape
    # before the restart and the restart itself are lost (<= one scrape of one pod's 20 rps).
    # Read as a drop, the pod would add nothing (or a negative increase): 10 rps or less.
    assert rate is not None and 0.8 * 30.0 <= rate <= 1.1 * 30.0


def test_unreachable_prometheus_is_an_error_never_zero(tmp_path: Path) -> None:
    from actuators.prometheus import PrometheusClient, PrometheusConfig
    from tests.support.prometheus import free_port

    client = PrometheusClient(PrometheusConfig(f"http://127.0.0.1:{free_port()}", timeout_s=1))
    src = PrometheusMetricsSource(client, SourceSettings(window_s=WINDOW_S))
    try:
        obs = src.observe(TARGETS, time.time())
    finally:
        src.close()
    assert obs.errors and all("cannot connect" in e for e in obs.errors)
    assert all(obs.get(t.ref.key).request_rate_rps is None for t in TARGETS)
    assert not any(obs.get(t.ref.key).core_available() for t in TARGETS)
