"""The controller's own Prometheus metrics, fed from each tick's report.

One ``CollectorRegistry`` per controller, so tests and several controllers in one process do
not share state. Names follow Prometheus conventions (base units, ``_total`` counters).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from controller.domain import Reason
from controller.loop import PHASES, Recorder, TickReport

PHASE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class MetricsRecorder(Recorder):
    """Exports per-workload allocations, SLIs, forecasts, tick timings and decisions."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        wl = ["workload"]
        self.desired_replicas = Gauge(
            "sloscale_workload_desired_replicas", "Replicas sloscale wants", wl, registry=r
        )
        self.applied_replicas = Gauge(
            "sloscale_workload_applied_replicas", "Replicas in the Deployment spec", wl, registry=r
        )
        self.ready_replicas = Gauge(
            "sloscale_workload_ready_replicas", "Ready replicas", wl, registry=r
        )
        self.desired_slice = Gauge(
            "sloscale_workload_desired_slice_percent",
            "GPU slice per replica sloscale wants (% of a card)",
            wl,
            registry=r,
        )
        self.applied_slice = Gauge(
            "sloscale_workload_applied_slice_percent",
            "GPU slice per replica in the pod template (% of a card)",
            wl,
            registry=r,
        )
        self.predicted_rate = Gauge(
            "sloscale_workload_predicted_rate_rps",
            "Forecast request rate over the lead time (mean)",
            wl,
            registry=r,
        )
        self.predicted_rate_upper = Gauge(
            "sloscale_workload_predicted_rate_upper_rps",
            "Upper band of the forecast request rate",
            wl,
            registry=r,
        )
        self.observed_rate = Gauge(
            "sloscale_workload_observed_rate_rps", "Observed request rate", wl, registry=r
        )
        self.latency = Gauge(
            "sloscale_workload_latency_seconds",
            "Observed latency at the SLO quantile",
            wl,
            registry=r,
        )
        self.latency_target = Gauge(
            "sloscale_workload_latency_target_seconds", "Latency target of the SLO", wl, registry=r
        )
        self.sli = Gauge(
            "sloscale_workload_sli_ratio",
            "Share of good requests over the SLO window so far",
            wl,
            registry=r,
        )
        self.objective = Gauge("sloscale_workload_objective_ratio", "SLO objective", wl, registry=r)
        self.budget = Gauge(
            "sloscale_workload_error_budget_remaining_ratio",
            "Error budget left (1 = untouched)",
            wl,
            registry=r,
        )
        self.spec_valid = Gauge(
            "sloscale_workload_spec_valid",
            "1 when the SLO annotations parse, 0 otherwise",
            wl,
            registry=r,
        )
        self.metrics_unavailable = Counter(
            "sloscale_metrics_unavailable_total",
            "Ticks a workload was held for missing metrics",
            wl,
            registry=r,
        )
        self.decisions = Counter(
            "sloscale_decisions_total", "Decisions by reason", ["reason"], registry=r
        )
        self.actions = Counter(
            "sloscale_actions_total",
            "Actions sent to the cluster (or, in dry run, not sent)",
            ["kind", "dry_run"],
            registry=r,
        )
        self.preemptions = Counter(
            "sloscale_preemptions_total", "Jobs suspended to make room", registry=r
        )
        self.resumes = Counter("sloscale_resumes_total", "Suspended jobs resumed", registry=r)
        self.phase = Histogram(
            "sloscale_tick_phase_duration_seconds",
            "Wall time of each tick phase",
            ["phase"],
            buckets=PHASE_BUCKETS_S,
            registry=r,
        )
        self.ticks = Counter("sloscale_ticks_total", "Ticks run", registry=r)
        self.tick_errors = Counter(
            "sloscale_tick_errors_total", "Errors caught inside a tick", registry=r
        )
        self.dry_run = Gauge("sloscale_dry_run", "1 in shadow mode", registry=r)
        for reason in Reason:
            self.decisions.labels(reason=reason.value)
        for phase in PHASES:
            self.phase.labels(phase=phase)

    def record(self, report: TickReport) -> None:
        self.ticks.inc()
        self.dry_run.set(1 if report.dry_run else 0)
        self.tick_errors.inc(len(report.errors))
        for phase, seconds in report.phase_s.items():
            self.phase.labels(phase=phase).observe(seconds)
        for d in report.decisions:
            self.decisions.labels(reason=d.reason.value).inc()
            if d.reason is Reason.METRICS_UNAVAILABLE:
                self.metrics_unavailable.labels(workload=d.target).inc()
        dry = "true" if report.dry_run else "false"
        for _a in report.plan.scale:
            self.actions.labels(kind="scale", dry_run=dry).inc()
        for j in report.plan.jobs:
            self.actions.labels(kind="suspend" if j.suspend else "resume", dry_run=dry).inc()
            (self.preemptions if j.suspend else self.resumes).inc()
        for w in report.workloads:
            k = w.key
            self.spec_valid.labels(workload=k).set(0 if w.errors else 1)
            self.applied_replicas.labels(workload=k).set(w.current.replicas)
            self.applied_slice.labels(workload=k).set(w.current.slice_pct)
            self.ready_replicas.labels(workload=k).set(w.ready_replicas)
            if w.desired is not None:
                self.desired_replicas.labels(workload=k).set(w.desired.replicas)
                self.desired_slice.labels(workload=k).set(w.desired.slice_pct)
            if w.forecast is not None:
                self.predicted_rate.labels(workload=k).set(w.forecast.mean_rps)
                self.predicted_rate_upper.labels(workload=k).set(w.forecast.upper_rps)
            _set_optional(self.observed_rate, k, w.metrics.request_rate_rps)
            _set_optional(
                self.latency,
                k,
                None if w.metrics.latency_ms is None else w.metrics.latency_ms / 1000,
            )
            if w.spec is not None:
                self.latency_target.labels(workload=k).set(w.spec.latency_target_ms / 1000)
                self.objective.labels(workload=k).set(w.spec.objective_ratio)
                self.budget.labels(workload=k).set(w.budget_remaining)
            if w.sli is not None:
                self.sli.labels(workload=k).set(w.sli)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _set_optional(gauge: Gauge, workload: str, value: float | None) -> None:
    """Unavailable metrics are exported as NaN (absent in PromQL results), never as zero."""
    gauge.labels(workload=workload).set(float("nan") if value is None else value)
