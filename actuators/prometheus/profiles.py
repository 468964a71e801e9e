"""Metric profiles: which series each kind of inference server exports, as batched PromQL.

Purely computational, no side effects: this module only writes query strings. A workload's
``sloscale.io/metrics-profile`` annotation picks its profile; every profile in use adds a fixed
set of queries that cover **all** its workloads at once (a namespace matcher, grouped by pod),
so the number of queries per tick does not grow with the number of workloads.

Metric names (looked up, not guessed):

- ``http``: OpenTelemetry's HTTP server semantic conventions define the histogram
  ``http.server.request.duration`` in seconds, which Prometheus exporters write as
  ``http_server_request_duration_seconds`` with ``_bucket{le}``, ``_count`` and ``_sum``
  (https://opentelemetry.io/docs/specs/semconv/http/http-metrics/). A request that ended in an
  error has the attribute ``error.type`` (label ``error_type``; for a 5xx, the status code):
  there is no separate failure counter. Its buckets are read by ``error_type`` so that a
  failed request, however fast, is never counted good. The simulator exports the same name
  (``actuators.sim.exporter.HISTOGRAM_NAME``). The same conventions' up-down counter
  ``http.server.active_requests`` (``http_server_active_requests``) counts requests in flight;
  optional: without it the backlog is simply not seen.
- ``vllm``: vLLM's ``/metrics`` has the histogram ``vllm:e2e_request_latency_seconds`` ("end to
  end request latency in seconds") and the gauges ``vllm:num_requests_running`` and
  ``vllm:num_requests_waiting``, with the same names in the V0 engine (``vllm/engine/metrics.py``,
  v0.6.3: label ``model_name``) and the V1 engine (``vllm/v1/metrics/loggers.py``: labels
  ``model_name``, ``engine``); only the buckets differ (``controller.buckets``). Both are summed
  over engines; ``model`` selects one ``model_name``.
- ``triton``: Triton counts ``nv_inference_request_success`` and
  ``nv_inference_request_failure`` per model (labels ``model``, ``version``); its latency
  counters (``nv_inference_request_duration_us``, ``nv_inference_queue_duration_us``) are
  cumulative sums with no distribution, so quantiles come from the summary
  ``nv_inference_request_summary_us{quantile=...}`` that Triton exports when started with
  ``--metrics-config summary_latencies=true`` (Triton ``docs/user_guide/metrics.md``, 23.04 on).
  A mean is never passed off as a quantile: without the summary, latency is unavailable. The
  queue is the gauge ``nv_inference_pending_request_count`` (requests awaiting execution by the
  backend, per model). Every query keeps the ``model`` label: a Triton pod serves many models
  (an ensemble and its steps, a pre-processor), so a workload reads the model its ``model``
  annotation names, or the pod's only model; with several and none named, its Triton signals
  are unavailable and ``errors`` says which models there are (``source``).
- ``tgi``: text-generation-inference's router (``router/src/server.rs``, v2/v3, rendered by
  ``metrics-exporter-prometheus``: no unit suffix, no labels) has the histogram
  ``tgi_request_duration`` (seconds, successful requests), the counters ``tgi_request_count``
  (every request received: the rate) and ``tgi_request_failure`` (label ``err``), and the gauges
  ``tgi_queue_size`` and ``tgi_batch_current_size`` (queued and running requests). A failed
  request is never good: the good ratio's total is the histogram's count plus the failures.
- ``sglang``: SGLang with ``--enable-metrics`` (``python/sglang/srt/metrics/collector.py``) has
  the histogram ``sglang:e2e_request_latency_seconds`` and the gauges ``sglang:num_queue_reqs``
  and ``sglang:num_running_reqs``, labelled ``model_name`` (``model`` selects one).
- ``latency-metric`` ``ttft`` / ``tpot`` (#28 E9): latency and good ratio come from the engine's
  own histogram of that latency, the rate still from the end-to-end histogram's count (or
  TGI's request counter). vLLM: ``vllm:time_to_first_token_seconds`` (V0 and V1) and
  ``vllm:inter_token_latency_seconds`` (V1 from v0.11, vllm-project/vllm#24110), else
  ``vllm:time_per_output_token_seconds`` (V0, V1 to v0.10; deprecated in v0.11, hidden in v0.12,
  removed after); SGLang: ``sglang:time_to_first_token_seconds`` and
  ``sglang:inter_token_latency_seconds``, else the older ``sglang:time_per_output_token_seconds``;
  TGI: ``tgi_request_mean_time_per_token_duration`` (no TTFT histogram: refused by the spec).
  Where an engine writes an old and a new name together (vLLM v0.11 writes both, identical),
  ``or`` takes the new one per pod, so no request is counted twice. One query per signal in
  use, so the batch stays a constant number of queries.
- ``custom``: the workload's own ``latency-query`` (seconds), ``rate-query`` (requests/s) and
  ``good-ratio-query`` (0..1), each an instant vector; all workloads' queries of one kind are
  sent as one query, each tagged with a ``sloscale_workload`` label by ``label_replace``.
- GPU (dcgm-exporter, HAMi's vGPU monitor, ``sloscale agent``): ``gpu``, which the source
  adds to the batch.

Counters are read through ``rate()``, which handles counter resets and needs two samples in
the window (so a stale counter drops out instead of reading 0); gauges through
``last_over_time(...[max_age])`` so a gauge older than ``max_age`` is absent, not stale.

Coverage: a rate is only as good as its window's samples. A pod whose scrapes stopped (or
resumed) inside the window reads low, as a plausible number. Each profile's rate query
therefore also returns, per pod and tagged ``sloscale_cover``, the samples of its counter in
the window's first and second halves and whether it had any in ``coverage_lookback_s`` before
the window (``coverage``); the source compares them (``source``: the rule for partial data).
They ride in the rate query itself (joined with ``or``), so the number of queries is unchanged.

Custom queries are the operator's PromQL: ``promql_problem`` rejects what cannot parse (an
unclosed bracket or string) before it is sent, per workload; a batched union Prometheus still
refuses is split by the source, so one workload's bad query never costs the others theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from controller import histograms
from controller.domain import LatencyMetric, MetricsProfile
from controller.ports import ObserveTarget

HTTP_HISTOGRAM = histograms.HTTP_HISTOGRAM
SGLANG_HISTOGRAM = histograms.SGLANG_HISTOGRAM
SGLANG_ITL = histograms.SGLANG_ITL
SGLANG_TPOT = histograms.SGLANG_TPOT
SGLANG_TTFT = histograms.SGLANG_TTFT
TGI_FAILURE = histograms.TGI_FAILURE
TGI_HISTOGRAM = histograms.TGI_HISTOGRAM
TGI_TPOT = histograms.TGI_TPOT
VLLM_HISTOGRAM = histograms.VLLM_HISTOGRAM
VLLM_ITL = histograms.VLLM_ITL
VLLM_TPOT = histograms.VLLM_TPOT
VLLM_TTFT = histograms.VLLM_TTFT
HTTP_ACTIVE = "http_server_active_requests"
VLLM_RUNNING = "vllm:num_requests_running"
VLLM_WAITING = "vllm:num_requests_waiting"
TGI_REQUESTS = "tgi_request_count"
TGI_QUEUE = "tgi_queue_size"
TGI_RUNNING = "tgi_batch_current_size"
SGLANG_QUEUE = "sglang:num_queue_reqs"
SGLANG_RUNNING = "sglang:num_running_reqs"
TRITON_PENDING = "nv_inference_pending_request_count"
TRITON_SUCCESS = "nv_inference_request_success"
TRITON_FAILURE = "nv_inference_request_failure"
TRITON_SUMMARY = "nv_inference_request_summary_us"

WORKLOAD_TAG = "sloscale_workload"
"""The label ``label_replace`` adds to tell batched custom queries apart."""

COVER_TAG = "sloscale_cover"
"""The label that marks a rate query's coverage series: ``early``, ``late`` or ``before``."""

