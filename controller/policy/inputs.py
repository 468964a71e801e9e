"""What the planner is given each tick: one input per Deployment and per Job, and the memory
each workload's stages carry from one tick to the next. Purely computational."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from controller.capacity import CapacityModel
from controller.domain import (
    Allocation,
    Condition,
    ConditionType,
    DeploymentState,
    JobSpec,
    JobState,
    Reason,
    SloSpec,
    SpecError,
    WorkloadMetrics,
)
from controller.policy.headroom import BASE_HEADROOM
from controller.policy.rollback import RollbackMemory
from controller.policy.slices import SliceMemory
from controller.policy.stabilise import Recommendations

DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class PlannerMemory:
    """One workload's memory across ticks, a part per stage: the stabilisation window's
    recommendations and the last blind tick (``stabilise``), the headroom and the rate
    margin (``headroom``), the slice's (``slices``) and the last good slice and backed-off
    sizes (``rollback``)."""

    recommendations: Recommendations = ()
    headroom: float = BASE_HEADROOM
    slices: SliceMemory = field(default_factory=SliceMemory)
    rollback: RollbackMemory = field(default_factory=RollbackMemory)
    rate_margin: float = 0.0  # extra capacity, a share of the rate (``next_rate_margin``)
    blind_at_s: float | None = None
    """The last tick whose data was missing or partial (or that could not read the cluster):
    no scale-down before a whole window after it (``stabilise.apply_fresh_window``)."""


@dataclass(frozen=True, slots=True)
class WorkloadInput:
    """Everything the planner knows about one opted-in Deployment this tick."""

    spec: SloSpec
    state: DeploymentState
    metrics: WorkloadMetrics
    rate_forecast_rps: float | None  # expected rate over the lead time
    capacity: CapacityModel
    memory: PlannerMemory
    budget_remaining: float = 1.0
    recent_burn_rate: float | None = None  # over the headroom's ``pacing_lookback_s``
    rate_upper_rps: float | None = None  # upper band of the rate over the lead time
    resume_rate_rps: float | None = None  # upper band over the resume horizon
    idle_since_s: float | None = None  # GPU utilisation under IDLE_UTIL since (None: busy)
    rate_profile_rps: tuple[float, ...] = ()  # equally likely quantiles of the step rate
    warnings: tuple[Condition, ...] = ()  # spec taken in part, SLI a bound: on every decision

    @property
    def key(self) -> str:
        return self.state.ref.key

    @property
    def current(self) -> Allocation:
        return Allocation(self.state.replicas, self.state.slice_pct)


@dataclass(frozen=True, slots=True)
class JobInput:
    """Everything the planner knows about one Job this tick.

    ``preempted_s`` are the times sloscale preempted it within the last day (the hysteresis
    reads them); ``idle_since_s`` is when its GPU utilisation last went under ``IDLE_UTIL``
    (``None``: busy, or not measured).
    """

    state: JobState
    spec: JobSpec
    last_preempted_s: float | None = None
    preempted_s: tuple[float, ...] = ()
    idle_since_s: float | None = None
    warnings: tuple[Condition, ...] = ()  # what its spec took only in part: on every action

    @property
    def key(self) -> str:
        return self.state.ref.key

    @property
    def gang(self) -> list[tuple[int, int]]:
        """The (share %, MiB) of each pod: placed all together or not at all."""
        return [(self.state.share_pct_per_pod, self.state.memory_mib_per_pod)] * self.state.pods

    def recent_preemptions(self, now_s: float, window_s: float = DAY_S) -> int:
        times = set(self.preempted_s)
        if self.last_preempted_s is not None:
            times.add(self.last_preempted_s)
        return sum(1 for t in times if now_s - t < window_s)


def spec_warnings(warnings: Sequence[SpecError]) -> tuple[Condition, ...]:
    """The conditions that carry a spec's warnings (a capped priority) onto every decision
    and action of its workload: ``SpecValid`` true, reason ``PriorityCapped``."""
    return tuple(
        Condition(ConditionType.SPEC_VALID, True, Reason.PRIORITY_CAPPED, f"{w.key}: {w.message}")
        for w in warnings
    )


def metrics_warnings(metrics: WorkloadMetrics) -> tuple[Condition, ...]:
    """The conditions that carry what the metrics cannot tell onto every decision of the
    workload: ``SliResolved`` false, reason ``TargetUnresolved``, when the latency histogram's
    buckets cannot resolve the target (the SLI is then a lower bound)."""
    if metrics.unresolved_target is None:
        return ()
    message = metrics.unresolved_target.describe()
    return (Condition(ConditionType.SLI_RESOLVED, False, Reason.TARGET_UNRESOLVED, message),)
