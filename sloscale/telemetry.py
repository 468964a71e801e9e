"""The controller's own Prometheus metrics, fed from each tick's report.

One ``CollectorRegistry`` per controller, so tests and several controllers in one process do
not share state. Names follow Prometheus conventions (base units, ``_total`` counters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from controller import __version__
from controller.domain import ClusterSnapshot, Inventory, JobPhase, Reason, available
from controller.report import PHASES, Recorder, TickReport, WorkloadStatus

# Reasons that can come with a changed allocation or job state. Their change counters start at
# zero per workload and per job: ``increase()`` cannot see a series' first sample, so a counter
# born at 1 would hide the first decision from the dashboards' annotations.
WORKLOAD_CHANGE_REASONS = (
    Reason.SCALE_UP,
    Reason.SCALE_DOWN,
    Reason.RESIZE,
    Reason.SCALE_UP_LIMITED,
    Reason.CAPACITY_LIMITED,
    Reason.AT_MAX,
    Reason.AT_MIN,
    Reason.IDLE_RECLAIMED,
    Reason.RESIZE_FAILED,
)
JOB_CHANGE_REASONS = (Reason.PREEMPTED, Reason.RESUMED, Reason.SCALE_DOWN)
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
        self.forecast_mae = Gauge(
            "sloscale_workload_forecast_mae_rps",
            "Mean absolute error of the forecasts made a lead time ago against the observed "
            "rate (recent matured forecasts)",
            wl,
            registry=r,
        )
        self.forecast_coverage = Gauge(
            "sloscale_workload_forecast_coverage_ratio",
            "Share of recent observed rates at or under the forecast's upper band",
            wl,
            registry=r,
        )
        self.forecast_refits = Counter(
            "sloscale_forecast_refits_total",
            "Forecast model refits by outcome",
            ["outcome"],
            registry=r,
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
        self.conditions = Gauge(
            "sloscale_workload_condition",
            "Conditions of a workload's last decision: 1 where the condition holds, else 0",
            ["workload", "type", "reason"],
            registry=r,
        )
        self._condition_labels: dict[str, set[tuple[str, str]]] = {}
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
        self.job_preemptions = Counter(
            "sloscale_job_preemptions_total", "Preemptions per job", ["job"], registry=r
        )
        self.lost_gpu_hours = Counter(
            "sloscale_preemption_lost_gpu_hours_total",
            "Work lost to preemptions, estimated at each preemption from the job's checkpoint "
            "interval (GPU-hours)",
            ["job"],
            registry=r,
        )
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
        # --- for the dashboards and the SLO burn-rate rules (dashboards/) ---------------------
        self.requests = Counter(
            "sloscale_workload_requests_total",
            "Requests observed (observed rate times the tick interval, as the error budget "
            "counts them): the SLI's denominator",
            wl,
            registry=r,
        )
        self.good_requests = Counter(
            "sloscale_workload_good_requests_total",
            "Requests under the latency target (requests times the good ratio): the SLI's "
            "numerator",
            wl,
            registry=r,
        )
        self.gpu_utilisation = Gauge(
            "sloscale_workload_gpu_utilisation_ratio",
            "Used share over allocated share of the workload's ready pods (SM activity)",
            wl,
            registry=r,
        )
        self.changes = Counter(
            "sloscale_decision_changes_total",
            "Decisions that changed a workload's allocation or a job's state, by reason",
            ["workload", "reason"],
            registry=r,
        )
        self.retrain_triggers = Counter(
            "sloscale_retrain_triggers_total",
            "Retraining jobs triggered per model (new samples crossed the threshold)",
            wl,
            registry=r,
        )
        self.retrain_samples_pending = Gauge(
            "sloscale_retrain_samples_pending",
            "New samples since the model's retraining watermark",
            wl,
            registry=r,
        )
        self.build_info = Gauge(
            "sloscale_build_info",
            "Always 1; the running sloscale's version in the label (join on it in queries)",
            ["version"],
            registry=r,
        )
        self.build_info.labels(version=__version__).set(1)
        self.leader = Gauge(
            "sloscale_leader", "1 while this replica leads (and so ticks), 0 otherwise", registry=r
        )
        self.leader.set(1)  # a single replica leads; with election, ``set_leader`` says
        node = ["node"]
        self.node_capacity = Gauge(
            "sloscale_node_gpu_capacity_cards",
            "GPU capacity of the node, in cards",
            node,
            registry=r,
        )
        self.node_allocated = Gauge(
            "sloscale_node_gpu_allocated_cards",
            "GPU share held by slices on the node, in cards, by owner kind (inference, job)",
            ["node", "kind"],
            registry=r,
        )
        self.node_inference_used = Gauge(
            "sloscale_node_inference_gpu_used_cards",
            "GPU share used by inference slices on the node, in cards (slice times the "
            "workload's utilisation; jobs are not measured)",
            node,
            registry=r,
        )
        self.pool_capacity = Gauge(
            "sloscale_pool_gpu_capacity_cards", "GPU capacity of the pool, in cards", registry=r
        )
        self.pool_free = Gauge(
            "sloscale_pool_gpu_free_cards",
            "Unallocated GPU share of the pool, in cards",
            registry=r,
        )
        self.pool_fragmentation = Gauge(
            "sloscale_pool_gpu_fragmentation_ratio",
            "Share of the free GPU share that lies on partly used cards (0 = all free share is "
            "whole empty cards)",
            registry=r,
        )
        self.pool_largest_free = Gauge(
            "sloscale_pool_largest_free_slice_percent",
            "Largest free share on any one card (% of a card): the biggest slice that fits",
            registry=r,
        )
        self.job_gpu = Counter(
            "sloscale_job_gpu_card_seconds",
            "GPU card-seconds held by running low-priority jobs",
            ["namespace"],
            registry=r,
        )
        self._last_pool_s: float | None = None
        self._job_cards: dict[str, float] = {}  # namespace -> cards running jobs held
        for reason in Reason:
            self.decisions.labels(reason=reason.value)
        for phase in PHASES:
            self.phase.labels(phase=phase)

    def record(self, report: TickReport) -> None:
        self.ticks.inc()
        self.dry_run.set(1 if report.dry_run else 0)
        self._record_changes(report)
        self._record_sli(report)
        self.tick_errors.inc(len(report.errors))
        if report.snapshot is not None:
            self.record_pool(report.snapshot, report.workloads)
        self.forecast_refits.labels(outcome="ok").inc(report.forecast_stats.refits)
        self.forecast_refits.labels(outcome="failed").inc(report.forecast_stats.refit_failures)
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
            if j.suspend:
                self.job_preemptions.labels(job=j.ref.key).inc()
        for job, hours in report.lost_gpu_h.items():
            self.lost_gpu_hours.labels(job=job).inc(hours)
        self._record_conditions(report.workloads)
        for w in report.workloads:
            k = w.key
            self.spec_valid.labels(workload=k).set(0 if w.errors else 1)
            self.metrics_unavailable.labels(workload=k)  # a zero, not an absent series
            self.retrain_triggers.labels(workload=k)
            _set_optional(self.gpu_utilisation, k, w.metrics.gpu_util)
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
            _set_optional(self.forecast_mae, k, w.forecast_score.mae_rps)
            _set_optional(self.forecast_coverage, k, w.forecast_score.coverage)
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

    def _record_conditions(self, workloads: Sequence[WorkloadStatus]) -> None:
        """Every condition of each workload's last decision; a condition no longer in the set
        leaves the exposition (as a workload that is gone does)."""
        seen = {w.key for w in workloads}
        for key in [k for k in self._condition_labels if k not in seen]:
            for kind, reason in self._condition_labels.pop(key):
                self.conditions.remove(key, kind, reason)
        for w in workloads:
            conditions = w.last_decision.conditions if w.last_decision else ()
            now = {(str(c.type), str(c.reason)): c.status for c in conditions}
            for kind, reason in self._condition_labels.get(w.key, set()) - set(now):
                self.conditions.remove(w.key, kind, reason)
            for (kind, reason), status in now.items():
                self.conditions.labels(workload=w.key, type=kind, reason=reason).set(
                    1 if status else 0
                )
            self._condition_labels[w.key] = set(now)

    def _record_changes(self, report: TickReport) -> None:
        """Decisions that change something (the dashboards' annotations), retraining triggers."""
        for w in report.workloads:
            for reason in WORKLOAD_CHANGE_REASONS:
                self.changes.labels(workload=w.key, reason=reason.value)  # zeros, see above
        for job in report.jobs:
            for reason in JOB_CHANGE_REASONS:
                self.changes.labels(workload=job.key, reason=reason.value)
        for d in report.decisions:
            if d.changes:
                self.changes.labels(workload=d.target, reason=d.reason.value).inc()
            if d.reason is Reason.RETRAIN_TRIGGERED and d.applied:
                self.retrain_triggers.labels(workload=d.target).inc()
        for s in report.retraining:
            self.retrain_triggers.labels(workload=s.key)  # a zero, not an absent series
            _set_optional(self.retrain_samples_pending, s.key, s.samples_since_watermark)
        for j in report.plan.jobs:
            self.changes.labels(workload=j.ref.key, reason=j.reason.value).inc()
        dry = "true" if report.dry_run else "false"
        for kind in ("scale", "suspend", "resume"):
            self.actions.labels(kind=kind, dry_run=dry)

    def _record_sli(self, report: TickReport) -> None:
        """Good and total requests of this tick: the loop's SLI samples, which its error budget
        counted too (one computation, ``controller.slo.sli_sample``).

        A workload without a sample this tick (no rate or good ratio read) adds nothing.
        """
        for w in report.workloads:
            if w.spec is None:
                continue
            total = self.requests.labels(workload=w.key)
            good = self.good_requests.labels(workload=w.key)
            sample = report.sli_samples.get(w.key)
            if sample is not None:
                total.inc(sample.total)
                # a counter never falls: a custom good-ratio query outside [0, 1] is clipped
                good.inc(min(sample.total, max(0.0, sample.good)))

    def record_pool(
        self, snapshot: ClusterSnapshot, workloads: Sequence[WorkloadStatus] = ()
    ) -> None:
        """Per-node and pool GPU share, and GPU time of low-priority jobs, from a snapshot.

        Jobs' GPU time is counted for the interval since the previous snapshot, at what the
        jobs held then (a job that started just now has not used anything yet).
        """
        inventory = snapshot.inventory
        owners = {d.ref.key: "inference" for d in snapshot.deployments}
        owners.update({j.ref.key: "job" for j in snapshot.jobs})
        util = {w.key: w.metrics.gpu_util for w in workloads}
        capacity: dict[str, float] = {}
        for card in inventory.cards:
            capacity[card.node] = capacity.get(card.node, 0.0) + card.capacity_pct / 100
        allocated = {(n, kind): 0.0 for n in capacity for kind in ("inference", "job")}
        used = dict.fromkeys(capacity, 0.0)
        node_of = {c.card_id: c.node for c in inventory.cards}
        for a in inventory.allocations:
            node = node_of.get(a.card_id)
            kind = owners.get(a.owner, "other")
            if node is None:
                continue
            allocated[node, kind] = allocated.get((node, kind), 0.0) + a.share_pct / 100
            u = util.get(a.owner)
            if kind == "inference" and a.ready and available(u):
                assert u is not None
                used[node] += a.share_pct / 100 * u
        for node, cards in capacity.items():
            self.node_capacity.labels(node=node).set(cards)
            self.node_inference_used.labels(node=node).set(used[node])
        for (node, kind), cards in allocated.items():
            self.node_allocated.labels(node=node, kind=kind).set(cards)
        free = pool_free_pct(inventory)
        self.pool_capacity.set(inventory.total_pct() / 100)
        self.pool_free.set(sum(free.values()) / 100)
        self.pool_fragmentation.set(fragmentation(inventory, free))
        self.pool_largest_free.set(max(free.values(), default=0))
        self._record_job_time(snapshot)

    def _record_job_time(self, snapshot: ClusterSnapshot) -> None:
        last, self._last_pool_s = self._last_pool_s, snapshot.time_s
        dt_s = 0.0 if last is None else max(0.0, snapshot.time_s - last)
        for namespace, cards in self._job_cards.items():
            self.job_gpu.labels(namespace=namespace).inc(cards * dt_s)
        held: dict[str, float] = {}
        for j in snapshot.jobs:
            running = j.phase is JobPhase.RUNNING
            cards = j.pods * j.share_pct_per_pod / 100 if running else 0.0
            held[j.ref.namespace] = held.get(j.ref.namespace, 0.0) + cards
            self.job_gpu.labels(namespace=j.ref.namespace)
        self._job_cards = held

    def set_leader(self, leading: bool) -> None:
        """For leader election: a replica that loses the lease stops ticking and reports 0."""
        self.leader.set(1 if leading else 0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def pool_free_pct(inventory: Inventory) -> dict[str, int]:
    """Free share per card, % of a card."""
    used = inventory.used_pct_by_card()
    return {c.card_id: max(0, c.capacity_pct - used.get(c.card_id, 0)) for c in inventory.cards}


def fragmentation(inventory: Inventory, free_pct: Mapping[str, int]) -> float:
    """Share of the free capacity on partly used cards; 0 when nothing is free.

    Free share on an empty card can take any slice; free share on a card others use can only
    take slices up to what is left there, so the more of it, the more fragmented the pool.
    """
    total = sum(free_pct.values())
    if total <= 0:
        return 0.0
    whole = sum(
        free_pct[c.card_id] for c in inventory.cards if free_pct[c.card_id] >= c.capacity_pct
    )
    return 1.0 - whole / total


def _set_optional(gauge: Gauge, workload: str, value: float | None) -> None:
    """Unavailable metrics are exported as NaN (absent in PromQL results), never as zero."""
    gauge.labels(workload=workload).set(float("nan") if value is None else value)
