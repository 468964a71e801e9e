"""The Prometheus adapter: ``MetricsSource`` and ``RateHistorySource`` over the HTTP API.

``PrometheusClient`` speaks the API (auth, TLS, timeouts); ``profiles`` writes the batched
PromQL of each metrics profile; ``podmap`` maps pods to workloads; ``histogram`` does the
quantile and good-ratio arithmetic; ``PrometheusMetricsSource`` puts them together.
"""

from actuators.prometheus.client import (
    PrometheusClient,
    PrometheusConfig,
    PromSample,
    PromSeries,
    QueryError,
)
from actuators.prometheus.podmap import PodInfo, PodMap, SnapshotTap, pod_map_from_snapshot
from actuators.prometheus.source import PrometheusMetricsSource, SourceSettings

__all__ = [
    "PodInfo",
    "PodMap",
    "PromSample",
    "PromSeries",
    "PrometheusClient",
    "PrometheusConfig",
    "PrometheusMetricsSource",
    "QueryError",
    "SnapshotTap",
    "SourceSettings",
    "pod_map_from_snapshot",
]
