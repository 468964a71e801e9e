"""The simulated world's configuration: nodes, Deployments, Jobs, seed.

Frozen values only; ``SimulatedCluster`` turns them into mutable runtime state. Whatever is
in ``ModelParams`` and ``LoadPattern`` stays hidden from the controller, which sees only what
``Cluster.snapshot()`` and the metrics report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from actuators.sim.load import LoadPattern
from actuators.sim.model import ModelParams
from controller.domain import SHARE_UNIT_PCT, WorkloadRef

DEFAULT_CARD_MEMORY_MIB = 81920  # an 80 GiB card


@dataclass(frozen=True, slots=True)
class SimNode:
    """A GPU node: ``cards`` identical cards of ``memory_mib_per_card``."""

    name: str
    cards: int
    memory_mib_per_card: int = DEFAULT_CARD_MEMORY_MIB


@dataclass(frozen=True)
class SimDeployment:
    """An inference Deployment: its annotations, its hidden model and the load it receives.

    ``memory_mib`` is the GPU memory written in the initial pod template (default: what the
    model needs). Only Deployments annotated ``sloscale.io/enabled: "true"`` appear in
    ``snapshot()``; the others still run and hold GPU slices.
    """

    ref: WorkloadRef
    annotations: Mapping[str, str]
    model: ModelParams
    load: LoadPattern
    replicas: int = 1
    slice_pct: int = 100
    memory_mib: int | None = None

    def __post_init__(self) -> None:
        _check_slice(self.slice_pct, f"{self.ref}: slice_pct")
        if self.replicas < 0:
            raise ValueError(f"{self.ref}: replicas must be >= 0")

    @property
    def template_memory_mib(self) -> int:
        return self.model.memory_mib if self.memory_mib is None else self.memory_mib


@dataclass(frozen=True)
class SimJob:
    """A gang of ``pods`` pods doing ``work_gpu_s`` card-seconds of work (training, batch).

    Progress is ``pods * share * dt`` once the pods are placed and past ``cold_start_s``;
    a checkpoint is written every ``checkpoint_interval_s`` of productive runtime (``None``:
    never, so a preemption loses everything since the last start). A ``queued`` job is
    submitted with ``spec.suspend: true`` (as a Kueue-style backlog is) and starts only when
    the controller resumes it; otherwise the scheduler places it as soon as it fits.
    """

    ref: WorkloadRef
    annotations: Mapping[str, str]
    pods: int
    share_pct_per_pod: int
    memory_mib_per_pod: int
    work_gpu_s: float
    checkpoint_interval_s: float | None = 1800.0
    submit_s: float = 0.0
    cold_start_s: float = 60.0
    queued: bool = False  # submitted suspended: it waits for the controller to admit (resume) it
    labels: Mapping[str, str] = field(default_factory=dict)
    gpu_util: float = 0.95  # SM activity over its share while placed (a notebook left idle: ~0)

    def __post_init__(self) -> None:
        _check_slice(self.share_pct_per_pod, f"{self.ref}: share_pct_per_pod")
        if self.pods < 1:
            raise ValueError(f"{self.ref}: a job needs at least one pod")
        if self.work_gpu_s <= 0:
            raise ValueError(f"{self.ref}: work_gpu_s must be positive")


@dataclass(frozen=True)
class SimJobTemplate:
    """A CronJob whose ``jobTemplate`` retraining Jobs are created from (``cronjob/NAME``).

    A Job created from it is a ``SimJob`` with these annotations and sizes, submitted at once.
    """

    ref: WorkloadRef  # kind "CronJob"
    annotations: Mapping[str, str]
    pods: int
    share_pct_per_pod: int
    memory_mib_per_pod: int
    work_gpu_s: float
    checkpoint_interval_s: float | None = 600.0
    cold_start_s: float = 60.0

    @property
    def reference(self) -> str:
        """``namespace/cronjob/NAME``, as a ``retrain-job-template`` names it in its namespace."""
        return f"{self.ref.namespace}/cronjob/{self.ref.name}"

    def job(self, ref: WorkloadRef, labels: Mapping[str, str], submit_s: float) -> SimJob:
        return SimJob(
            ref=ref,
            annotations=dict(self.annotations),
            pods=self.pods,
            share_pct_per_pod=self.share_pct_per_pod,
            memory_mib_per_pod=self.memory_mib_per_pod,
            work_gpu_s=self.work_gpu_s,
            checkpoint_interval_s=self.checkpoint_interval_s,
            submit_s=submit_s,
            cold_start_s=self.cold_start_s,
            labels=dict(labels),
        )


@dataclass(frozen=True)
class SimWorld:
    """Everything that defines a simulation run; the same world and seed replay identically.

    ``warm_start``: the initial Deployment pods are placed and ready at ``start_s`` (a
    cluster that has been running), instead of cold-starting. ``scrape_interval_s`` is how
    often the simulated Prometheus scrapes the exporters; ``metrics_retention_s`` how long
    it keeps samples.
    """

    nodes: tuple[SimNode, ...]
    deployments: tuple[SimDeployment, ...] = ()
    jobs: tuple[SimJob, ...] = ()
    seed: int = 0
    start_s: float = 0.0
    client_timeout_s: float = 30.0
    scrape_interval_s: float = 15.0
    metrics_retention_s: float = 3600.0
    warm_start: bool = True
    templates: tuple[SimJobTemplate, ...] = ()  # retraining Job templates (CronJobs)

    def __post_init__(self) -> None:
        keys = [d.ref.key for d in self.deployments] + [j.ref.key for j in self.jobs]
        if len(set(keys)) != len(keys):
            raise ValueError("workload names must be unique (namespace/name)")
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError("node names must be unique")


def _check_slice(pct: int, what: str) -> None:
    if not (SHARE_UNIT_PCT <= pct <= 100 and pct % SHARE_UNIT_PCT == 0):
        raise ValueError(f"{what} must be a multiple of {SHARE_UNIT_PCT} in 10..100, got {pct}")
