"""The serving engines' exporters as they are really deployed, read by the real source.

Each engine pod is its own scrape target serving exposition text shaped exactly as that
exporter version writes it (names, label sets, bucket bounds, ``# TYPE`` lines, number
formats), without ``namespace``/``pod`` labels: Prometheus attaches those as target labels,
as the PodMonitors in ``deploy/monitoring`` do (``honor_labels: false``, the Prometheus
Operator's default). Counters grow at set rates in wall time and latencies are uniform on a
known interval, so every number the source reports is checked against the arithmetic.

The exposition builders, and the upstream files each shape follows, are in
``tests/support/engine_exposition.py`` (shared with the closed-loop test).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from actuators.prometheus import (
    PodInfo,
    PrometheusClient,
    PrometheusConfig,
    PrometheusMetricsSource,
    SourceSettings,
)
from controller.domain import MetricsProfile, Observation, UnresolvedTarget, WorkloadMetrics
from tests.prometheus.conftest import SCRAPE_S, WINDOW_S, target
from tests.support.engine_exposition import (
    LLAMA,
    TritonModel,
    Uniform,
    otel_http,
    sglang,
    tgi,
    triton,
    vllm_v0,
    vllm_v1,
)
from tests.support.exporters import TextExporter
from tests.support.prometheus import PrometheusBinaries, PrometheusServer, require_prometheus

# ---- one scrape target per engine pod ---------------------------------------------------------


@dataclass(frozen=True)
class EnginePod:
    namespace: str
    pod: str
    render: Callable[[float], str]


class PodTargets(PrometheusServer):
    """Prometheus scraping each exporter as one pod: ``namespace``/``pod`` are target labels,
    as a PodMonitor's relabelling sets them, and ``honor_labels`` is false (its default)."""

    def __init__(
        self, binaries: PrometheusBinaries, workdir: Path, pods: Mapping[str, EnginePod]
    ) -> None:
        super().__init__(binaries, workdir, targets=list(pods), scrape_interval_s=SCRAPE_S)
        self.pods = pods

    def config_text(self) -> str:
        interval = f"{round(SCRAPE_S * 1000)}ms"
        lines = [
            "global:",
            f"  scrape_interval: {interval}",
            f"  scrape_timeout: {round(SCRAPE_S * 800)}ms",
            "scrape_configs:",
            "  - job_name: engines",
            "    honor_labels: false",
            "    static_configs:",
        ]
        for address, pod in self.pods.items():
            lines += [
                f"      - targets: ['{address}']",
                f"        labels: {{namespace: '{pod.namespace}', pod: '{pod.pod}'}}",
            ]
        return "\n".join(lines) + "\n"


PODS = (
    EnginePod("llm", "chat-v0-0", vllm_v0(Uniform(10.0, 0.3, 0.4), running=3.0, waiting=1.0)),
    EnginePod(
        "llm",
        "chat-v1-0",
        vllm_v1(
            {"0": Uniform(6.0, 0.3, 0.5), "1": Uniform(4.0, 0.3, 0.5)}, running=2.0, waiting=1.0
        ),
    ),
    EnginePod("llm", "sgl-0", sglang(Uniform(8.0, 0.2, 0.4), running=5.0, queued=2.0)),
    EnginePod("llm", "tgi-0", tgi(Uniform(18.0, 1.0, 2.0), 2.0, queued=4.0, running=3.0)),
    EnginePod(
        "vision",
        "resnet-0",
        triton(
            [
                TritonModel("resnet50", 12.0, 4.0, {"0.5": 20000, "0.9": 30000, "0.99": 40000}),
                TritonModel("preprocess", 30.0, 9.0, {"0.5": 2000, "0.9": 90000, "0.99": 95000}),
            ],
            summary=True,
        ),
    ),
    EnginePod(
        "vision",
        "plain-0",
        triton([TritonModel("bert", 7.0, 2.0)], summary=False),
    ),
    EnginePod("shop", "web-0", otel_http(Uniform(10.0, 0.02, 0.08), Uniform(2.0, 0.001, 0.004))),
)

