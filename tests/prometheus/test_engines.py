"""The serving engines' exporters as they are really deployed, read by the real source.

Each engine pod is its own scrape target serving exposition text shaped exactly as that
exporter version writes it (names, label sets, bucket bounds, ``# TYPE`` lines, number
formats), without ``namespace``/``pod`` labels: Prometheus attaches those as target labels,
as the PodMonitors in ``deploy/monitoring`` do (``honor_labels: false``, the Prometheus
Operator's default). Counters grow at set rates in wall time and latencies are uniform on a
known interval, so every number the source reports is checked against the arithmetic.

Upstream shapes (see ``docs/metrics.md``): vLLM 0.6.3 ``vllm/engine/metrics.py`` (label
``model_name``, e2e buckets from 1.0 s) and V1 ``vllm/v1/metrics/loggers.py`` (labels
``model_name``, ``engine``; buckets from 0.3 s); Triton ``docs/user_guide/metrics.md``
(``model``/``version``, the summary only with ``summary_latencies=true``); TGI
``router/src/server.rs`` (``metrics-exporter-prometheus``: no labels, 1.5x buckets); SGLang
``python/sglang/srt/metrics/collector.py``; OpenTelemetry HTTP server semantic conventions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
from tests.support.exporters import TextExporter
from tests.support.prometheus import PrometheusBinaries, PrometheusServer, require_prometheus

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"

VLLM_V0_LE = (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)
VLLM_V1_LE: tuple[float, ...] = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0)
VLLM_V1_LE += (30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
SGLANG_LE: tuple[float, ...] = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80)
SGLANG_LE += (100, 200, 400, 600, 1200, 1800, 2400)
OTEL_LE = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


def tgi_bounds() -> list[float]:
    """TGI's duration buckets, computed as its router computes them (``value *= 1.5``)."""
    value, out = 0.0001, []
    for _ in range(35):
        value *= 1.5
        out.append(value)
    return out


# ---- exposition, as each exporter writes it ---------------------------------------------------


@dataclass(frozen=True)
class Uniform:
    """Requests at ``rate_rps`` whose latencies are uniform on ``[low_s, high_s]``."""

    rate_rps: float
    low_s: float
    high_s: float

    def cdf(self, le: float) -> float:
        return min(1.0, max(0.0, (le - self.low_s) / (self.high_s - self.low_s)))

    def quantile(self, q: float) -> float:
        return self.low_s + q * (self.high_s - self.low_s)


def py_labels(pairs: Mapping[str, str]) -> str:
    """prometheus_client's label rendering (vLLM, SGLang): ``{a="x",b="y"}``."""
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def py_histogram(
    name: str, help_: str, le: Sequence[float], load: Uniform, elapsed_s: float, **labels: str
) -> list[str]:
    """A prometheus_client histogram: ``_sum`` first, ``le`` before the other labels, floats
    with a trailing ``.0`` (``1.0``), then ``+Inf`` and ``_count``."""
    n = load.rate_rps * elapsed_s
    mean = (load.low_s + load.high_s) / 2
    lab = py_labels(labels)
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} histogram"]
    lines.append(f"{name}_sum{lab} {n * mean!r}")
    for bound in le:
        pairs = {"le": repr(float(bound)), **labels}
        lines.append(f"{name}_bucket{py_labels(pairs)} {float(n * load.cdf(bound))!r}")
    lines.append(f"{name}_bucket{py_labels({'le': '+Inf', **labels})} {float(n)!r}")
    lines.append(f"{name}_count{lab} {float(n)!r}")
    return lines


def py_gauge(name: str, help_: str, value: float, **labels: str) -> list[str]:
    return [
        f"# HELP {name} {help_}",
        f"# TYPE {name} gauge",
        f"{name}{py_labels(labels)} {value!r}",
    ]


def vllm_v0(load: Uniform, running: float, waiting: float) -> Callable[[float], str]:
    """vLLM 0.6.3 (V0 engine): ``model_name`` only."""

    def render(elapsed_s: float) -> str:
        lines = [
            *py_gauge(
                "vllm:num_requests_running",
                "Number of requests currently running on GPU.",
                running,
                model_name=LLAMA,
            ),
            *py_gauge(
                "vllm:num_requests_waiting",
                "Number of requests waiting to be processed.",
                waiting,
                model_name=LLAMA,
            ),
            *py_histogram(
                "vllm:e2e_request_latency_seconds",
                "Histogram of end to end request latency in seconds.",
                VLLM_V0_LE,
                load,
                elapsed_s,
                model_name=LLAMA,
            ),
        ]
        return "\n".join(lines) + "\n"

    return render


def vllm_v1(loads: Mapping[str, Uniform], running: float, waiting: float) -> Callable[[float], str]:
    """vLLM V1: ``model_name`` and ``engine`` (one series per data-parallel engine)."""

    def render(elapsed_s: float) -> str:
        lines: list[str] = []
        for engine in loads:
            lab = {"model_name": LLAMA, "engine": engine}
            lines += py_gauge(
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
                running,
                **lab,
            )
            lines += py_gauge(
                "vllm:num_requests_waiting",
                "Number of requests waiting to be processed.",
                waiting,
                **lab,
            )
        lines += ["# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency."]
        for engine, load in loads.items():
            body = py_histogram(
                "vllm:e2e_request_latency_seconds",
                "",
                VLLM_V1_LE,
                load,
                elapsed_s,
                model_name=LLAMA,
                engine=engine,
            )
            lines += body[1:] if engine == next(iter(loads)) else body[2:]
        return "\n".join(lines) + "\n"

    return render