GROUP = "namespace, pod, deployment"
"""What every per-workload query groups by: pods map to workloads in ``podmap``."""

ERROR_LABEL = histograms.HTTP_ERROR_LABEL
"""OpenTelemetry's ``error.type`` attribute as a Prometheus label: set on failed requests."""

# The histograms' names, the model labels and ``SIGNAL_HISTOGRAMS`` (the histogram a
# ``latency-metric`` other than ``e2e`` reads, current name first: an older name is read only
# for the pods that lack the current one) live in ``controller.histograms``, shared with the
# SLO rules; they are re-exported here, where they were checked upstream (above).
MODEL_LABELS = histograms.MODEL_LABELS
SIGNAL_HISTOGRAMS = histograms.SIGNAL_HISTOGRAMS


def buckets_key(profile: MetricsProfile, metric: LatencyMetric) -> str:
    """The query key of ``profile``'s latency buckets for ``metric`` (``vllm:buckets_ttft``)."""
    suffix = "" if metric is LatencyMetric.E2E else f"_{metric.value}"
    return f"{profile.value}:buckets{suffix}"


def signal_queries(
    profile: MetricsProfile, targets: Sequence[ObserveTarget], ns: str, w: str, by: str = ""
) -> list[Query]:
    """The bucket rates of each TTFT/TPOT histogram some target of ``profile`` reads."""
    out: list[Query] = []
    for metric in (LatencyMetric.TTFT, LatencyMetric.TPOT):
        names = SIGNAL_HISTOGRAMS.get((profile, metric), ())
        if not names or not any(t.spec.latency_metric is metric for t in targets):
            continue
        rates = (f"sum by ({GROUP}, le{by}) (rate({n}_bucket{{{ns}}}[{w}]))" for n in names)
        out.append(Query(buckets_key(profile, metric), " or ".join(rates)))
    return out


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL query of a tick's batch; ``key`` says which signals it feeds."""

    key: str
    promql: str
    parts: tuple[tuple[str, str], ...] = ()
    """For a tagged union: its ``(workload key, promql)`` parts, so that it can be split."""


