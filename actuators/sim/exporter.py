"""What a simulated workload's exporters expose: cumulative counters and gauges, nothing else.

On a real cluster the controller never sees a request's latency, only what the inference
server's HTTP histogram, DCGM and the data pipeline export, scraped every few seconds. The
simulator keeps exactly that per workload, so the metrics path (``SimMetricsSource``) has to
do what a Prometheus query does: differences of counters over a window and interpolation
within histogram buckets, with the same blind spots.

Names follow the ``http`` metrics profile (OpenTelemetry http server semantic conventions):
``http_server_request_duration_seconds`` is a histogram with fine, Prometheus-style buckets
(geometric, factor ~1.15, from 1 ms to ~62 s, plus ``+Inf``). A request that failed (no ready
replica) or timed out is, as the conventions have it, in the same histogram with the attribute
``error.type`` (label ``error_type``, here the gateway's status ``503``; there is no failure
counter in the conventions): in its own series, counted in ``_count`` and in the ``+Inf``
bucket only, adding nothing to ``_sum`` (the gateway saw no response).

An LLM whose SLO is on time to first token or time per output token (``latency-metric``)
also writes that histogram under vLLM's name (``vllm:time_to_first_token_seconds``,
``vllm:time_per_output_token_seconds``, label ``model_name`` beside the workload's), as the
engine would: a real Prometheus scraping the simulator (``actuators.sim.http``) then holds the
signal its SLO is judged on, not only the end-to-end latency.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from actuators.prometheus.profiles import VLLM_TPOT, VLLM_TTFT
from actuators.sim.model import FloatArray


def _standard_bounds_s() -> tuple[float, ...]:
    bounds: list[float] = []
    k = 0
    while not bounds or bounds[-1] < 60.0:
        bounds.append(float(f"{0.001 * 1.15**k:.4g}"))
        k += 1
    return tuple(bounds)


LATENCY_BUCKETS_S: tuple[float, ...] = _standard_bounds_s()
"""The standard finite upper bounds (``le``) of the latency histogram; a ``+Inf`` bucket
follows. A workload's exporter adds its own SLO target (``latency_bounds_s``)."""

_BOUNDS = np.array(LATENCY_BUCKETS_S)


def latency_bounds_s(targets_s: Iterable[float] = ()) -> tuple[float, ...]:
    """The standard bounds plus each positive finite target that is not already one.

    Purely computational. A service whose SLO is "p99 under 100 ms" exports a bucket at
    100 ms (as the operator of a real one is told to), so the good-request ratio read from it
    is exact rather than interpolated, and nothing warns that it is not a bucket bound.
    """
    bounds = list(LATENCY_BUCKETS_S)
    for t in targets_s:
        if math.isfinite(t) and t > 0 and not any(math.isclose(t, b) for b in bounds):
            bounds.append(float(t))
    return tuple(sorted(bounds))


HISTOGRAM_NAME = "http_server_request_duration_seconds"
ERROR_TYPE_LABEL = "error_type"
"""OpenTelemetry's ``error.type`` attribute as Prometheus writes it."""
FAILED_ERROR_TYPE = "503"
"""The ``error_type`` of a request no replica answered: the gateway's status code."""
GPU_USED_NAME = "sloscale_sim_gpu_used_share_seconds_total"
GPU_ALLOCATED_NAME = "sloscale_sim_gpu_allocated_share_seconds_total"
GPU_BUSY_NAME = "sloscale_sim_gpu_busy_seconds_total"
READY_POD_NAME = "sloscale_sim_ready_pod_seconds_total"
GPU_MEMORY_NAME = "sloscale_sim_gpu_memory_used_mib"
DATA_SAMPLES_NAME = "sloscale_sim_model_data_samples_total"
SIGNAL_HISTOGRAMS: Mapping[str, tuple[str, str]] = {
    "ttft": (VLLM_TTFT, "Histogram of time to first token in seconds."),
    "tpot": (VLLM_TPOT, "Histogram of time per output token in seconds."),
}
"""The vLLM histogram (and its help) each ``latency-metric`` other than ``e2e`` is written as."""


