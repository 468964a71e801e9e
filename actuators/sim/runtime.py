"""The simulated cluster's mutable runtime state: pods, Deployments and Jobs as they run.

Internal to ``actuators.sim``: ``SimulatedCluster`` owns these objects and is the only code
that mutates them. They hold both what Kubernetes would know (spec, pods, placement) and the
simulator's private bookkeeping (exporter counters, ground-truth accumulators).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from actuators.sim.batching import BatchReplica
from actuators.sim.exporter import WorkloadExporter, latency_bounds_s
from actuators.sim.model import FloatArray
from actuators.sim.queueing import ArrivalStream
from actuators.sim.report import AppliedAction, MinuteRow
from actuators.sim.world import SimDeployment, SimJob
from controller.domain import PRIORITY_NAMES, JobPhase
from controller.spec import ANNOTATION_PREFIX

EPS_S = 1e-9


class Pod:
    """One pod holding (or waiting for) one slice."""

    __slots__ = (
        "card",
        "cold_start_s",
        "created_s",
        "deletion_cost",
        "memory_mib",
        "name",
        "never_ready",
        "ready_at_s",
        "residual_s",
        "seq",
        "share_pct",
        "template",
    )

    def __init__(
        self,
        name: str,
        template: tuple[int, int],
        seq: int,
        cold_start_s: float,
        *,
        never_ready: bool = False,
        created_s: float = 0.0,
    ) -> None:
        self.name = name
        self.created_s = created_s
        self.template = template
        self.share_pct, self.memory_mib = template
        self.seq = seq
        self.cold_start_s = cold_start_s
        self.never_ready = never_ready
        self.card: int | None = None
        self.ready_at_s = math.inf
        self.residual_s = 0.0  # unfinished work queued on this replica
        self.deletion_cost = 0  # controller.kubernetes.io/pod-deletion-cost

    @property
    def placed(self) -> bool:
        return self.card is not None

    def ready(self, t_s: float) -> bool:
        return self.card is not None and self.ready_at_s <= t_s + EPS_S

    def removal_rank(self, t_s: float) -> tuple[bool, bool, int, int]:
        """Sort key: unplaced first, then not ready, then the lowest deletion cost, then the
        newest (the ReplicaSet controller's order, node spreading aside)."""
        return (self.placed, self.ready(t_s), self.deletion_cost, -self.seq)


def priority_of(annotations: Mapping[str, str], default: int) -> int:
    raw = annotations.get(ANNOTATION_PREFIX + "priority")
    if raw is None:
        return default
    if raw in PRIORITY_NAMES:
        return PRIORITY_NAMES[raw]
    try:
        return int(raw)
    except ValueError:
        return default


def float_annotation(annotations: Mapping[str, str], key: str) -> float | None:
    raw = annotations.get(ANNOTATION_PREFIX + key)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class DeploymentRun:
    """A Deployment's spec, pods, exporter counters and ground-truth accumulators."""

    def __init__(self, spec: SimDeployment, seed: int) -> None:
        self.spec = spec
        self.key = spec.ref.key
        self.model = spec.model
        self.replicas = spec.replicas
        self.slice_pct = spec.slice_pct
        self.memory_mib = spec.template_memory_mib
        self.pods: list[Pod] = []
        self.surge: bool | None = None  # rollout mode, fixed when a rollout starts
        self.pod_counter = 0
        self.stream = ArrivalStream(spec.load, spec.model, seed=seed, key=self.key)
        self.batches: dict[str, BatchReplica] = {}
        """A continuously batching LLM's replicas by pod name, removed ones while they drain."""
        self.arrived = 0  # requests dispatched so far (their ids in the batching replicas)
        self.priority = priority_of(spec.annotations, PRIORITY_NAMES["normal"])
        self.retrain_watermark: str | None = None  # the sloscale.io/retrain-watermark annotation
        target_ms = float_annotation(spec.annotations, "latency-target-ms")
        self.target_ms = target_ms
        self.target_s = math.inf if target_ms is None else target_ms / 1000.0
        # a bucket at its own target, as a well-configured service has (exporter)
        self.exporter = WorkloadExporter(
            spec.ref.namespace, spec.ref.name, latency_bounds_s([self.target_s])
        )
        metric = spec.annotations.get("sloscale.io/latency-metric", "e2e").strip()
        self.latency_metric = metric if spec.model.tokens is not None else "e2e"
        """What the ground truth judges: e2e, or an LLM's ttft or tpot (its annotation)."""
        if self.latency_metric != "e2e":
            self.exporter.signal_metric = self.latency_metric  # written under vLLM's name
        quantile = float_annotation(spec.annotations, "latency-quantile")
        self.quantile = quantile if quantile is not None and 0 < quantile < 1 else 0.99
        # ground truth
        self.requests = 0
        self.good = 0
        self.failed = 0
        self.timed_out = 0
        self.allocated_share_s = 0.0
        self.used_share_s = 0.0
        self.actions: list[AppliedAction] = []
        self.timeline: list[MinuteRow] = []
        self.minute_start_s = 0.0
        self.minute_latencies: list[FloatArray] = []
        self.minute_ready_s = 0.0
        self.minute_alloc_pct_s = 0.0

    @property
    def template(self) -> tuple[int, int]:
        return (self.slice_pct, self.memory_mib)

    def new_pod(self, created_s: float = 0.0) -> Pod:
        self.pod_counter += 1
        name = f"{self.spec.ref.name}-s{self.slice_pct}-{self.pod_counter}"
        return Pod(
            name,
            self.template,
            self.pod_counter,
            self.model.cold_start_s,
            never_ready=self.memory_mib < self.model.memory_mib,
            created_s=created_s,
        )

    def ready_pods(self, t_s: float) -> list[Pod]:
        return [p for p in self.pods if p.ready(t_s)]


class JobRun:
    """A Job's gang, progress in card-seconds, checkpoints and ground truth."""

    def __init__(self, spec: SimJob) -> None:
        self.spec = spec
        self.key = spec.ref.key
        self.priority = priority_of(spec.annotations, PRIORITY_NAMES["low"])
        self.submitted = False
        self.suspended = False
        self.finished_s: float | None = None
        self.pods: list[Pod] = []
        self.placed_s: float | None = None
        self.last_started_s: float | None = None
        self.attempt = 0
        self.progress_s = 0.0
        self.checkpoint_s = 0.0
        self.lost_s = 0.0
        self.allocated_s = 0.0
        self.preemptions = 0
        self.resumes = 0
        self.rate = spec.pods * spec.share_pct_per_pod / 100.0  # card-seconds per second

    @property
    def done(self) -> bool:
        return self.finished_s is not None

    @property
    def phase(self) -> JobPhase:
        if self.done:
            return JobPhase.SUCCEEDED
        if self.suspended:
            return JobPhase.SUSPENDED
        if self.placed_s is not None:
            return JobPhase.RUNNING
        return JobPhase.PENDING

    def create_pods(self, first_seq: int) -> None:
        self.attempt += 1
        template = (self.spec.share_pct_per_pod, self.spec.memory_mib_per_pod)
        self.pods = [
            Pod(
                f"{self.spec.ref.name}-{self.attempt}-{i}",
                template,
                first_seq + i,
                self.spec.cold_start_s,
            )
            for i in range(self.spec.pods)
        ]

    def productive_since_s(self) -> float | None:
        return None if self.placed_s is None else self.placed_s + self.spec.cold_start_s

    def finish_time_s(self, t_s: float) -> float | None:
        since = self.productive_since_s()
        if since is None or self.done:
            return None
        return max(t_s, since) + max(0.0, self.spec.work_gpu_s - self.progress_s) / self.rate