@dataclass(frozen=True, slots=True)
class QuerySettings:
    """Windows of the queries: ``window_s`` for rates, ``max_age_s`` for gauges, and how far
    before the rate window a counter's samples show it existed (``coverage_lookback_s``)."""

    window_s: float = 60.0
    max_age_s: float = 60.0
    coverage_lookback_s: float = 600.0


def duration(seconds: float) -> str:
    """A PromQL duration in whole milliseconds (``1500ms``)."""
    return f"{max(1, round(seconds * 1000))}ms"


def namespace_matcher(targets: Iterable[ObserveTarget], label: str = "namespace") -> str:
    """``label=~"a|b"`` over the targets' namespaces (PromQL regexes are anchored)."""
    names = sorted({t.ref.namespace for t in targets})
    # regex-escape, then escape the backslashes for the PromQL string literal
    alternatives = "|".join(re.escape(n).replace("\\", "\\\\") for n in names)
    return f'{label}=~"{alternatives}"'


def coverage(counter: str, ns: str, s: QuerySettings) -> str:
    """Per pod, what says whether ``counter`` covers the rate window, each series tagged with
    ``COVER_TAG``: ``now`` and ``start`` (live, i.e. not marked stale, at the window's end and
    start), ``early`` and ``late`` (samples in each half) and ``before`` (samples in
    ``coverage_lookback_s`` before the window)."""
    half, w = duration(s.window_s / 2), duration(s.window_s)
    lookback = duration(s.coverage_lookback_s)
    series = f"{counter}{{{ns}}}"
    parts = (
        ("now", f"count by ({GROUP}) ({series})"),
        ("start", f"count by ({GROUP}) ({series} offset {w})"),
        ("early", f"max by ({GROUP}) (count_over_time({series}[{half}] offset {half}))"),
        ("late", f"max by ({GROUP}) (count_over_time({series}[{half}]))"),
        ("before", f"max by ({GROUP}) (count_over_time({series}[{lookback}] offset {w}))"),
    )
    return " or ".join(f'label_replace({q}, "{COVER_TAG}", "{tag}", "", "")' for tag, q in parts)


def histogram_queries(
    name: str, prefix: str, ns: str, s: QuerySettings, by: str = ""
) -> list[Query]:
    """Request rate (with its coverage) and bucket rates of one histogram family, by pod and
    by the labels ``by`` adds (``, model_name``)."""
    w = duration(s.window_s)
    rate = f"sum by ({GROUP}{by}) (rate({name}_count{{{ns}}}[{w}]))"
    return [
        Query(f"{prefix}:rate", f"{rate} or {coverage(f'{name}_count', ns, s)}"),
        Query(f"{prefix}:buckets", f"sum by ({GROUP}, le{by}) (rate({name}_bucket{{{ns}}}[{w}]))"),
    ]


def gauge(name: str, ns: str, age: str, by: str = "") -> str:
    """A gauge's last value within ``age``, summed by pod (and ``by``)."""
    return f"sum by ({GROUP}{by}) (last_over_time({name}{{{ns}}}[{age}]))"


