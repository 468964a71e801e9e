"""``PrometheusMetricsSource``: the ``MetricsSource`` and ``RateHistorySource`` ports.

One tick reads like this:

1. build the batch (``profiles.tick_queries``): a fixed set of queries per profile in use,
   each covering every workload of that profile, grouped by pod;
2. send them concurrently, each with its own timeout: a slow or failing query costs only the
   signals it feeds, and is reported once in ``Observation.errors``;
3. map each series to its workload (``podmap.WorkloadResolver``: the snapshot's pods, the
   ``deployment`` label, ReplicaSet pod names) and aggregate per workload;
4. turn aggregates into ``WorkloadMetrics`` under one rule for missing data.

The rule for empty, NaN and stale data (KEDA users were burnt by empty results read as zero,
kedacore/keda#3065): a signal is ``None`` (unavailable) when its query failed, its series is
absent, or any of the workload's series is NaN; it is never 0. ``rate()`` needs two samples in
the window, so a counter that stopped being scraped drops out; gauges are read through
``last_over_time(...[max_age])`` and drop out when older than ``max_age``. A rate of 0.0 is a
present counter that did not advance; with no requests, latency and good ratio are ``None``.
For vLLM, requests running or waiting while none completed in the window means the completion
rate understates demand: rate and latency are then unavailable too. ``empty_results_total``
counts unavailable signals. The loop turns unavailable rate or latency into a
``MetricsUnavailable`` hold, never a scale-down.

Partial data (``coverage``): a rate whose window is not fully covered, or that misses a pod the
cluster reports ready (the pod map), is never passed off as the rate: it is sized on the larger
of the partial reading and the last full one (no older than ``partial_hold_s``), or it is
unavailable; either way ``errors`` says so.

Hostile queries: a ``custom`` (or retraining) query that does not parse is left out of the
batch and fails only its own workload (``profiles.promql_problem``); when Prometheus refuses a
batched union (HTTP 400/422), its parts are sent one by one, the ones that still fail fail
their workload only, and a part refused as bad data is not batched again while it stays the
same text.

Warm start (``rate_history``): the request rate per step from ``query_range``, in chunks of at
most ``max_points_per_query`` steps; a failed chunk leaves NaN steps (never zeros) and the
call never raises.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import numpy as np

from actuators.prometheus.client import PrometheusClient, PromSample, QueryError
from actuators.prometheus.coverage import partial_reasons
from actuators.prometheus.gpu import (
    GpuLabels,
    GpuSample,
    PodLabels,
    dcgm_device,
    gpu_queries,
    gpu_signals,
    label_notes,
    labels_in_use,
    match,
    own_share,
)
from actuators.prometheus.histogram import (
    GoodRatio,
    good_ratio,
    histogram_quantile,
    lower_bound_ratio,
    parse_le,
    summary_good_ratio,
    summary_quantile,
)
from actuators.prometheus.podmap import LabelNames, PodMap, WorkloadResolver
from actuators.prometheus.profiles import (
    COVER_TAG,
    ERROR_LABEL,
    MODEL_LABELS,
    WORKLOAD_TAG,
    Query,
    QuerySettings,
    buckets_key,
    rate_history_query,
    rejected_parts,
    tagged_union,
    tick_queries,
)
from controller.buckets import unresolved
from controller.domain import (
    LatencyMetric,
    MetricsProfile,
    Observation,
    UnresolvedTarget,
    WorkloadMetrics,
)
from controller.ports import ObserveTarget
from forecasting.base import History

log = logging.getLogger("sloscale.prometheus")


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """Windows, timeouts and chunking of the Prometheus source."""

    window_s: float = 60.0
    max_age_s: float = 60.0
    query_timeout_s: float = 5.0
    max_parallel: int = 8
    max_points_per_query: int = 1000
    partial_hold_s: float = 300.0
    """How long the last full rate may size a workload whose current reading is partial."""
    gpu_labels: GpuLabels = field(default_factory=GpuLabels)
    """Which labels name the pod on dcgm-exporter's and HAMi's series (``gpu``)."""

    def queries(self) -> QuerySettings:
        return QuerySettings(window_s=self.window_s, max_age_s=self.max_age_s)


@dataclass(frozen=True, slots=True)
class _Outcome:
    samples: tuple[PromSample, ...] = ()
    error: str | None = None  # the whole query failed: every workload it feeds
    failed: Mapping[str, str] = field(default_factory=dict)  # workload -> why; others answered


@dataclass
class _Agg:
    """One workload's aggregates from the batch; ``None`` = not present, NaN = poisoned."""

    rate: float | None = None
    rate_pods: set[str | None] = field(default_factory=set)
    cover: dict[str | None, dict[str, float]] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)
    ok_buckets: dict[float, float] = field(default_factory=dict)  # requests without an error
    failed_rps: float | None = None  # failures the histogram does not hold (TGI)
    models: set[str] = field(default_factory=set)  # served models seen (``MODEL_LABELS``)
    in_flight: float | None = None
    summary: dict[float, float] = field(default_factory=dict)
    latency_s: float | None = None
    good_ratio: float | None = None
    data_samples: float | None = None
    gpu_util: float | None = None
    gpu_busy: float | None = None
    gpu_memory_mib: float | None = None
    failed: set[str] = field(default_factory=set)


