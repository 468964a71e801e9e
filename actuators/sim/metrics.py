"""``SimMetricsSource``: the ``MetricsSource`` port over the simulator's scraped counters.

Why it works like Prometheus instead of reading the simulator's truth: the controller must
see the same signal, with the same blind spots, as it would on a real cluster. So each
reading is a windowed query over scraped cumulative counters:

- rate: ``increase(count) / elapsed`` between the first and last scrape in the window;
- latency: ``histogram_quantile`` over the window's bucket increases, interpolating
  linearly within the bucket that holds the rank (a rank in ``+Inf`` reads as the largest
  finite bound, as Prometheus does);
- good ratio: the share of the window's requests at or under the latency threshold,
  interpolating linearly within the bucket that holds the threshold;
- GPU utilisation: increase of used over increase of allocated card-seconds; GPU busy:
  increase of busy seconds over increase of ready-pod seconds;
- memory: the latest per-pod gauge, averaged over pods; data samples: the latest counter.

The histograms are read on the standard bounds (``LATENCY_BUCKETS_S``), without the bucket
each exporter adds at its own SLO target (``WorkloadSeries.standard``): that bucket is for a
real Prometheus reading the simulator (``sloscale run --cluster sim``), and the benchmark's
and demo's decisions and published numbers were measured on the standard bounds (an exact
SLI there is a change of the benchmark to be measured on the whole suite, not a side effect).

The rule for empty, missing and NaN data (KEDA's lesson): a value is ``None`` (unavailable)
when its series is absent, has fewer than two scrapes in the window (one for gauges), or is
NaN; it is **never** read as 0. A rate of 0.0 is reported only when the counter is present
and did not advance. With no requests in the window latency and good ratio are ``None``
(nothing was measured), while the rate is a real 0.0. ``empty_results_total`` counts the
readings that came back unavailable.

Fault injection for tests: ``inject_missing`` and ``inject_nan`` make a workload's series
(all, or only some signals) disappear or read NaN; ``fail_next`` makes the whole source fail
for N calls. A failing source returns an ``Observation`` with ``errors``; it never raises.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from actuators.sim.exporter import LATENCY_BUCKETS_S, Scrape, ScrapeHistory, WorkloadSeries
from actuators.sim.model import FloatArray
from controller.domain import LatencyMetric, Observation, WorkloadMetrics
from controller.ports import ObserveTarget

SIGNALS = ("rate", "latency", "good_ratio", "gpu_util", "gpu_busy", "memory", "data_samples")
"""The signal names fault injection accepts."""


def histogram_quantile(
    q: float, bounds: Sequence[float], cumulative: Sequence[float] | FloatArray
) -> float | None:
    """Prometheus' ``histogram_quantile``: ``cumulative`` has one more entry (``+Inf``).

    Purely computational. ``None`` when the histogram is empty or ``q`` is NaN.
    """
    total = float(cumulative[-1])
    if not total > 0 or math.isnan(q):
        return None
    if q <= 0:
        return 0.0 if cumulative[0] > 0 else float(bounds[0])
    rank = min(q, 1.0) * total
    i = int(np.searchsorted(np.asarray(cumulative, dtype=np.float64), rank, side="left"))
    if i >= len(bounds):
        return float(bounds[-1])
    lo = 0.0 if i == 0 else float(bounds[i - 1])
    below = 0.0 if i == 0 else float(cumulative[i - 1])
    in_bucket = float(cumulative[i]) - below
    if in_bucket <= 0:
        return float(bounds[i])
    return float(lo + (float(bounds[i]) - lo) * (rank - below) / in_bucket)


def fraction_at_or_below(
    threshold: float, bounds: Sequence[float], cumulative: Sequence[float] | FloatArray
) -> float | None:
    """The share of observations ``<= threshold``, interpolating within its bucket.

    Purely computational. ``None`` when the histogram is empty.
    """
    total = float(cumulative[-1])
    if not total > 0:
        return None
    if threshold >= bounds[-1]:
        return float(cumulative[len(bounds) - 1]) / total
    i = int(np.searchsorted(np.asarray(bounds), threshold, side="left"))
    lo = 0.0 if i == 0 else float(bounds[i - 1])
    below = 0.0 if i == 0 else float(cumulative[i - 1])
    in_bucket = float(cumulative[i]) - below
    return (below + in_bucket * (threshold - lo) / (float(bounds[i]) - lo)) / total


@dataclass(frozen=True, slots=True)
class _Fault:
    kind: str  # "missing" or "nan"
    signals: frozenset[str]


class SimMetricsSource:
    """Windowed, Prometheus-like reads of a ``SimulatedCluster``'s scrapes.

    ``history`` is the cluster's ``metrics_history`` (anything with ``between(t0, t1)``).
    Constant work per call: one range read shared by every target.
    """

    def __init__(self, history: ScrapeHistory, *, window_s: float = 60.0) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.history = history
        self.window_s = window_s
        self.empty_results_total = 0
        self.queries_total = 0
        self._faults: dict[str, _Fault] = {}
        self._fail_calls = 0
        self._fail_message = ""

    # ---- fault injection ---------------------------------------------------------------------

    def inject_missing(self, workload: str, *, signals: Collection[str] | None = None) -> None:
        """Make ``workload``'s series (or only ``signals``) disappear until ``clear_faults``."""
        self._faults[workload] = _Fault("missing", _signals(signals))

    def inject_nan(self, workload: str, *, signals: Collection[str] | None = None) -> None:
        """Make ``workload``'s series (or only ``signals``) read NaN until ``clear_faults``."""
        self._faults[workload] = _Fault("nan", _signals(signals))

    def fail_next(self, calls: int, message: str = "metrics backend unavailable") -> None:
        """Make the next ``calls`` calls to ``observe`` fail as a whole."""
        self._fail_calls = calls
        self._fail_message = message

    def clear_faults(self, workload: str | None = None) -> None:
        if workload is None:
            self._faults.clear()
            self._fail_calls = 0
        else:
            self._faults.pop(workload, None)

    # ---- MetricsSource port ------------------------------------------------------------------

    def observe(self, targets: Sequence[ObserveTarget], now_s: float) -> Observation:
        self.queries_total += 1
        if self._fail_calls > 0:
            self._fail_calls -= 1
            return Observation(time_s=now_s, by_workload={}, errors=(self._fail_message,))
        try:
            scrapes = self.history.between(now_s - self.window_s, now_s)
            by_workload = {t.ref.key: self._read(t, scrapes) for t in targets}
        except Exception as e:  # the port never raises: a failed read is an error entry
            return Observation(time_s=now_s, by_workload={}, errors=(f"{type(e).__name__}: {e}",))
        return Observation(time_s=now_s, by_workload=by_workload)

    def _read(self, target: ObserveTarget, scrapes: Sequence[Scrape]) -> WorkloadMetrics:
        key = target.ref.key
        fault = self._faults.get(key)
        points = [(s.time_s, s.series[key]) for s in scrapes if key in s.series]
        spec = target.spec
        signal = spec.latency_metric is not LatencyMetric.E2E
        values = _window_values(points, spec.latency_quantile, spec.latency_target_ms, signal)
        if fault is not None:
            replacement = None if fault.kind == "missing" else math.nan
            values = {k: (replacement if k in fault.signals else v) for k, v in values.items()}
        metrics = WorkloadMetrics(
            request_rate_rps=values["rate"],
            latency_ms=values["latency"],
            good_ratio=values["good_ratio"],
            gpu_util=values["gpu_util"],
            gpu_busy=values["gpu_busy"],
            gpu_memory_mib=values["memory"],
            data_samples=values["data_samples"],
            window_s=self.window_s,
        )
        self.empty_results_total += len(metrics.missing)
        return metrics