def profile_queries(
    profile: MetricsProfile, targets: Sequence[ObserveTarget], s: QuerySettings
) -> list[Query]:
    """The fixed queries of one profile for all its targets (``[]`` when it has none)."""
    if not targets:
        return []
    ns = namespace_matcher(targets)
    w, age = duration(s.window_s), duration(s.max_age_s)
    if profile is MetricsProfile.HTTP:
        ok = f"sum by ({GROUP}, le, {ERROR_LABEL}) (rate({HTTP_HISTOGRAM}_bucket{{{ns}}}[{w}]))"
        rate = f"sum by ({GROUP}) (rate({HTTP_HISTOGRAM}_count{{{ns}}}[{w}]))"
        return [
            Query("http:rate", f"{rate} or {coverage(f'{HTTP_HISTOGRAM}_count', ns, s)}"),
            Query("http:buckets", ok),
            Query("http:in_flight", gauge(HTTP_ACTIVE, ns, age)),
        ]
    if profile is MetricsProfile.VLLM:
        by = f", {MODEL_LABELS[profile]}"
        running, waiting = gauge(VLLM_RUNNING, ns, age, by), gauge(VLLM_WAITING, ns, age, by)
        return [
            *histogram_queries(VLLM_HISTOGRAM, "vllm", ns, s, by),
            Query("vllm:in_flight", either_or_both(running, waiting)),
            *signal_queries(profile, targets, ns, w, by),
        ]
    if profile is MetricsProfile.SGLANG:
        by = f", {MODEL_LABELS[profile]}"
        running, queued = gauge(SGLANG_RUNNING, ns, age, by), gauge(SGLANG_QUEUE, ns, age, by)
        return [
            *histogram_queries(SGLANG_HISTOGRAM, "sglang", ns, s, by),
            Query("sglang:in_flight", either_or_both(running, queued)),
            *signal_queries(profile, targets, ns, w, by),
        ]
    if profile is MetricsProfile.TGI:
        requests = f"sum by ({GROUP}) (rate({TGI_REQUESTS}{{{ns}}}[{w}]))"
        failed = f"sum by ({GROUP}) (rate({TGI_FAILURE}{{{ns}}}[{w}]))"
        running, queued = gauge(TGI_RUNNING, ns, age), gauge(TGI_QUEUE, ns, age)
        buckets = f"sum by ({GROUP}, le) (rate({TGI_HISTOGRAM}_bucket{{{ns}}}[{w}]))"
        return [
            Query("tgi:rate", f"{requests} or {coverage(TGI_REQUESTS, ns, s)}"),
            Query("tgi:buckets", buckets),
            Query("tgi:failed", failed),
            Query("tgi:in_flight", either_or_both(running, queued)),
            *signal_queries(profile, targets, ns, w),
        ]
    if profile is MetricsProfile.TRITON:
        by = f", {MODEL_LABELS[profile]}"
        summary = (
            f"max by ({GROUP}{by}, quantile) (last_over_time({TRITON_SUMMARY}{{{ns}}}[{age}]))"
        )
        return [
            Query("triton:rate", f"{triton_rate(ns, w, by)} or {coverage(TRITON_SUCCESS, ns, s)}"),
            Query("triton:summary", summary),
            Query("triton:in_flight", gauge(TRITON_PENDING, ns, age, by)),
        ]
    return custom_queries(targets)


def either_or_both(a: str, b: str) -> str:
    """``a + b`` per group, or whichever side exists (``+`` alone drops one-sided groups).

    Two selectors are added rather than one ``{__name__=~"a|b"}`` because functions drop the
    metric name and two series would then share a label set.
    """
    return f"({a} + {b}) or {a} or {b}"


def triton_rate(ns: str, w: str, by: str = "") -> str:
    """Requests per second, successful and failed, per pod (and ``by``)."""
    ok = f"sum by ({GROUP}{by}) (rate({TRITON_SUCCESS}{{{ns}}}[{w}]))"
    failed = f"sum by ({GROUP}{by}) (rate({TRITON_FAILURE}{{{ns}}}[{w}]))"
    return either_or_both(ok, failed)


def tagged_union(parts: Sequence[tuple[str, str]]) -> str:
    """``label_replace((q1), "sloscale_workload", "ns/a", "", "") or ...`` over ``(key, q)``."""
    return " or ".join(
        f'label_replace(({q}), "{WORKLOAD_TAG}", "{key}", "", "")' for key, q in parts
    )


_CLOSING = {")": "(", "]": "[", "}": "{"}


def promql_problem(text: str) -> str | None:
    """Why ``text`` cannot be PromQL (empty, an unclosed bracket or string), or ``None``.

    A parse check, not a parser: it catches what would make a whole batched union fail
    (``sum((``); what it lets through, Prometheus judges (``source`` splits the union then).
    Purely computational.
    """
    if not text.strip():
        return "empty query"
    opened: list[tuple[str, int]] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote is not None:
            if c == "\\" and quote != "`":
                i += 1  # the escaped character
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c == "#":  # a comment runs to the end of the line
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif c in "([{":
            opened.append((c, i))
        elif c in _CLOSING:
            if not opened or opened[-1][0] != _CLOSING[c]:
                return f"unexpected {c!r} at character {i + 1}"
            opened.pop()
        i += 1
    if quote is not None:
        return f"unterminated {quote} string"
    if opened:
        c, at = opened[-1]
        return f"unclosed {c!r} at character {at + 1}"
    return None


