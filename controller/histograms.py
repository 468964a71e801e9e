"""Which latency histogram each serving engine exports, by name. Purely data.

One place for the names, so that the Prometheus source (``actuators.prometheus.profiles``)
that reads them every tick and the SLO rules (``dashboards.rules``) that turn them into SLIs
agree; ``actuators.prometheus.profiles`` says where each name was checked upstream. The
buckets of each histogram are in ``controller.buckets``.

A ``latency-metric`` of ``ttft`` or ``tpot`` reads the engine's own histogram of that latency;
where an engine renamed it, every name is listed, the current first (an older name is read
only where the current one is missing). ``http``'s histogram marks a failed request with an
``error_type`` label; TGI's counts successful requests only, its failures in a counter.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.domain import LatencyMetric, MetricsProfile

HTTP_HISTOGRAM = "http_server_request_duration_seconds"
VLLM_HISTOGRAM = "vllm:e2e_request_latency_seconds"
TGI_HISTOGRAM = "tgi_request_duration"
SGLANG_HISTOGRAM = "sglang:e2e_request_latency_seconds"
VLLM_TTFT = "vllm:time_to_first_token_seconds"
VLLM_ITL = "vllm:inter_token_latency_seconds"
VLLM_TPOT = "vllm:time_per_output_token_seconds"
SGLANG_TTFT = "sglang:time_to_first_token_seconds"
SGLANG_ITL = "sglang:inter_token_latency_seconds"
SGLANG_TPOT = "sglang:time_per_output_token_seconds"
TGI_TPOT = "tgi_request_mean_time_per_token_duration"
TGI_FAILURE = "tgi_request_failure"
"""TGI's failed requests (label ``err``): not in ``tgi_request_duration``, never good."""

HTTP_ERROR_LABEL = "error_type"
"""OpenTelemetry's ``error.type`` attribute as a Prometheus label: set on failed requests."""

E2E_HISTOGRAMS: Mapping[MetricsProfile, str] = {
    MetricsProfile.HTTP: HTTP_HISTOGRAM,
    MetricsProfile.VLLM: VLLM_HISTOGRAM,
    MetricsProfile.TGI: TGI_HISTOGRAM,
    MetricsProfile.SGLANG: SGLANG_HISTOGRAM,
}
"""The end-to-end request latency histogram per profile (Triton exports a summary only)."""

SIGNAL_HISTOGRAMS: Mapping[tuple[MetricsProfile, LatencyMetric], tuple[str, ...]] = {
    (MetricsProfile.VLLM, LatencyMetric.TTFT): (VLLM_TTFT,),
    (MetricsProfile.VLLM, LatencyMetric.TPOT): (VLLM_ITL, VLLM_TPOT),
    (MetricsProfile.SGLANG, LatencyMetric.TTFT): (SGLANG_TTFT,),
    (MetricsProfile.SGLANG, LatencyMetric.TPOT): (SGLANG_ITL, SGLANG_TPOT),
    (MetricsProfile.TGI, LatencyMetric.TPOT): (TGI_TPOT,),
}
"""The histogram a ``latency-metric`` other than ``e2e`` reads, per profile: its names, the
current first."""

MODEL_LABELS: Mapping[MetricsProfile, str] = {
    MetricsProfile.VLLM: "model_name",
    MetricsProfile.TRITON: "model",
    MetricsProfile.SGLANG: "model_name",
}
"""The label that names the served model, per profile (``SloSpec.model`` selects on it)."""


def latency_histograms(profile: MetricsProfile, metric: LatencyMetric) -> tuple[str, ...]:
    """The names of the histogram that ``metric`` reads on ``profile``, current first; ``()``
    where there is none (Triton, ``custom``)."""
    if metric is LatencyMetric.E2E:
        name = E2E_HISTOGRAMS.get(profile)
        return () if name is None else (name,)
    return SIGNAL_HISTOGRAMS.get((profile, metric), ())


__all__ = [
    "E2E_HISTOGRAMS",
    "HTTP_ERROR_LABEL",
    "MODEL_LABELS",
    "SIGNAL_HISTOGRAMS",
    "latency_histograms",
]