@dataclass(frozen=True, slots=True)
class WorkloadSeries:
    """One workload's exported samples at one scrape (all counters cumulative since start).

    ``latency_buckets`` are cumulative counts aligned with ``LATENCY_BUCKETS_S`` plus a last
    entry for ``+Inf`` (which equals ``requests_total``). GPU counters are in card-seconds
    (1.0 = a whole card for one second): *used* is busy time times the share the model can
    use, ``min(slice, s_sat)``, i.e. SM activity attributable to the pod; *allocated* is the
    share held by serving (ready) pods, as a pod-level exporter reports it. ``gpu_busy_s`` is
    the time some kernel ran on the pod's slice, summed over pods, and ``ready_pod_s`` the
    time pods were serving, so that ``busy / ready`` is the busy fraction (DCGM's
    graphics-engine activity) and ``used / allocated`` the SM-activity utilisation.
    """

    namespace: str
    name: str
    requests_total: float
    failed_total: float
    latency_buckets: tuple[float, ...]
    latency_sum_s: float
    gpu_used_share_s: float
    gpu_allocated_share_s: float
    gpu_busy_s: float
    ready_pod_s: float
    gpu_memory_mib_by_pod: Mapping[str, float]
    data_samples_total: float
    signal_buckets: tuple[float, ...] | None = None
    """An LLM's TTFT or TPOT histogram (its ``latency-metric``), cumulative like
    ``latency_buckets`` on the same bounds; ``None`` for an end-to-end SLO."""
    bounds_s: tuple[float, ...] = LATENCY_BUCKETS_S
    """The finite bounds both histograms are counted on (``latency_bounds_s``)."""
    signal_metric: str | None = None
    """Which latency ``signal_buckets`` counts: ``ttft`` or ``tpot`` (``SIGNAL_HISTOGRAMS``)."""
    signal_sum_s: float = 0.0

    def standard(self, cumulative: Sequence[float]) -> tuple[float, ...]:
        """``cumulative`` (on ``bounds_s`` and ``+Inf``) on the standard bounds only: exact,
        since a cumulative count at a bound does not depend on the other bounds."""
        if self.bounds_s == LATENCY_BUCKETS_S:
            return tuple(cumulative)
        at = {b: i for i, b in enumerate(self.bounds_s)}
        return (*(cumulative[at[b]] for b in LATENCY_BUCKETS_S), cumulative[-1])


@dataclass(frozen=True, slots=True)
class Scrape:
    """Every workload's series at one instant, keyed by ``namespace/name``."""

    time_s: float
    series: Mapping[str, WorkloadSeries]


