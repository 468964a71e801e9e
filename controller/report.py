"""What one tick tells its recorders (``/metrics``, the API, logs): the ``TickReport`` with
every workload's and job's status, and the ``Recorder`` interface that receives it.

The statuses are built here from the loop's per-object records (``controller.state``) and the
snapshot the tick discovered, and so is what the cluster did with each decision
(``mark_applied``). Purely computational, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from controller.capacity import CapacityModel
from controller.domain import (
    Allocation,
    ApplyResult,
    ClusterSnapshot,
    Condition,
    ConditionType,
    Decision,
    Plan,
    Reason,
    SloSpec,
    SpecError,
    WorkloadMetrics,
)
from controller.forecast import ForecastBank, ForecastPhaseStats, ForecastScore
from controller.prediction import RateForecast
from controller.retrain import RetrainStatus
from controller.slo import SliSample
from controller.state import StateStore

PHASES = ("discover", "observe", "forecast", "plan", "retrain", "act", "record")
"""The phases of a tick, in order; each is timed once (``TickReport.phase_s``)."""


@dataclass(frozen=True, slots=True)
class WorkloadStatus:
    """One workload as the API shows it after a tick."""

    key: str
    spec: SloSpec | None
    errors: tuple[SpecError, ...]
    current: Allocation
    ready_replicas: int
    desired: Allocation | None
    metrics: WorkloadMetrics
    forecast: RateForecast | None
    forecast_score: ForecastScore
    sli: float | None
    budget_remaining: float
    capacity: CapacityModel
    last_decision: Decision | None
    warnings: tuple[SpecError, ...] = ()  # what its spec took only in part


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One low-priority job as the API shows it: what sloscale knows and did to it.

    A job's progress is not observable on Kubernetes (a Job reports only completions), so
    the lost work is sloscale's own estimate at each preemption: GPU time since the last
    checkpoint by the job's ``checkpoint-interval`` (all of it since the start without one).
    """

    key: str
    phase: str
    priority: int
    preemptible: bool
    pods: int
    share_pct_per_pod: int
    started_at_s: float | None
    preemptions_last_day: int
    estimated_lost_gpu_h: float
    last_decision: Decision | None
    warnings: tuple[SpecError, ...] = ()  # what its spec took only in part


@dataclass(frozen=True, slots=True)
class TickReport:
    """Everything one tick did, for the recorders (metrics, API, logs)."""

    time_s: float
    phase_s: Mapping[str, float]
    decisions: tuple[Decision, ...]
    results: tuple[ApplyResult, ...]
    workloads: tuple[WorkloadStatus, ...]
    plan: Plan
    dry_run: bool
    errors: tuple[str, ...] = ()
    forecast_stats: ForecastPhaseStats = field(default_factory=ForecastPhaseStats)
    snapshot: ClusterSnapshot | None = None  # what discover saw (None: discovery failed)
    retraining: tuple[RetrainStatus, ...] = ()  # every model with retraining settings
    jobs: tuple[JobStatus, ...] = ()
    lost_gpu_h: Mapping[str, float] = field(default_factory=dict)  # per job, this tick
    sli_samples: Mapping[str, SliSample] = field(default_factory=dict)
    """Per workload, this tick's good and total requests as its error budget counted them
    (none where the rate or the good ratio was unavailable)."""


class Recorder:
    """Receives every tick's report; subclasses export it (``/metrics``, status, logs)."""

    def record(self, report: TickReport) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def workload_statuses(
    snapshot: ClusterSnapshot, state: StateStore, forecasts: ForecastBank
) -> tuple[WorkloadStatus, ...]:
    """Every Deployment of the snapshot that the loop keeps a record of, as the API shows it."""
    out = []
    for dep in snapshot.deployments:
        tr = state.find_workload(dep.ref.key)
        if tr is None:
            continue
        out.append(
            WorkloadStatus(
                key=dep.ref.key,
                spec=tr.spec,
                errors=tr.errors,
                current=Allocation(dep.replicas, dep.slice_pct),
                ready_replicas=dep.ready_replicas,
                desired=tr.last_decision.desired if tr.last_decision else None,
                metrics=tr.last_metrics,
                forecast=tr.forecast,
                forecast_score=forecasts.score(dep.ref.key),
                sli=tr.budget.sli() if tr.budget else None,
                budget_remaining=tr.budget.remaining() if tr.budget else 1.0,
                capacity=tr.capacity,
                last_decision=tr.last_decision,
                warnings=tr.warnings,
            )
        )
    return tuple(out)


def job_statuses(snapshot: ClusterSnapshot, state: StateStore, now: float) -> tuple[JobStatus, ...]:
    """Every Job of the snapshot with valid annotations, as the API shows it."""
    out = []
    for job in snapshot.jobs:
        key = job.ref.key
        record = state.find_job(key)
        if record is None or record.spec is None:
            continue
        spec = record.spec
        out.append(
            JobStatus(
                key=key,
                phase=job.phase.value,
                priority=spec.priority,
                preemptible=spec.preemptible,
                pods=job.pods,
                share_pct_per_pod=job.share_pct_per_pod,
                started_at_s=job.started_at_s,
                preemptions_last_day=len(record.preemptions_within(now)),
                estimated_lost_gpu_h=record.lost_gpu_h,
                last_decision=record.last_decision,
                warnings=record.warnings,
            )
        )
    return tuple(out)


def mark_applied(
    decisions: Sequence[Decision], results: Sequence[ApplyResult], *, dry_run: bool
) -> tuple[Decision, ...]:
    """The decisions with what the cluster did: applied (not in a dry run), or failed with
    an ``Applied`` false condition and the reason ``ApplyFailed``."""
    outcome = {r.target: r for r in results}
    out = []
    for d in decisions:
        r = outcome.get(d.target)
        if r is None:
            out.append(d)
        elif r.ok:
            out.append(replace(d, applied=not dry_run))
        else:
            failed = Condition(ConditionType.APPLIED, False, Reason.APPLY_FAILED, r.message)
            out.append(
                replace(
                    d,
                    reason=Reason.APPLY_FAILED,
                    message=f"{d.reason}: {r.message}",
                    applied=False,
                    conditions=(*d.conditions, failed),
                )
            )
    return tuple(out)