def _signals(signals: Collection[str] | None) -> frozenset[str]:
    chosen = frozenset(SIGNALS if signals is None else signals)
    unknown = chosen - set(SIGNALS)
    if unknown:
        raise ValueError(f"unknown signals {sorted(unknown)}; known: {SIGNALS}")
    return chosen


def _window_values(
    points: Sequence[tuple[float, WorkloadSeries]],
    quantile: float,
    target_ms: float,
    signal: bool = False,
) -> dict[str, float | None]:
    """Every signal from the first and last sample of one series in the window; with
    ``signal``, latency and good ratio from the TTFT or TPOT histogram (an LLM's
    ``latency-metric``), unavailable where the series has none."""
    values: dict[str, float | None] = dict.fromkeys(SIGNALS)
    if not points:
        return values
    _, last = points[-1]
    pods = last.gpu_memory_mib_by_pod
    values["memory"] = sum(pods.values()) / len(pods) if pods else None
    values["data_samples"] = last.data_samples_total
    if len(points) < 2:
        return values
    t_first, first = points[0]
    t_last = points[-1][0]
    elapsed = t_last - t_first
    if elapsed <= 0:
        return values
    requests = last.requests_total - first.requests_total
    values["rate"] = requests / elapsed
    allocated = last.gpu_allocated_share_s - first.gpu_allocated_share_s
    if allocated > 0:
        values["gpu_util"] = (last.gpu_used_share_s - first.gpu_used_share_s) / allocated
    ready = last.ready_pod_s - first.ready_pod_s
    if ready > 0:
        values["gpu_busy"] = (last.gpu_busy_s - first.gpu_busy_s) / ready
    if signal:
        if last.signal_buckets is None:
            return values
        before = first.signal_buckets or (0.0,) * len(last.signal_buckets)
        buckets = np.subtract(last.standard(last.signal_buckets), first.standard(before))
        buckets[-1] += last.failed_total - first.failed_total  # no first token: never good
        if buckets[-1] > 0:
            latency_s = histogram_quantile(quantile, LATENCY_BUCKETS_S, buckets)
            values["latency"] = None if latency_s is None else latency_s * 1000.0
            values["good_ratio"] = fraction_at_or_below(
                target_ms / 1000.0, LATENCY_BUCKETS_S, buckets
            )
        return values
    if requests > 0:
        buckets = np.subtract(
            last.standard(last.latency_buckets), first.standard(first.latency_buckets)
        )
        latency_s = histogram_quantile(quantile, LATENCY_BUCKETS_S, buckets)
        values["latency"] = None if latency_s is None else latency_s * 1000.0
        values["good_ratio"] = fraction_at_or_below(target_ms / 1000.0, LATENCY_BUCKETS_S, buckets)
    return values