def tagged_query(key: str, parts: Sequence[tuple[str, str]]) -> Query | None:
    """The tagged union of the parts that parse (``None`` when none does)."""
    good = tuple((w, q) for w, q in parts if promql_problem(q) is None)
    return Query(key, tagged_union(good), good) if good else None


_CUSTOM = (("rate", "rate_query"), ("latency", "latency_query"), ("good_ratio", "good_ratio_query"))


def _custom_parts(targets: Sequence[ObserveTarget]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for t in targets:
        if t.spec.metrics_profile is MetricsProfile.CUSTOM:
            for signal, attr in _CUSTOM:
                if q := getattr(t.spec, attr):
                    out.setdefault(f"custom:{signal}", []).append((t.ref.key, q))
        if t.spec.retrain:
            out.setdefault("retrain:data", []).append((t.ref.key, t.spec.retrain.data_query))
    return out


def rejected_parts(targets: Sequence[ObserveTarget]) -> dict[str, dict[str, str]]:
    """Per query key, the workloads whose own query does not parse, and why."""
    out: dict[str, dict[str, str]] = {}
    for key, parts in _custom_parts(targets).items():
        for workload, q in parts:
            if (problem := promql_problem(q)) is not None:
                out.setdefault(key, {})[workload] = f"not valid PromQL: {problem}"
    return out


def custom_queries(targets: Sequence[ObserveTarget]) -> list[Query]:
    """The ``custom`` profile: one tagged union per signal over every target that has it."""
    parts = _custom_parts([t for t in targets if t.spec.metrics_profile is MetricsProfile.CUSTOM])
    queries = (
        tagged_query(f"custom:{signal}", parts.get(f"custom:{signal}", ())) for signal, _ in _CUSTOM
    )
    return [q for q in queries if q is not None]


def retrain_query(targets: Sequence[ObserveTarget]) -> Query | None:
    """Every model's cumulative sample count (``retrain-data-query``) in one query."""
    parts = [(t.ref.key, t.spec.retrain.data_query) for t in targets if t.spec.retrain]
    return tagged_query("retrain:data", parts)


def tick_queries(targets: Sequence[ObserveTarget], s: QuerySettings) -> list[Query]:
    """The batch of one tick but the GPU queries (``gpu``): a fixed number of queries,
    whatever the number of targets."""
    out: list[Query] = []
    for profile in MetricsProfile:
        mine = [t for t in targets if t.spec.metrics_profile is profile]
        out.extend(profile_queries(profile, mine, s))
    retrain = retrain_query(targets)
    if retrain is not None:
        out.append(retrain)
    return out


def rate_history_query(
    profile: MetricsProfile, targets: Sequence[ObserveTarget], step_s: float
) -> Query | None:
    """The request rate over each ``step_s`` for a range query (the warm start)."""
    if not targets:
        return None
    ns = namespace_matcher(targets)
    w = duration(step_s)
    if profile is MetricsProfile.HTTP:
        return Query("http:rate", f"sum by ({GROUP}) (rate({HTTP_HISTOGRAM}_count{{{ns}}}[{w}]))")
    if profile is MetricsProfile.VLLM:
        by = f", {MODEL_LABELS[profile]}"
        return Query(
            "vllm:rate", f"sum by ({GROUP}{by}) (rate({VLLM_HISTOGRAM}_count{{{ns}}}[{w}]))"
        )
    if profile is MetricsProfile.SGLANG:
        by = f", {MODEL_LABELS[profile]}"
        return Query(
            "sglang:rate", f"sum by ({GROUP}{by}) (rate({SGLANG_HISTOGRAM}_count{{{ns}}}[{w}]))"
        )
    if profile is MetricsProfile.TGI:
        return Query("tgi:rate", f"sum by ({GROUP}) (rate({TGI_REQUESTS}{{{ns}}}[{w}]))")
    if profile is MetricsProfile.TRITON:
        return Query("triton:rate", triton_rate(ns, w, f", {MODEL_LABELS[profile]}"))
    parts = [(t.ref.key, t.spec.rate_query) for t in targets if t.spec.rate_query]
    return tagged_query("custom:rate", parts)
