"""``rps``: the Kubernetes HPA on requests per second per pod, what teams run for inference.

The algorithm is ``hpa.py``'s, unchanged (replica calculator, tolerance 0.1, default
behaviour); only the metric differs. It models an HPA with a ``Pods`` metric served by a
Prometheus adapter (``sum(rate(requests_total[1m])) by (pod)``) and an ``AverageValue``
target in requests per second::

    metrics:
    - type: Pods
      pods:
        metric: {name: requests_per_second}
        target: {type: AverageValue, averageValue: "<target>"}

Upstream that is ``ReplicaCalculator.GetMetricReplicas`` -> ``calcPlainMetricReplicas``
(``replica_calculator.go``): the usage ratio is the average of the pods' values over the
target; within the tolerance (|1 - ratio| <= 0.1) the replicas hold, otherwise
``ceil(ratio x pods with a metric)``, which with every ready pod reporting is
``ceil(sum(metric) / target)``. Pending pods are ignored; pods without a value are missing
(counted at the target on a scale-down, at 0 on a scale-up, and the move is dropped if that
flips its direction or lands within the tolerance); unready pods are *not* set aside, as they
are only for CPU. ``hpa.replica_count`` with a plain (non-resource) ``MetricTarget`` is
exactly this. (``GetObjectPerPodMetricReplicas`` / ``GetExternalPerPodMetricReplicas``, an
``Object`` or ``External`` metric with an ``AverageValue`` target, compute
``ceil(total / target)`` against the status replicas instead, without the missing-pod rules;
the ``Pods`` form is what the Prometheus adapter's per-pod series give.)

Per-pod values: the simulator dispatches requests uniformly over the ready pods, so each ready
pod's rate is the workload's rate (``MetricsSource``, the 60 s window the ``hpa`` reads too)
over the ready pods; a pod still starting (loading its model) reports nothing (missing), as
an inference server's metrics endpoint comes up with the server.

Targets are given in percent of ``reference_rps``: the largest rate one replica of the
Deployment's slice serves within the SLO (from the hidden model, ``sizing``). Only the suite's
search uses it, to span a range (20..95 %) at the resolution of one point; the policy itself
is handed a number of requests per second, as a team would write into the manifest after a
load test.
"""

from __future__ import annotations

from controller.domain import SloSpec, WorkloadMetrics, WorkloadRef, available
from controller.ports import Cluster, MetricsSource
from sloscale.bench.hpa import SYNC_PERIOD_S, HpaPolicy, MetricTarget
from sloscale.bench.setup import BENCH_MODEL, LATENCY_QUANTILE, BenchSetup
from sloscale.bench.sizing import max_rate_per_replica_rps


def reference_rps(setup: BenchSetup) -> float:
    """The largest rate one replica of the Deployment's slice serves within the SLO."""
    return max_rate_per_replica_rps(
        BENCH_MODEL, setup.template_slice_pct, setup.settings.slo_ms, LATENCY_QUANTILE
    )


def target_rps(setup: BenchSetup, target_pct: int) -> float:
    """The ``AverageValue`` target, in requests per second per pod, of ``rps@target_pct``."""
    return reference_rps(setup) * target_pct / 100.0


class RpsHpaPolicy(HpaPolicy):
    """The HPA on an ``AverageValue`` target of requests per second per pod."""

    def __init__(
        self,
        ref: WorkloadRef,
        spec: SloSpec,
        cluster: Cluster,
        metrics: MetricsSource,
        *,
        target_rps: float,
        period_s: float = SYNC_PERIOD_S,
    ) -> None:
        super().__init__(ref, spec, cluster, metrics, target_pct=target_rps, period_s=period_s)
        self.target = MetricTarget(target_rps)  # a plain value, not a resource utilisation

    def pod_value(self, metrics: WorkloadMetrics, ready_pods: int) -> float | None:
        """The workload's rate shared over its ready pods (``None``: no rate, no ready pod)."""
        rate = metrics.request_rate_rps
        if not available(rate) or rate is None or ready_pods < 1:
            return None
        return rate / ready_pods