def sglang(load: Uniform, running: float, queued: float) -> Callable[[float], str]:
    """SGLang with ``--enable-metrics``: ``model_name``, its own default e2e buckets."""

    def render(elapsed_s: float) -> str:
        lines = [
            *py_gauge(
                "sglang:num_running_reqs",
                "The number of running requests.",
                running,
                model_name=LLAMA,
            ),
            *py_gauge(
                "sglang:num_queue_reqs",
                "The number of requests in the waiting queue.",
                queued,
                model_name=LLAMA,
            ),
            *py_histogram(
                "sglang:e2e_request_latency_seconds",
                "Histogram of End-to-end request latency in seconds",
                SGLANG_LE,
                load,
                elapsed_s,
                model_name=LLAMA,
            ),
        ]
        return "\n".join(lines) + "\n"

    return render


def tgi(ok: Uniform, failed_rps: float, queued: float, running: float) -> Callable[[float], str]:
    """TGI's router through ``metrics-exporter-prometheus``: no labels on the request series,
    ``err`` on failures, ``# TYPE`` lines only, Rust float formatting (``0.00015000000000000001``).
    ``tgi_request_count`` counts every request; the histogram only the successful ones."""

    def render(elapsed_s: float) -> str:
        n = ok.rate_rps * elapsed_s
        failures = failed_rps * elapsed_s
        lines = [
            "# TYPE tgi_request_count counter",
            f"tgi_request_count {round(n + failures)}",
            "# TYPE tgi_request_failure counter",
            f'tgi_request_failure{{err="overloaded"}} {round(failures)}',
            "# TYPE tgi_queue_size gauge",
            f"tgi_queue_size {queued:g}",
            "# TYPE tgi_batch_current_size gauge",
            f"tgi_batch_current_size {running:g}",
            "# TYPE tgi_request_duration histogram",
        ]
        for bound in tgi_bounds():
            lines.append(
                f'tgi_request_duration_bucket{{le="{bound!r}"}} {round(n * ok.cdf(bound))}'
            )
        lines.append(f'tgi_request_duration_bucket{{le="+Inf"}} {round(n)}')
        lines.append(f"tgi_request_duration_sum {n * (ok.low_s + ok.high_s) / 2}")
        lines.append(f"tgi_request_duration_count {round(n)}")
        return "\n".join(lines) + "\n"

    return render


@dataclass(frozen=True)
class TritonModel:
    name: str
    rate_rps: float
    pending: float
    quantiles_us: Mapping[str, float] = field(default_factory=dict)


def triton(models: Sequence[TritonModel], *, summary: bool) -> Callable[[float], str]:
    """Triton (prometheus-cpp): ``model``/``version`` per model; the request summary only with
    ``--metrics-config summary_latencies=true``."""

    def render(elapsed_s: float) -> str:
        lines = [
            "# HELP nv_inference_request_success Number of successful inference requests, "
            "all batch sizes",
            "# TYPE nv_inference_request_success counter",
        ]
        lines += [
            f'nv_inference_request_success{{model="{m.name}",version="1"}} '
            f"{round(m.rate_rps * elapsed_s)}"
            for m in models
        ]
        lines += [
            "# HELP nv_inference_request_failure Number of failed inference requests, "
            "all batch sizes",
            "# TYPE nv_inference_request_failure counter",
        ]
        lines += [f'nv_inference_request_failure{{model="{m.name}",version="1"}} 0' for m in models]
        lines += [
            "# HELP nv_inference_pending_request_count Instantaneous number of pending requests "
            "awaiting execution per-model.",
            "# TYPE nv_inference_pending_request_count gauge",
        ]
        lines += [
            f'nv_inference_pending_request_count{{model="{m.name}",version="1"}} {m.pending:g}'
            for m in models
        ]
        if summary:
            lines += [
                "# HELP nv_inference_request_summary_us Summary of inference request duration "
                "in microseconds (includes cached requests)",
                "# TYPE nv_inference_request_summary_us summary",
            ]
            for m in models:
                lab = f'model="{m.name}",version="1"'
                count = round(m.rate_rps * elapsed_s)
                lines.append(f"nv_inference_request_summary_us_count{{{lab}}} {count}")
                lines.append(f"nv_inference_request_summary_us_sum{{{lab}}} {count * 1000}")
                lines += [
                    f'nv_inference_request_summary_us{{{lab},quantile="{q}"}} {v:g}'
                    for q, v in m.quantiles_us.items()
                ]
        return "\n".join(lines) + "\n"

    return render


def otel_http(ok: Uniform, errors: Uniform) -> Callable[[float], str]:
    """An app instrumented with OpenTelemetry, exported to Prometheus: failed requests are in
    the same histogram with ``error_type`` (for a 5xx, the status code); no failure counter."""

    def render(elapsed_s: float) -> str:
        name = "http_server_request_duration_seconds"
        lines = [f"# HELP {name} Duration of HTTP server requests.", f"# TYPE {name} histogram"]
        for load, extra in (
            (ok, {"http_response_status_code": "200"}),
            (errors, {"http_response_status_code": "500", "error_type": "500"}),
        ):
            labels = {"http_request_method": "POST", **extra}
            lines += py_histogram(name, "", OTEL_LE, load, elapsed_s, **labels)[2:]
        return "\n".join(lines) + "\n"

    return render


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
