"""Ground truth of a simulated run, for the benchmark and the demo's summary.

None of this is visible through the ``Cluster`` or ``MetricsSource`` ports: it is what the
simulator knows exactly (every request's latency, every second of every slice) and a real
cluster never could. The benchmark scores policies with it; the controller never reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MinuteRow:
    """One workload over one minute of simulated time."""

    start_s: float
    arrival_rate_rps: float  # the load pattern's mean rate over the minute (expected, not drawn)
    requests: int  # requests that arrived in the minute
    good: int  # of those, served within the workload's latency target
    latency_ms: float | None  # exact latency quantile at the workload's annotated quantile
    ready_replicas: float  # time-averaged over the minute
    slice_pct: int  # the pod template's slice at the minute's end
    allocated_share_pct: float  # time-averaged share held by all its pods, starting or ready


@dataclass(frozen=True, slots=True)
class AppliedAction:
    """A scale or resize that ``apply`` carried out."""

    time_s: float
    replicas_before: int
    replicas_after: int
    slice_before_pct: int
    slice_after_pct: int
    memory_before_mib: int
    memory_after_mib: int
    reason: str

    @property
    def is_scale(self) -> bool:
        return self.replicas_before != self.replicas_after

    @property
    def is_resize(self) -> bool:
        return (self.slice_before_pct, self.memory_before_mib) != (
            self.slice_after_pct,
            self.memory_after_mib,
        )


@dataclass(frozen=True)
class WorkloadReport:
    """Exact totals for one inference Deployment over the whole run."""

    key: str
    latency_target_ms: float | None
    latency_quantile: float
    requests: int
    good_requests: int  # latency <= latency_target_ms (all served ones when no target)
    failed_requests: int  # arrived while no replica was ready
    timed_out_requests: int  # would have waited longer than the client timeout
    allocated_gpu_h: float  # card-hours held by its pods, starting or ready
    used_gpu_h: float  # card-hours of busy time x min(slice, s_sat)
    scale_actions: int
    resize_actions: int
    actions: tuple[AppliedAction, ...]
    timeline: tuple[MinuteRow, ...]  # completed minutes only

    @property
    def attainment(self) -> float | None:
        """Request-weighted SLO attainment: good / all requests (``None`` with no requests)."""
        return self.good_requests / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class JobReport:
    """Exact totals for one Job."""

    key: str
    phase: str
    work_gpu_h: float
    delivered_gpu_h: float  # useful work kept (progress at the end of the run)
    lost_gpu_h: float  # work thrown away by preemptions (since the last checkpoint)
    allocated_gpu_h: float  # card-hours its pods held, cold starts included
    preemptions: int
    resumes: int
    finished_s: float | None


@dataclass(frozen=True, slots=True)
class PoolReport:
    """How the pool's card-hours were spent."""

    total_gpu_h: float
    inference_allocated_gpu_h: float
    job_allocated_gpu_h: float

    @property
    def free_for_jobs_gpu_h(self) -> float:
        """Card-hours not allocated to inference (what low-priority work could have had)."""
        return self.total_gpu_h - self.inference_allocated_gpu_h

    @property
    def idle_gpu_h(self) -> float:
        """Card-hours allocated to nothing."""
        return self.total_gpu_h - self.inference_allocated_gpu_h - self.job_allocated_gpu_h


@dataclass(frozen=True)
class SimReport:
    start_s: float
    end_s: float
    seed: int
    workloads: tuple[WorkloadReport, ...]
    jobs: tuple[JobReport, ...]
    pool: PoolReport

    def workload(self, key: str) -> WorkloadReport:
        for w in self.workloads:
            if w.key == key:
                return w
        raise KeyError(key)

    def job(self, key: str) -> JobReport:
        for j in self.jobs:
            if j.key == key:
                return j
        raise KeyError(key)

    @property
    def attainment(self) -> float | None:
        """Request-weighted SLO attainment over every workload."""
        requests = sum(w.requests for w in self.workloads)
        return sum(w.good_requests for w in self.workloads) / requests if requests else None
