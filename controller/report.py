"""What one tick tells its recorders (``/metrics``, the API, logs): the ``TickReport`` with
every workload's and job's status, and the ``Recorder`` interface that receives it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from controller.capacity import CapacityModel
from controller.domain import (
    Allocation,
    ApplyResult,
    ClusterSnapshot,
    Decision,
    Plan,
    SloSpec,
    SpecError,
    WorkloadMetrics,
)
from controller.forecast import ForecastPhaseStats, ForecastScore
from controller.prediction import RateForecast
from controller.retrain import RetrainStatus
from controller.slo import SliSample

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
