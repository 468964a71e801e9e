"""``latency-metric: ttft | tpot`` read from each engine's own histograms (#28 E9).

A real Prometheus scrapes exposition shaped as each engine writes it (``test_engines``'s
helpers: prometheus_client's rendering, the charts' ``honor_labels: false``), each pod
exporting its end-to-end histogram *and* its TTFT and TPOT histograms with different
distributions, so a test can tell which one was read:

- vLLM 0.6.3 (V0): ``vllm:time_to_first_token_seconds``, ``vllm:time_per_output_token_seconds``;
- vLLM v0.11 (V1): both TPOT names, identical (the old one deprecated), plus ``engine``;
- vLLM v0.13 and on: ``vllm:inter_token_latency_seconds`` only;
- SGLang: ``sglang:time_to_first_token_seconds``, ``sglang:inter_token_latency_seconds``;
- TGI: ``tgi_request_mean_time_per_token_duration`` (no TTFT histogram).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from actuators.prometheus import PodInfo
from actuators.prometheus.profiles import QuerySettings, tick_queries
from controller.buckets import KNOWN_SIGNAL_BUCKETS_S
from controller.domain import LatencyMetric, MetricsProfile, SloSpec, WorkloadRef
from controller.ports import ObserveTarget
from tests.prometheus import test_engines as engines
from tests.prometheus.conftest import SCRAPE_S, WINDOW_S
from tests.prometheus.test_engines import EnginePod, PodTargets, near
from tests.support.engine_exposition import (
    LLAMA,
    SGLANG_LE,
    VLLM_V0_LE,
    VLLM_V1_LE,
    Uniform,
    py_histogram,
    tgi_bounds,
)
from tests.support.exporters import TextExporter
from tests.support.prometheus import require_prometheus

VLLM = MetricsProfile.VLLM
V0_TTFT = dict(KNOWN_SIGNAL_BUCKETS_S[(VLLM, LatencyMetric.TTFT)])["vLLM V0 (v0.6.3)"]
V0_TPOT = dict(KNOWN_SIGNAL_BUCKETS_S[(VLLM, LatencyMetric.TPOT)])["vLLM V0 (v0.6.3)"]
V1_TTFT = dict(KNOWN_SIGNAL_BUCKETS_S[(VLLM, LatencyMetric.TTFT)])["vLLM V1"]
V1_TPOT = dict(KNOWN_SIGNAL_BUCKETS_S[(VLLM, LatencyMetric.TPOT)])["vLLM V1"]
SGL_TTFT = dict(KNOWN_SIGNAL_BUCKETS_S[(MetricsProfile.SGLANG, LatencyMetric.TTFT)])["SGLang"]
SGL_ITL = dict(KNOWN_SIGNAL_BUCKETS_S[(MetricsProfile.SGLANG, LatencyMetric.TPOT)])["SGLang"]

# every pod: 10 requests/s, e2e 2-4 s, TTFT 0.1-0.2 s, 100 output tokens/request at 20-30 ms
E2E = Uniform(10.0, 2.0, 4.0)
TTFT = Uniform(10.0, 0.1, 0.2)
TPOT = Uniform(1000.0, 0.02, 0.03)


def histograms(
    *specs: tuple[str, tuple[float, ...], Uniform], **labels: str
) -> Callable[[float], str]:
    def render(elapsed_s: float) -> str:
        lines: list[str] = []
        for name, le, load in specs:
            lines += py_histogram(name, "Histogram.", le, load, elapsed_s, **labels)
        return "\n".join(lines) + "\n"

    return render


def tgi(elapsed_s: float) -> str:
    """TGI's router: no labels, one bucket set for every ``duration`` histogram."""
    le = tgi_bounds()
    lines = [
        "# TYPE tgi_request_count counter",
        f"tgi_request_count {round(E2E.rate_rps * elapsed_s)}",
        "# TYPE tgi_request_failure counter",
        'tgi_request_failure{err="overloaded"} 0',
    ]
    for name, load in (
        ("tgi_request_duration", E2E),
        ("tgi_request_mean_time_per_token_duration", Uniform(10.0, 0.02, 0.03)),
    ):
        n = load.rate_rps * elapsed_s
        lines.append(f"# TYPE {name} histogram")
        lines += [f'{name}_bucket{{le="{b!r}"}} {round(n * load.cdf(b))}' for b in le]
        lines += [
            f'{name}_bucket{{le="+Inf"}} {round(n)}',
            f"{name}_sum 0",
            f"{name}_count {round(n)}",
        ]
    return "\n".join(lines) + "\n"