@dataclass(slots=True)
class WorkloadExporter:
    """The mutable counters behind one workload's series (the simulator's side)."""

    namespace: str
    name: str
    bounds_s: tuple[float, ...] = LATENCY_BUCKETS_S
    bucket_counts: FloatArray = field(init=False)
    requests_total: float = 0.0
    failed_total: float = 0.0
    latency_sum_s: float = 0.0
    gpu_used_share_s: float = 0.0
    gpu_allocated_share_s: float = 0.0
    gpu_busy_s: float = 0.0
    ready_pod_s: float = 0.0
    gpu_memory_mib_by_pod: dict[str, float] = field(default_factory=dict)
    data_samples_total: float = 0.0
    signal_counts: FloatArray | None = None  # the TTFT or TPOT histogram, when one is kept
    signal_metric: str | None = None  # which: "ttft" or "tpot" (its latency-metric)
    signal_sum_s: float = 0.0
    _bounds: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._bounds = _BOUNDS if self.bounds_s == LATENCY_BUCKETS_S else np.array(self.bounds_s)
        self.bucket_counts = np.zeros(len(self._bounds) + 1)

    def observe_signal(self, values_s: FloatArray) -> None:
        """Count each request's TTFT or TPOT in its bucket (requests that failed: none)."""
        finite = values_s[np.isfinite(values_s)]
        idx = np.searchsorted(self._bounds, finite, side="left")
        counts = np.bincount(idx, minlength=len(self._bounds) + 1).astype(np.float64)
        self.signal_counts = counts if self.signal_counts is None else self.signal_counts + counts
        self.signal_sum_s += float(finite.sum())

    def observe_latencies(self, latency_s: FloatArray) -> None:
        """Count each request in its bucket (``inf`` lands in ``+Inf``)."""
        if len(latency_s) == 0:
            return
        idx = np.searchsorted(self._bounds, latency_s, side="left")
        self.bucket_counts += np.bincount(idx, minlength=len(self._bounds) + 1)
        finite = np.isfinite(latency_s)
        n_finite = int(np.count_nonzero(finite))
        self.requests_total += len(latency_s)
        self.failed_total += len(latency_s) - n_finite
        self.latency_sum_s += float(latency_s[finite].sum()) if n_finite else 0.0

    def sample(self) -> WorkloadSeries:
        return WorkloadSeries(
            namespace=self.namespace,
            name=self.name,
            requests_total=self.requests_total,
            failed_total=self.failed_total,
            latency_buckets=tuple(np.cumsum(self.bucket_counts).tolist()),
            latency_sum_s=self.latency_sum_s,
            gpu_used_share_s=self.gpu_used_share_s,
            gpu_allocated_share_s=self.gpu_allocated_share_s,
            gpu_busy_s=self.gpu_busy_s,
            ready_pod_s=self.ready_pod_s,
            gpu_memory_mib_by_pod=dict(self.gpu_memory_mib_by_pod),
            data_samples_total=self.data_samples_total,
            signal_buckets=None
            if self.signal_counts is None
            else tuple(np.cumsum(self.signal_counts).tolist()),
            bounds_s=self.bounds_s,
            signal_metric=self.signal_metric,
            signal_sum_s=self.signal_sum_s,
        )


