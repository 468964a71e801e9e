"""What the control loop remembers from one tick to the next: one typed record per object.

A ``WorkloadRecord`` per Deployment and a ``JobRecord`` per Job, kept in a ``StateStore``
keyed like the snapshot (``namespace/name``). Only what must outlive a tick lives here (learnt
capacity, planner memory, error budget, the last forecast, preemption history, idle
trackers, parsed annotations); what one tick's phases hand each other are values
(``controller.loop``), never records.

A record lives as long as its object is in the cluster snapshot: ``forget_missing`` drops
the records of Deployments and Jobs that vanished, so a Deployment or Job deleted and created
again under the same name starts afresh, and the store's size follows the cluster rather than
its history. A finished Job is still in the snapshot, and keeps its record.

Pure state, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from controller.capacity import CapacityModel
from controller.domain import Decision, JobSpec, SloSpec, SpecError, WorkloadMetrics
from controller.policy.inputs import PlannerMemory
from controller.prediction import RateForecast
from controller.slo import ErrorBudget

JOB_HISTORY_S = 86400.0
"""How long a job's preemptions by sloscale are remembered (the resume hysteresis reads them)."""


@dataclass(frozen=True, slots=True)
class ParsedSlo:
    """A Deployment's annotations and what they parse to: cached until they change."""

    annotations: Mapping[str, str]
    spec: SloSpec | None
    errors: tuple[SpecError, ...]
    warnings: tuple[SpecError, ...] = ()  # taken only in part (a capped priority)
    opted_in: bool = True  # false: only its unknown keys were read (``parse_slo_spec``)


@dataclass(frozen=True, slots=True)
class ParsedJob:
    """A Job's annotations and what they parse to (``None``: invalid): cached until they change."""

    annotations: Mapping[str, str]
    spec: JobSpec | None
    warnings: tuple[SpecError, ...] = ()  # taken only in part (a capped priority)


@dataclass(slots=True)
class WorkloadRecord:
    """One Deployment's state carried across ticks."""

    parsed: ParsedSlo | None = None
    capacity: CapacityModel = field(default_factory=CapacityModel)
    memory: PlannerMemory = field(default_factory=PlannerMemory)
    budget: ErrorBudget | None = None  # a new one whenever the annotations change
    forecast: RateForecast | None = None  # the last lead-time forecast
    rate_profile_rps: tuple[float, ...] = ()  # quantiles of the step rate (forecast phase)
    last_decision: Decision | None = None
    last_metrics: WorkloadMetrics = field(default_factory=WorkloadMetrics)
    idle_since_s: float | None = None  # GPU utilisation under IDLE_UTIL since
    slice_pct: int | None = None  # the slice last seen, and since when every pod has it
    slice_settled_s: float = -math.inf

    @property
    def spec(self) -> SloSpec | None:
        return self.parsed.spec if self.parsed is not None else None

    @property
    def errors(self) -> tuple[SpecError, ...]:
        return self.parsed.errors if self.parsed is not None else ()

    @property
    def warnings(self) -> tuple[SpecError, ...]:
        return self.parsed.warnings if self.parsed is not None else ()


@dataclass(slots=True)
class JobRecord:
    """One Job's state carried across ticks: what sloscale knows and did to it."""

    parsed: ParsedJob | None = None
    last_preempted_s: float | None = None
    preemptions_s: tuple[float, ...] = ()  # sloscale's, oldest first (see ``preempted``)
    last_decision: Decision | None = None  # the last one that preempted, resumed or named it
    lost_gpu_h: float = 0.0  # estimated work lost to preemptions, since this controller started
    idle_since_s: float | None = None  # while running and idle-reclaimable: idle since

    @property
    def spec(self) -> JobSpec | None:
        return self.parsed.spec if self.parsed is not None else None

    @property
    def warnings(self) -> tuple[SpecError, ...]:
        return self.parsed.warnings if self.parsed is not None else ()

    def preempted(self, now_s: float) -> None:
        """sloscale suspended the job at ``now_s``; preemptions older than a day drop out."""
        self.last_preempted_s = now_s
        times = (*self.preemptions_s, now_s)
        first = 0
        while first < len(times) and now_s - times[first] >= JOB_HISTORY_S:
            first += 1
        self.preemptions_s = times[first:]

    def preemptions_within(
        self, now_s: float, window_s: float = JOB_HISTORY_S
    ) -> tuple[float, ...]:
        """The preemptions less than ``window_s`` before ``now_s``."""
        return tuple(t for t in self.preemptions_s if now_s - t < window_s)


class StateStore:
    """Every workload's and job's record, by key; created on first use."""

    def __init__(self) -> None:
        self._workloads: dict[str, WorkloadRecord] = {}
        self._jobs: dict[str, JobRecord] = {}

    @property
    def workloads(self) -> Mapping[str, WorkloadRecord]:
        """Read-only view, in the order the workloads were first seen."""
        return MappingProxyType(self._workloads)

    @property
    def jobs(self) -> Mapping[str, JobRecord]:
        """Read-only view, in the order the jobs were first seen."""
        return MappingProxyType(self._jobs)

    def workload(self, key: str) -> WorkloadRecord:
        """The record of workload ``key``, a fresh one the first time."""
        record = self._workloads.get(key)
        if record is None:
            record = self._workloads[key] = WorkloadRecord()
        return record

    def mark_blind(self, now_s: float) -> None:
        """A tick that cannot read the cluster is blind for every workload: none is scaled
        down before a whole window of full data after it (``apply_fresh_window``)."""
        for record in self._workloads.values():
            record.memory = replace(record.memory, blind_at_s=now_s)

    def job(self, key: str) -> JobRecord:
        """The record of job ``key``, a fresh one the first time."""
        record = self._jobs.get(key)
        if record is None:
            record = self._jobs[key] = JobRecord()
        return record

    def find_workload(self, key: str) -> WorkloadRecord | None:
        return self._workloads.get(key)

    def find_job(self, key: str) -> JobRecord | None:
        return self._jobs.get(key)

    def forget_missing(self, workloads: Iterable[str], jobs: Iterable[str]) -> None:
        """Drop the records of workloads and jobs not in the snapshot just seen (its keys)."""
        seen_workloads, seen_jobs = set(workloads), set(jobs)
        for key in [k for k in self._workloads if k not in seen_workloads]:
            del self._workloads[key]
        for key in [k for k in self._jobs if k not in seen_jobs]:
            del self._jobs[key]


__all__ = [
    "JOB_HISTORY_S",
    "JobRecord",
    "ParsedJob",
    "ParsedSlo",
    "StateStore",
    "WorkloadRecord",
]