POD_MAP = {
    ("llm", "chat-v0-0"): PodInfo("llm/chat-v0", 100),
    ("llm", "chat-v1-0"): PodInfo("llm/chat-v1", 100),
    ("llm", "sgl-0"): PodInfo("llm/sgl", 100),
    ("llm", "tgi-0"): PodInfo("llm/tgi", 100),
    ("vision", "resnet-0"): PodInfo("vision/resnet", 50),
    ("vision", "plain-0"): PodInfo("vision/plain", 50),
    ("shop", "web-0"): PodInfo("shop/web", 30),
}


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodTargets]:
    binaries = require_prometheus()
    started = time.time()

    def since_start(render: Callable[[float], str]) -> Callable[[], str]:
        return lambda: render(time.time() - started)

    exporters = [TextExporter(since_start(pod.render)).start() for pod in PODS]
    server = PodTargets(
        binaries,
        tmp_path_factory.mktemp("engines"),
        {e.address: pod for e, pod in zip(exporters, PODS, strict=True)},
    )
    try:
        server.start()
        server.wait_for(
            f"count_over_time(up[{int((WINDOW_S + SCRAPE_S) * 1000)}ms]) >= 7",
            lambda r: len(r) == len(PODS),
            timeout_s=30,
        )
        yield server
    finally:
        server.stop()
        for e in exporters:
            e.stop()


def observe(prom: PodTargets, *targets: object) -> Observation:
    source = PrometheusMetricsSource(
        PrometheusClient(PrometheusConfig(prom.url, timeout_s=5.0)),
        SourceSettings(window_s=WINDOW_S, max_age_s=WINDOW_S),
        pods=lambda: POD_MAP,
    )
    try:
        return source.observe(list(targets), time.time())  # type: ignore[arg-type]
    finally:
        source.close()


def near(value: float | None, expected: float, rel: float = 0.05) -> bool:
    return value is not None and abs(value - expected) <= rel * abs(expected) + 1e-9


# ---- E1: vLLM 0.6.3's buckets cannot resolve an 800 ms target; V1's can -----------------------


def test_vllm_v0_target_below_first_bucket_is_said_and_read_conservatively(
    prom: PodTargets,
) -> None:
    t = target("llm/chat-v0", MetricsProfile.VLLM, target_ms=800.0, quantile=0.95)
    m = observe(prom, t).get("llm/chat-v0")
    assert near(m.request_rate_rps, 10.0)
    # every request (300-400 ms) is in le="1.0": Prometheus' interpolation reads p95 0.95 s
    assert m.latency_ms is not None and abs(m.latency_ms - 950.0) < 1.0
    # the interpolated share under 800 ms (0.80) is a guess; nothing is provably under it
    assert m.unresolved_target == UnresolvedTarget(0.8, 0.0, 1.0)
    assert m.good_ratio == 0.0
    assert m.in_flight == 4.0  # running 3 + waiting 1


def test_vllm_v1_resolves_the_same_target_across_engines(prom: PodTargets) -> None:
    t = target("llm/chat-v1", MetricsProfile.VLLM, target_ms=800.0, quantile=0.95)
    m = observe(prom, t).get("llm/chat-v1")
    assert near(m.request_rate_rps, 10.0)  # engines 0 and 1: 6 + 4 rps
    assert m.unresolved_target is None  # 0.8 s is a V1 bucket bound
    assert m.good_ratio is not None and abs(m.good_ratio - 1.0) < 1e-6
    # all in (0.3, 0.5]: p95 = 0.3 + 0.95 * 0.2 = 0.49 s
    assert m.latency_ms is not None and abs(m.latency_ms - 490.0) < 1.0
    assert m.in_flight == 6.0  # (2 running + 1 waiting) x 2 engines


# ---- E6: Triton's queue, and the declared model's latency, not the max over models -------------


def test_triton_reads_the_declared_model_with_its_queue(prom: PodTargets) -> None:
    t = target(
        "vision/resnet", MetricsProfile.TRITON, target_ms=35.0, quantile=0.9, model="resnet50"
    )
    m = observe(prom, t).get("vision/resnet")
    assert near(m.request_rate_rps, 12.0)  # resnet50 only, not + preprocess's 30 rps
    assert m.latency_ms == 30.0  # resnet50's p90 (30 000 us), not preprocess's 90 000 us
    assert m.in_flight == 4.0  # nv_inference_pending_request_count{model="resnet50"}
    # 35 ms between the p90 (30 ms) and the p99 (40 ms): 0.9 + 0.09 * 0.5
    assert m.good_ratio is not None and abs(m.good_ratio - 0.945) < 1e-9