class ScrapeHistory:
    """The simulator's Prometheus TSDB: scrapes in time order, older than retention dropped."""

    def __init__(self, retention_s: float = 3600.0) -> None:
        self.retention_s = retention_s
        self._scrapes: list[Scrape] = []
        self._times: list[float] = []

    def append(self, scrape: Scrape) -> None:
        if self._times and scrape.time_s <= self._times[-1]:
            self._scrapes[-1] = scrape  # a re-scrape at the same instant replaces the sample
            return
        self._scrapes.append(scrape)
        self._times.append(scrape.time_s)
        horizon = scrape.time_s - self.retention_s
        if len(self._times) > 64 and self._times[32] < horizon:
            cut = int(np.searchsorted(self._times, horizon, side="left"))
            del self._scrapes[:cut]
            del self._times[:cut]

    def between(self, t0_s: float, t1_s: float) -> list[Scrape]:
        """Scrapes with ``t0_s <= time_s <= t1_s`` (both ends included, like a range query)."""
        i0 = int(np.searchsorted(self._times, t0_s - 1e-9, side="left"))
        i1 = int(np.searchsorted(self._times, t1_s + 1e-9, side="right"))
        return self._scrapes[i0:i1]

    def latest(self) -> Scrape | None:
        return self._scrapes[-1] if self._scrapes else None

    def __len__(self) -> int:
        return len(self._scrapes)


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _labels(series: WorkloadSeries, **extra: str) -> str:
    pairs = {"namespace": series.namespace, "deployment": series.name, **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def render_openmetrics(scrape: Scrape) -> str:
    """The scrape as OpenMetrics text exposition (what ``/metrics`` of the fake would serve)."""
    out: list[str] = []
    items = sorted(scrape.series.values(), key=lambda s: (s.namespace, s.name))
    out.append(f"# TYPE {HISTOGRAM_NAME} histogram")
    out.append(f"# UNIT {HISTOGRAM_NAME} seconds")
    out.append(f"# HELP {HISTOGRAM_NAME} Duration of HTTP server requests.")
    failed = {ERROR_TYPE_LABEL: FAILED_ERROR_TYPE}
    for s in items:
        le_labels = [*(repr(b) for b in s.bounds_s), "+Inf"]
        ok = [*s.latency_buckets[:-1], s.latency_buckets[-1] - s.failed_total]
        for le, count in zip(le_labels, ok, strict=True):
            out.append(f"{HISTOGRAM_NAME}_bucket{_labels(s, le=le)} {_fmt(count)}")
        out.append(f"{HISTOGRAM_NAME}_count{_labels(s)} {_fmt(ok[-1])}")
        out.append(f"{HISTOGRAM_NAME}_sum{_labels(s)} {_fmt(s.latency_sum_s)}")
        if s.failed_total > 0:  # an attribute set appears once a request had it
            for le in le_labels:
                count = s.failed_total if le == "+Inf" else 0.0
                out.append(f"{HISTOGRAM_NAME}_bucket{_labels(s, **failed, le=le)} {_fmt(count)}")
            out.append(f"{HISTOGRAM_NAME}_count{_labels(s, **failed)} {_fmt(s.failed_total)}")
            out.append(f"{HISTOGRAM_NAME}_sum{_labels(s, **failed)} 0")
    out += _signal_lines(items)
    counters = [
        (GPU_USED_NAME, "GPU card-seconds of SM activity.", "gpu_used_share_s"),
        (GPU_ALLOCATED_NAME, "GPU card-seconds held.", "gpu_allocated_share_s"),
        (GPU_BUSY_NAME, "Seconds a kernel ran on the pods' slices.", "gpu_busy_s"),
        (READY_POD_NAME, "Seconds pods were ready.", "ready_pod_s"),
        (DATA_SAMPLES_NAME, "New training samples.", "data_samples_total"),
    ]
    for name, help_text, attr in counters:
        family = name.removesuffix("_total")
        out.append(f"# TYPE {family} counter")
        out.append(f"# HELP {family} {help_text}")
        out.extend(f"{name}{_labels(s)} {_fmt(float(getattr(s, attr)))}" for s in items)
    out.append(f"# TYPE {GPU_MEMORY_NAME} gauge")
    out.append(f"# HELP {GPU_MEMORY_NAME} GPU memory used per pod, MiB.")
    for s in items:
        out.extend(
            f"{GPU_MEMORY_NAME}{_labels(s, pod=pod)} {_fmt(mib)}"
            for pod, mib in sorted(s.gpu_memory_mib_by_pod.items())
        )
    out.append("# EOF")
    return "\n".join(out) + "\n"


def _signal_lines(items: Sequence[WorkloadSeries]) -> list[str]:
    """Each LLM's TTFT or TPOT histogram under vLLM's name, one family per name (OpenMetrics
    keeps a family's samples together); the served model is the workload's name."""
    out: list[str] = []
    for metric, (name, help_text) in SIGNAL_HISTOGRAMS.items():
        mine = [s for s in items if s.signal_metric == metric and s.signal_buckets is not None]
        if not mine:
            continue
        out += [f"# TYPE {name} histogram", f"# UNIT {name} seconds", f"# HELP {name} {help_text}"]
        for s in mine:
            assert s.signal_buckets is not None
            model = {"model_name": s.name}
            les = [*(repr(b) for b in s.bounds_s), "+Inf"]
            for le, count in zip(les, s.signal_buckets, strict=True):
                out.append(f"{name}_bucket{_labels(s, **model, le=le)} {_fmt(count)}")
            out.append(f"{name}_count{_labels(s, **model)} {_fmt(s.signal_buckets[-1])}")
            out.append(f"{name}_sum{_labels(s, **model)} {_fmt(s.signal_sum_s)}")
    return out
