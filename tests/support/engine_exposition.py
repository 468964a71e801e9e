"""Exposition text shaped exactly as each serving engine's exporter version writes it.

Renderers return ``render(elapsed_s) -> str``: counters grow at set rates in ``elapsed_s``
and latencies are uniform on a known interval, so every number a reader derives can be
checked against the arithmetic. Shared by ``tests/prometheus/test_engines.py`` (the source
alone) and ``tests/prometheus/test_closed_loop_exporters.py`` (the whole control loop).

Upstream shapes (see ``docs/metrics.md``): vLLM 0.6.3 ``vllm/engine/metrics.py`` (label
``model_name``, e2e buckets from 1.0 s) and V1 ``vllm/v1/metrics/loggers.py`` (labels
``model_name``, ``engine``; buckets from 0.3 s); Triton ``docs/user_guide/metrics.md``
(``model``/``version``, the summary only with ``summary_latencies=true``); TGI
``router/src/server.rs`` (``metrics-exporter-prometheus``: no labels, 1.5x buckets); SGLang
``python/sglang/srt/metrics/collector.py``; OpenTelemetry HTTP server semantic conventions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

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