E2E_V = "vllm:e2e_request_latency_seconds"
PODS = (
    EnginePod(
        "llm",
        "v0-0",
        histograms(
            (E2E_V, VLLM_V0_LE, E2E),
            ("vllm:time_to_first_token_seconds", V0_TTFT, TTFT),
            ("vllm:time_per_output_token_seconds", V0_TPOT, TPOT),
            model_name=LLAMA,
        ),
    ),
    EnginePod(
        "llm",
        "v011-0",
        histograms(
            (E2E_V, VLLM_V1_LE, E2E),
            ("vllm:time_to_first_token_seconds", V1_TTFT, TTFT),
            ("vllm:time_per_output_token_seconds", V1_TPOT, TPOT),
            ("vllm:inter_token_latency_seconds", V1_TPOT, TPOT),
            model_name=LLAMA,
            engine="0",
        ),
    ),
    EnginePod(
        "llm",
        "v013-0",
        histograms(
            (E2E_V, VLLM_V1_LE, E2E),
            ("vllm:time_to_first_token_seconds", V1_TTFT, TTFT),
            ("vllm:inter_token_latency_seconds", V1_TPOT, TPOT),
            model_name=LLAMA,
            engine="0",
        ),
    ),
    EnginePod(
        "llm",
        "sgl-0",
        histograms(
            ("sglang:e2e_request_latency_seconds", SGLANG_LE, E2E),
            ("sglang:time_to_first_token_seconds", SGL_TTFT, TTFT),
            ("sglang:inter_token_latency_seconds", SGL_ITL, TPOT),
            model_name=LLAMA,
        ),
    ),
    EnginePod("llm", "tgi-0", tgi),
)
POD_MAP = {("llm", p.pod): PodInfo(f"llm/{p.pod.removesuffix('-0')}", 100) for p in PODS}


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodTargets]:
    binaries = require_prometheus()
    started = time.time()
    exporters = [
        TextExporter(lambda r=pod.render: r(time.time() - started)).start() for pod in PODS
    ]
    server = PodTargets(
        binaries,
        tmp_path_factory.mktemp("llm"),
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


def slo(
    name: str, profile: MetricsProfile, metric: LatencyMetric, target_ms: float
) -> ObserveTarget:
    spec = SloSpec(
        latency_target_ms=target_ms,
        latency_quantile=0.5,
        metrics_profile=profile,
        latency_metric=metric,
    )
    return ObserveTarget(WorkloadRef("llm", name), spec)


def read(prom: PodTargets, *targets: ObserveTarget) -> dict[str, object]:
    original = engines.POD_MAP
    engines.POD_MAP = POD_MAP  # type: ignore[misc]
    try:
        return dict(engines.observe(prom, *targets).by_workload)
    finally:
        engines.POD_MAP = original  # type: ignore[misc]


TTFT_CASES = [
    pytest.param("v0", VLLM, id="vllm-0.6.3"),
    pytest.param("v011", VLLM, id="vllm-0.11"),
    pytest.param("v013", VLLM, id="vllm-0.13"),
    pytest.param("sgl", MetricsProfile.SGLANG, id="sglang"),
]


@pytest.mark.parametrize(("name", "profile"), TTFT_CASES)
def test_a_ttft_slo_reads_time_to_first_token(
    prom: PodTargets, name: str, profile: MetricsProfile
) -> None:
    # 250 ms: every first token (100-200 ms) is good, while every request (2-4 s) is not
    got = read(prom, slo(name, profile, LatencyMetric.TTFT, 250.0))[f"llm/{name}"]
    assert near(got.request_rate_rps, 10.0)  # type: ignore[attr-defined]
    assert got.latency_ms is not None and 100.0 <= got.latency_ms <= 200.0  # type: ignore[attr-defined]
    assert got.good_ratio is not None and got.good_ratio > 0.99  # type: ignore[attr-defined]


TPOT_CASES = [
    pytest.param("v0", VLLM, id="vllm-0.6.3-time_per_output_token"),
    pytest.param("v011", VLLM, id="vllm-0.11-both-names-counted-once"),
    pytest.param("v013", VLLM, id="vllm-0.13-inter_token_latency"),
    pytest.param("sgl", MetricsProfile.SGLANG, id="sglang-inter_token_latency"),
    pytest.param("tgi", MetricsProfile.TGI, id="tgi-mean_time_per_token"),
]


@pytest.mark.parametrize(("name", "profile"), TPOT_CASES)
def test_a_tpot_slo_reads_time_per_output_token(
    prom: PodTargets, name: str, profile: MetricsProfile
) -> None:
    got = read(prom, slo(name, profile, LatencyMetric.TPOT, 50.0))[f"llm/{name}"]
    assert near(got.request_rate_rps, 10.0)  # type: ignore[attr-defined]
    # the median of 20-30 ms per token, from the TPOT buckets (not doubled, not the e2e 3 s)
    assert got.latency_ms is not None and 20.0 <= got.latency_ms <= 30.0  # type: ignore[attr-defined]
    assert got.good_ratio is not None and got.good_ratio > 0.99  # type: ignore[attr-defined]


def test_e2e_and_ttft_workloads_on_one_engine_kind_each_read_their_own(prom: PodTargets) -> None:
    got = read(
        prom,
        slo("v013", VLLM, LatencyMetric.TTFT, 250.0),
        slo("v011", VLLM, LatencyMetric.E2E, 250.0),
    )
    assert got["llm/v013"].good_ratio > 0.99  # type: ignore[attr-defined]
    assert got["llm/v011"].good_ratio == 0.0  # type: ignore[attr-defined]  # 2-4 s requests
    assert got["llm/v011"].latency_ms >= 2000.0  # type: ignore[attr-defined]


def test_the_signal_histogram_is_queried_only_when_a_workload_asks_for_it() -> None:
    s = QuerySettings()
    e2e_only = tick_queries([slo("a", VLLM, LatencyMetric.E2E, 250.0)], s)
    with_ttft = tick_queries(
        [slo("a", VLLM, LatencyMetric.E2E, 250.0), slo("b", VLLM, LatencyMetric.TTFT, 250.0)], s
    )
    assert [q.key for q in e2e_only] == ["vllm:rate", "vllm:buckets", "vllm:in_flight"]
    assert [q.key for q in with_ttft] == [*(q.key for q in e2e_only), "vllm:buckets_ttft"]
    tpot = tick_queries([slo("c", VLLM, LatencyMetric.TPOT, 50.0)], s)[-1]
    assert tpot.promql.index("vllm:inter_token_latency_seconds") < tpot.promql.index(
        "vllm:time_per_output_token_seconds"
    )