def _add(current: float | None, value: float) -> float:
    return value if current is None else current + value


class PrometheusMetricsSource:
    """Reads every workload's signals from Prometheus with a constant number of queries."""

    def __init__(
        self,
        client: PrometheusClient,
        settings: SourceSettings = SourceSettings(),
        *,
        pods: Callable[[], PodMap] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self._pods = pods or dict
        self._pool = ThreadPoolExecutor(settings.max_parallel, thread_name_prefix="sloscale-prom")
        self._lock = threading.Lock()
        self.empty_results_total = 0
        self.ticks_total = 0
        self.interpolated_thresholds: set[str] = set()
        self.unresolved_targets: set[str] = set()
        self.last_errors: tuple[str, ...] = ()
        self._last_full: dict[str, tuple[float, float]] = {}  # workload -> (rate, time)
        self._refused: dict[str, str] = {}  # custom PromQL refused as bad data -> why
        self._gpu_labels_seen: dict[str, frozenset[PodLabels] | None] = {}
        """Per GPU source, the label sets last logged (``None``: it had no series at all)."""

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()

    # ---- MetricsSource -----------------------------------------------------------------------

    def observe(self, targets: Sequence[ObserveTarget], now_s: float) -> Observation:
        """All targets' signals at ``now_s``; never raises (failures become ``errors``)."""
        self.ticks_total += 1
        try:
            queries = self.settings.queries()
            batch, refused = self._without_refused(
                tick_queries(targets, queries)
                + gpu_queries(targets, queries, self.settings.gpu_labels)
            )
            outcomes = self._run(batch, now_s)
            for key, by_workload_why in rejected_parts(targets).items():
                refused.setdefault(key, {}).update(by_workload_why)
            for key, why in refused.items():
                o = outcomes.get(key, _Outcome())
                outcomes[key] = _Outcome(o.samples, o.error, {**o.failed, **why})
            pods = self._pods()
            ready: dict[str, set[str]] = {}
            known: dict[str, set[str]] = {}
            for (_, pod), info in pods.items():
                known.setdefault(info.workload, set()).add(pod)
                if info.ready:
                    ready.setdefault(info.workload, set()).add(pod)
            aggs, notes = self._aggregate(targets, outcomes, WorkloadResolver(targets, pods))
            by_workload = {
                t.ref.key: self._metrics(
                    t,
                    aggs[t.ref.key],
                    now_s,
                    (ready.get(t.ref.key, set()), known.get(t.ref.key, set())),
                    notes,
                )
                for t in targets
            }
            keys = {t.ref.key for t in targets}
            self._last_full = {k: v for k, v in self._last_full.items() if k in keys}
            errors = tuple(
                [
                    f"prometheus query {key} failed: {o.error}"
                    for key, o in outcomes.items()
                    if o.error is not None
                ]
                + [
                    f"prometheus query {key} of {workload} failed: {why}"
                    for key, o in outcomes.items()
                    for workload, why in sorted(o.failed.items())
                ]
                + notes
            )
        except Exception as e:  # the port never raises: a failed read is an error entry
            log.exception("prometheus observe failed")
            return Observation(now_s, {}, (f"prometheus: {type(e).__name__}: {e}",))
        self.last_errors = errors
        return Observation(now_s, by_workload, errors)

    def _run(self, batch: Sequence[Query], now_s: float) -> dict[str, _Outcome]:
        """Send the batch concurrently; each query succeeds or fails on its own."""
        timeout = self.settings.query_timeout_s
        futures: dict[str, Future[list[PromSample]]] = {
            q.key: self._pool.submit(self.client.query, q.promql, now_s, timeout_s=timeout)
            for q in batch
        }
        out: dict[str, _Outcome] = {}
        for q in batch:
            try:
                out[q.key] = _Outcome(tuple(futures[q.key].result(timeout=timeout + 1.0)))
            except QueryError as e:
                if not str(e).startswith(("HTTP 400", "HTTP 422")) or not q.parts:
                    out[q.key] = _Outcome(error=str(e))  # not the query's fault, or not split
                elif len(q.parts) > 1:
                    out[q.key] = self._split(q, now_s)
                else:
                    (workload, promql), why = q.parts[0], str(e)
                    self._remember(promql, why)
                    out[q.key] = _Outcome(failed={workload: why})
            except FutureTimeout:
                out[q.key] = _Outcome(error="timed out")
        return out

    def _split(self, query: Query, now_s: float) -> _Outcome:
        """A tagged union Prometheus refused, part by part: the parts that answer count."""
        timeout = self.settings.query_timeout_s
        futures = []
        for workload, promql in query.parts:
            alone = tagged_union([(workload, promql)])
            fut = self._pool.submit(self.client.query, alone, now_s, timeout_s=timeout)
            futures.append((workload, promql, fut))
        samples: list[PromSample] = []
        failed: dict[str, str] = {}
        for workload, promql, fut in futures:
            try:
                samples.extend(fut.result(timeout=timeout + 1.0))
            except QueryError as e:
                failed[workload] = str(e)
                self._remember(promql, str(e))
            except FutureTimeout:
                failed[workload] = "timed out"
        return _Outcome(tuple(samples), None, failed)

    def _remember(self, promql: str, why: str) -> None:
        """A part refused as bad data (HTTP 400: it does not parse) fails the same way again:
        it is left out of the batch while it stays the same text."""
        if why.startswith("HTTP 400"):
            self._refused[promql] = why

    def _without_refused(
        self, batch: Sequence[Query]
    ) -> tuple[list[Query], dict[str, dict[str, str]]]:
        """The batch without the parts Prometheus refused before, and those parts' failures."""
        in_use = {promql for q in batch for _, promql in q.parts}
        self._refused = {p: why for p, why in self._refused.items() if p in in_use}
        out: list[Query] = []
        refused: dict[str, dict[str, str]] = {}
        for q in batch:
            bad = [(w, p) for w, p in q.parts if p in self._refused]
            if not bad:
                out.append(q)
                continue
            refused[q.key] = {w: self._refused[p] for w, p in bad}
            good = tuple(part for part in q.parts if part not in bad)
            if good:
                out.append(Query(q.key, tagged_union(good), good))
        return out, refused

    # ---- aggregation -------------------------------------------------------------------------

    def _aggregate(
        self,
        targets: Sequence[ObserveTarget],
        outcomes: Mapping[str, _Outcome],
        resolver: WorkloadResolver,
    ) -> tuple[dict[str, _Agg], list[str]]:
        """Every workload's aggregates, and the notes the GPU series' labels call for."""
        aggs = {t.ref.key: _Agg() for t in targets}
        declared = {t.ref.key: t.spec.model for t in targets}
        chosen = {t.ref.key: t.spec.latency_metric for t in targets}
        gpu: list[GpuSample] = []
        unmanaged: dict[str, list[float]] = {}  # dcgm device -> GPU_UTIL of others' pods
        for key, outcome in outcomes.items():
            if outcome.error is not None:
                for agg in aggs.values():
                    agg.failed.add(key)
                continue
            for workload in outcome.failed:
                if workload in aggs:
                    aggs[workload].failed.add(key)
            for s in outcome.samples:
                self._take(key, s, aggs, (gpu, unmanaged), resolver, declared, chosen)
        for workload, signals in gpu_signals(gpu, resolver.pod_info, unmanaged).items():
            agg = aggs[workload]
            agg.gpu_util, agg.gpu_busy = signals.util, signals.busy
            agg.gpu_memory_mib = signals.memory_mib
        failed = {key.partition(":")[0] for key, o in outcomes.items() if o.error is not None}
        present = {key.partition(":")[0] for key, o in outcomes.items() if o.samples}
        self._log_gpu_labels(gpu, failed, present)
        return aggs, label_notes(gpu, self.settings.gpu_labels)

    def _log_gpu_labels(
        self, samples: Sequence[GpuSample], failed: set[str], present: set[str]
    ) -> None:
        """Say when the label sets the GPU series are read with change (or none names a pod);
        nothing about a source whose queries failed (no answer says nothing about labels).

        ``present``: the sources with any series at all. A source without any is not a label
        problem but an exporter not scraped (dcgm-exporter alone, without HAMi's, is a common
        and complete setup, and the one the embedded simulator serves): an info line; one
        warning when neither source has a series (GPU use is then unknown)."""
        sources = [source for source in ("dcgm", "hami") if source not in failed]
        states = {src: labels_in_use(samples, src) if src in present else None for src in sources}
        if len(sources) > 1 and all(state is None for state in states.values()):
            if not all(self._gpu_labels_seen.get(src, frozenset()) is None for src in sources):
                log.warning(
                    "no %s series at all in the workloads' namespaces: GPU use is unknown "
                    "(is an exporter scraped?)",
                    " or ".join(sources),
                )
            self._gpu_labels_seen.update(states)
            return
        for source, seen in states.items():
            if source in self._gpu_labels_seen and self._gpu_labels_seen[source] == seen:
                continue
            self._gpu_labels_seen[source] = seen
            if seen is None:
                log.info("no %s series at all: its exporter is not deployed or not scraped", source)
            elif seen:
                names = "; ".join(sorted(str(c) for c in seen))
                log.info("%s series name their pods with: %s", source, names)
            else:
                log.warning(
                    "no %s series names a managed pod under %s; reading with the configured "
                    "--%s-labels %s",
                    source,
                    " or ".join(str(c) for c in self.settings.gpu_labels.candidates(source)),
                    source,
                    self.settings.gpu_labels.configured(source),
                )

    def _take(
        self,
        key: str,
        s: PromSample,
        aggs: dict[str, _Agg],
        gpu: tuple[list[GpuSample], dict[str, list[float]]],
        resolver: WorkloadResolver,
        declared: Mapping[str, str | None],
        chosen: Mapping[str, LatencyMetric],
    ) -> None:
        """One sample into its workload's aggregates; a GPU sample into ``gpu``: the managed
        pods' samples, and per dcgm device the card-level ``GPU_UTIL`` of pods sloscale does not
        manage."""
        source, _, signal = key.partition(":")
        if source in ("custom", "retrain"):
            agg = aggs.get(s.labels.get(WORKLOAD_TAG, ""))
            if agg is None:
                return
            if signal == "rate":
                agg.rate = _add(agg.rate, s.value)
            elif signal == "latency":
                agg.latency_s = s.value if agg.latency_s is None else max(agg.latency_s, s.value)
            elif signal == "good_ratio":
                agg.good_ratio = s.value if agg.good_ratio is None else min(agg.good_ratio, s.value)
            else:
                agg.data_samples = _add(agg.data_samples, s.value)
            return
        if source in ("dcgm", "hami"):
            sample = match(
                key,
                s.labels,
                s.value,
                self.settings.gpu_labels,
                lambda labels, c: resolver.resolve(labels, LabelNames(c.namespace, c.pod)),
            )
            if sample is not None:
                gpu[0].append(sample)
            elif key == "dcgm:util" and not own_share(s.labels):
                # another tenant's card-level value: tells a per-process split (gpu)
                gpu[1].setdefault(dcgm_device(s.labels), []).append(s.value)
            return
        hit = resolver.resolve(s.labels)
        if hit is None:
            return
        workload, pod = hit
        agg = aggs[workload]
        model_label = _MODEL_LABEL_BY_SOURCE.get(source)
        if model_label is not None and COVER_TAG not in s.labels:
            model = s.labels.get(model_label)
            wanted = declared.get(workload)
            if wanted is not None and model != wanted:
                return  # another model on the same server: not this workload's SLO
            if model is not None:
                agg.models.add(model)
        if signal == "rate":
            tag = s.labels.get(COVER_TAG)
            if tag is not None:
                agg.cover.setdefault(pod, {})[tag] = s.value
            else:
                agg.rate = _add(agg.rate, s.value)
                agg.rate_pods.add(pod)
        elif signal.startswith("buckets"):
            metric = signal.removeprefix("buckets").removeprefix("_") or LatencyMetric.E2E.value
            if chosen[workload].value != metric:
                return  # another latency's histogram: not the one this workload's SLO covers
            le = parse_le(s.labels.get("le", ""))
            agg.buckets[le] = agg.buckets.get(le, 0.0) + s.value
            if not s.labels.get(ERROR_LABEL):
                agg.ok_buckets[le] = agg.ok_buckets.get(le, 0.0) + s.value
        elif signal == "failed":
            agg.failed_rps = _add(agg.failed_rps, s.value)
        elif signal == "in_flight":
            agg.in_flight = _add(agg.in_flight, s.value)
        elif signal == "summary":
            q = parse_le(s.labels.get("quantile", ""))
            if not math.isnan(q):
                prev = agg.summary.get(q)
                agg.summary[q] = s.value if prev is None else max(prev, s.value)

    # ---- the rule for missing data -----------------------------------------------------------

    def _metrics(
        self,
        target: ObserveTarget,
        agg: _Agg,
        now_s: float,
        pods: tuple[set[str], set[str]],
        notes: list[str],
    ) -> WorkloadMetrics:
        """One workload's metrics; ``pods``: its ready pods and all its pods the cluster
        reports (for the rule for partial data)."""
        key = target.ref.key
        spec = target.spec
        profile = spec.metrics_profile
        feeds = _feeds(profile, spec.latency_metric)
        if spec.latency_metric is not LatencyMetric.E2E:
            agg.failed_rps = None  # a failed request has no first token: it is not in them
        rate = None if feeds["rate"] & agg.failed else agg.rate
        in_flight = agg.in_flight
        latency_s: float | None = None
        ratio: GoodRatio | None = None
        gap: UnresolvedTarget | None = None
        threshold_s = spec.latency_target_ms / 1000.0
        if profile is MetricsProfile.TRITON and spec.model is None and len(agg.models) > 1:
            notes.append(
                f"prometheus: {key} serves {len(agg.models)} Triton models "
                f"({', '.join(sorted(agg.models))}): set sloscale.io/model to the one its SLO "
                "covers; its Triton signals are unavailable until then"
            )
            rate = in_flight = None
            agg.summary.clear()
        if profile is MetricsProfile.CUSTOM:
            latency_s = None if feeds["latency"] & agg.failed else agg.latency_s
            if agg.good_ratio is not None and not (feeds["good_ratio"] & agg.failed):
                ratio = GoodRatio(agg.good_ratio, exact=True)
        elif profile is MetricsProfile.TRITON:
            if not feeds["latency"] & agg.failed and agg.summary:
                latency_us = summary_quantile(spec.latency_quantile, agg.summary)
                latency_s = None if latency_us is None else latency_us / 1e6
                ratio = summary_good_ratio(spec.latency_target_ms * 1000.0, agg.summary)
        elif not feeds["latency"] & agg.failed and agg.buckets and rate is not None and rate > 0:
            latency_s = histogram_quantile(spec.latency_quantile, agg.buckets)
            ratio, gap = self._sli(key, threshold_s, agg, feeds["good_ratio"])
        if profile in _COMPLETIONS_RATE and rate == 0 and in_flight != 0:
            rate = None  # requests may be in flight while none completed: demand is unknown
        partial = False
        if rate is not None and profile is not MetricsProfile.CUSTOM:
            reasons = partial_reasons(agg.rate_pods, agg.cover, *pods)
            rate = self._trusted(key, rate, reasons, now_s, notes)
            partial = bool(reasons) and rate is not None
        if ratio is not None and not ratio.exact and gap is None:
            self._note_interpolated(key, spec.latency_target_ms, profile)
        values: dict[str, float | None] = {
            "rate": rate,
            "latency": None if latency_s is None else latency_s * 1000.0,
            "good_ratio": None if ratio is None else ratio.value,
            "gpu_util": agg.gpu_util,
            "gpu_busy": agg.gpu_busy,
            "memory": agg.gpu_memory_mib,
            "data": None if "retrain:data" in agg.failed else agg.data_samples,
        }
        metrics = WorkloadMetrics(
            request_rate_rps=values["rate"],
            latency_ms=values["latency"],
            good_ratio=values["good_ratio"],
            gpu_util=values["gpu_util"],
            gpu_busy=values["gpu_busy"],
            gpu_memory_mib=values["memory"],
            data_samples=values["data"],
            in_flight=in_flight,
            window_s=self.settings.window_s,
            rate_partial=partial,
            unresolved_target=gap if ratio is not None else None,
        )
        core = ("request_rate_rps", "latency_ms", "good_ratio")
        with self._lock:
            self.empty_results_total += sum(name in core for name in metrics.missing)
        return metrics

    def _sli(
        self,
        key: str,
        threshold_s: float,
        agg: _Agg,
        feeds: set[str],
    ) -> tuple[GoodRatio | None, UnresolvedTarget | None]:
        """The good ratio from the buckets, and why the target is unresolved (if it is).

        Only requests without an error count as good (``ok_buckets``), out of all requests
        and the failures the histogram does not hold. A target the buckets cannot resolve
        (``controller.buckets``) is read at the bound under it: a lower bound, said in
        the log once per workload and carried on the metrics to every decision."""
        if feeds & agg.failed:
            return None, None
        total = sum(v for le, v in agg.buckets.items() if math.isinf(le)) + (agg.failed_rps or 0)
        gap = unresolved(threshold_s, (le for le in agg.buckets if math.isfinite(le)))
        if gap is None:
            return good_ratio(threshold_s, agg.ok_buckets, total), None
        if key not in self.unresolved_targets:
            self.unresolved_targets.add(key)
            log.warning("%s: %s", key, gap.describe())
        return lower_bound_ratio(gap.below_s, agg.ok_buckets, total), gap

    def _trusted(
        self, key: str, rate: float, reasons: Sequence[str], now_s: float, notes: list[str]
    ) -> float | None:
        """A full reading as it is; a partial one never lower than the last full reading,
        and unavailable without a recent one (``coverage``)."""
        if not reasons:
            self._last_full[key] = (rate, now_s)
            return rate
        why = "; ".join(reasons)
        last = self._last_full.get(key)
        hold = self.settings.partial_hold_s
        if last is not None and 0.0 <= now_s - last[1] <= hold:
            sized = max(rate, last[0])
            notes.append(
                f"prometheus: {key} rate partial ({why}): sized on {sized:.4g} rps, the larger "
                f"of the partial {rate:.4g} and the last full {last[0]:.4g} "
                f"({now_s - last[1]:.0f} s ago)"
            )
            return sized
        notes.append(
            f"prometheus: {key} rate partial ({why}): unavailable, no full reading in the "
            f"last {hold:g} s"
        )
        return None

    def _note_interpolated(self, key: str, target_ms: float, profile: MetricsProfile) -> None:
        """Say once per workload that its SLO threshold is not a bucket bound."""
        if key in self.interpolated_thresholds:
            return
        self.interpolated_thresholds.add(key)
        what = "summary quantiles" if profile is MetricsProfile.TRITON else "bucket bounds"
        log.warning(
            "%s: latency target %g ms is not one of the %s; the good-request ratio is "
            "interpolated (add a bucket at the target for an exact SLI)",
            key,
            target_ms,
            what,
        )

    # ---- RateHistorySource -------------------------------------------------------------------

    def rate_history(
        self, targets: Sequence[ObserveTarget], start_s: float, end_s: float, step_s: float
    ) -> Mapping[str, History]:
        """Mean request rate per step over ``[start_s, end_s)``, chunked; never raises."""
        if not step_s > 0 or end_s <= start_s:
            return {}
        steps = math.ceil((end_s - start_s) / step_s - 1e-9)
        values = {t.ref.key: np.full(steps, np.nan) for t in targets}
        seen: set[str] = set()
        resolver = WorkloadResolver(targets, self._pods())
        chunk = max(1, self.settings.max_points_per_query)
        chunks = range(0, steps, chunk)
        for profile in MetricsProfile:
            mine = [t for t in targets if t.spec.metrics_profile is profile]
            query = rate_history_query(profile, mine, step_s)
            if query is None:
                continue
            failures: list[QueryError] = []
            for first in chunks:
                last = min(steps, first + chunk) - 1
                # step i covers [start + i*step, start + (i+1)*step): evaluate at its end
                t0 = start_s + (first + 1) * step_s
                t1 = start_s + (last + 1) * step_s
                try:
                    series = self.client.query_range(
                        query.promql, t0, t1, step_s, timeout_s=self.settings.query_timeout_s
                    )
                except QueryError as e:
                    failures.append(e)
                    if e.unreachable:  # every other chunk would fail the same way
                        break
                    continue
                sums: dict[str, dict[int, float]] = {}
                for s in series:
                    if query.key == "custom:rate":
                        workload: str | None = s.labels.get(WORKLOAD_TAG)
                    else:
                        hit = resolver.resolve(s.labels)
                        workload = hit[0] if hit else None
                    if workload is None or workload not in values:
                        continue
                    acc = sums.setdefault(workload, {})
                    for t, v in zip(s.times_s, s.values, strict=True):
                        i = round((t - start_s) / step_s) - 1
                        if first <= i <= last:
                            acc[i] = acc.get(i, 0.0) + v
                for workload, acc in sums.items():
                    for i, v in acc.items():
                        values[workload][i] = v if math.isfinite(v) else np.nan
                    seen.add(workload)
            if failures:
                _log_warm_start_failures(query.key, failures, len(chunks))
                if failures[-1].unreachable:
                    break  # nor would any other profile's query
        return {
            key: History(start_s=start_s, step_s=step_s, values=arr)
            for key, arr in values.items()
            if key in seen
        }


def _log_warm_start_failures(key: str, failures: Sequence[QueryError], chunks: int) -> None:
    """One line for a warm start's failed chunks: their steps are unknown (NaN), not zero."""
    if failures[-1].unreachable:
        log.warning(
            "warm start: %s; going on without the rate history (the forecaster learns from "
            "live readings)",
            failures[-1],
        )
        return
    causes = sorted({str(e) for e in failures})
    log.warning(
        "warm start: %s: %d of %d chunks failed (%s); their steps are unknown",
        key,
        len(failures),
        chunks,
        "; ".join(causes[:3]) + (f"; and {len(causes) - 3} more" if len(causes) > 3 else ""),
    )


_MODEL_LABEL_BY_SOURCE = {p.value: label for p, label in MODEL_LABELS.items()}
"""Query key prefix (``triton``) -> the label naming the served model."""

_COMPLETIONS_RATE = (MetricsProfile.VLLM, MetricsProfile.SGLANG)
"""Profiles whose rate counts completed requests (a histogram's count), not arrivals."""


def _feeds(
    profile: MetricsProfile, metric: LatencyMetric = LatencyMetric.E2E
) -> dict[str, set[str]]:
    """Which query keys each core signal of ``profile`` depends on, when its SLO covers
    ``metric`` (whose buckets feed latency and good ratio)."""
    if metric is not LatencyMetric.E2E:
        buckets = buckets_key(profile, metric)
        return {"rate": {f"{profile.value}:rate"}, "latency": {buckets}, "good_ratio": {buckets}}
    if profile is MetricsProfile.CUSTOM:
        return {
            "rate": {"custom:rate"},
            "latency": {"custom:latency"},
            "good_ratio": {"custom:good_ratio"},
        }
    if profile is MetricsProfile.TRITON:
        return {"rate": {"triton:rate"}, "latency": {"triton:summary"}, "good_ratio": set()}
    if profile is MetricsProfile.TGI:
        return {
            "rate": {"tgi:rate"},
            "latency": {"tgi:buckets"},
            "good_ratio": {"tgi:buckets", "tgi:failed"},
        }
    p = profile.value
    return {"rate": {f"{p}:rate"}, "latency": {f"{p}:buckets"}, "good_ratio": {f"{p}:buckets"}}