def test_triton_with_several_models_and_none_declared_is_unavailable(prom: PodTargets) -> None:
    obs = observe(prom, target("vision/resnet", MetricsProfile.TRITON, target_ms=35.0))
    m = obs.get("vision/resnet")
    assert m.request_rate_rps is None and m.latency_ms is None and m.in_flight is None
    assert any("preprocess, resnet50" in e and "sloscale.io/model" in e for e in obs.errors)


def test_triton_without_summary_latencies_reads_rate_and_queue_not_latency(
    prom: PodTargets,
) -> None:
    m = observe(prom, target("vision/plain", MetricsProfile.TRITON)).get("vision/plain")
    assert near(m.request_rate_rps, 7.0)  # its only model, no annotation needed
    assert m.in_flight == 2.0
    assert m.latency_ms is None and m.good_ratio is None  # a mean is not a quantile


# ---- E7: TGI and SGLang profiles ---------------------------------------------------------------


def test_tgi_profile_counts_failures_as_bad(prom: PodTargets) -> None:
    m = observe(prom, target("llm/tgi", MetricsProfile.TGI, target_ms=3000.0, quantile=0.5))
    got = m.get("llm/tgi")
    assert near(got.request_rate_rps, 20.0)  # tgi_request_count: 18 ok + 2 failed
    assert got.unresolved_target is None  # TGI's bounds are 1.5x apart
    # successes uniform on [1, 2] s, all under 3 s; failures are bad: 18 / 20
    assert got.good_ratio is not None and abs(got.good_ratio - 0.9) < 0.02
    assert got.latency_ms is not None and abs(got.latency_ms - 1500.0) < 80.0
    assert got.in_flight == 7.0  # queue 4 + batch 3


def test_sglang_profile(prom: PodTargets) -> None:
    t = target("llm/sgl", MetricsProfile.SGLANG, target_ms=600.0, quantile=0.5, model=LLAMA)
    m = observe(prom, t).get("llm/sgl")
    assert near(m.request_rate_rps, 8.0)
    assert m.good_ratio is not None and abs(m.good_ratio - 1.0) < 1e-6  # all under 0.4 s
    # uniform on [0.2, 0.4], all in (0.2, 0.4]: p50 = 0.3 s
    assert m.latency_ms is not None and abs(m.latency_ms - 300.0) < 1.0
    assert m.in_flight == 7.0  # queue 2 + running 5


# ---- E8: OpenTelemetry failures carry error_type: never good ----------------------------------


def test_http_requests_with_error_type_are_never_good(prom: PodTargets) -> None:
    m = observe(prom, target("shop/web", target_ms=250.0)).get("shop/web")
    assert near(m.request_rate_rps, 12.0)  # 10 ok + 2 failed
    # the failures are fast (1-4 ms) but failed: good = 10 / 12, not 1.0
    assert m.good_ratio is not None and abs(m.good_ratio - 10 / 12) < 0.01


def test_every_engine_at_once_in_a_constant_number_of_queries(prom: PodTargets) -> None:
    targets = [
        target("llm/chat-v0", MetricsProfile.VLLM, target_ms=800.0),
        target("llm/chat-v1", MetricsProfile.VLLM, target_ms=800.0),
        target("llm/sgl", MetricsProfile.SGLANG, target_ms=600.0),
        target("llm/tgi", MetricsProfile.TGI, target_ms=3000.0),
        target("vision/resnet", MetricsProfile.TRITON, target_ms=35.0, model="resnet50"),
        target("vision/plain", MetricsProfile.TRITON),
        target("shop/web"),
    ]
    obs = observe(prom, *targets)
    assert not obs.errors
    got: dict[str, WorkloadMetrics] = dict(obs.by_workload)
    assert all(got[t.ref.key].request_rate_rps for t in targets)
