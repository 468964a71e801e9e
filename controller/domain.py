"""Value types shared by every layer of sloscale.

Purely computational, no side effects: these are frozen dataclasses and string enums that the
planner, the loop and the adapters exchange. Nothing here talks to a cluster, a metrics
backend or a clock. Units are in the names (``_s`` seconds, ``_ms`` milliseconds, ``_pct``
percent of one GPU card, ``_mib`` mebibytes, ``_rps`` requests per second).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

# --------------------------------------------------------------------------------------------
# Identity
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class WorkloadRef:
    """A Kubernetes object sloscale looks after (a Deployment, a Job, ...)."""

    namespace: str
    name: str
    kind: str = "Deployment"

    @property
    def key(self) -> str:
        """``namespace/name``: the identity used in metrics, the API and the decision log."""
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return self.key


# --------------------------------------------------------------------------------------------
# SLO specs (parsed from ``sloscale.io/*`` annotations by ``controller.spec``)
# --------------------------------------------------------------------------------------------

PRIORITY_NAMES: Mapping[str, int] = {"critical": 1000, "high": 100, "normal": 0, "low": -100}
"""Named priorities and their integer values; an annotation may also give an integer."""


class SliceDialect(StrEnum):
    """How a GPU slice is written into a pod template (ARCHITECTURE §4)."""

    HAMI = "hami"
    VOLCANO = "volcano"
    KAI = "kai"
    MIG = "mig"


class MetricsProfile(StrEnum):
    """Which metric names a workload exports (ARCHITECTURE §3)."""

    HTTP = "http"
    VLLM = "vllm"
    TRITON = "triton"
    TGI = "tgi"
    SGLANG = "sglang"
    CUSTOM = "custom"


class Mode(StrEnum):
    """What sloscale does with a workload (``sloscale.io/mode``), like the VPA's
    ``updateMode``: ``auto`` decides and acts; ``recommend`` decides and explains (decisions,
    API, ``/metrics``) but changes nothing; ``off`` leaves it unmanaged (said so)."""

    OFF = "off"
    RECOMMEND = "recommend"
    AUTO = "auto"


class LatencyMetric(StrEnum):
    """Which latency the SLO's threshold and quantile apply to (``sloscale.io/latency-metric``).

    ``e2e``: the whole request; ``ttft``: time to first token (queueing plus prefill);
    ``tpot``: time per output token (the gap between streamed tokens). LLM serving teams set
    SLOs on the last two because end-to-end latency grows with the output's length.
    """

    E2E = "e2e"
    TTFT = "ttft"
    TPOT = "tpot"


@dataclass(frozen=True, slots=True)
class RetrainSpec:
    """The data-flywheel settings of one model (all from annotations)."""

    data_query: str
    threshold_samples: float
    job_template: str
    cooldown_s: float = 6 * 3600.0
    urgent_threshold_samples: float | None = None
    deadline_s: float | None = None


DEFAULT_SCALE_DOWN_STABILIZATION_S = 300.0
"""The HPA's scale-down stabilisation window, when ``scale-down-stabilization`` is not set."""


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """One direction of the HPA's ``behavior``, per tick (the HPA's 15 s ``periodSeconds``).

    The replicas may change by ``max_percent`` % of the current count or by ``max_pods``
    pods, whichever allows the larger change (the HPA's default ``selectPolicy: Max``);
    ``None``: no such policy. As in the HPA, setting either policy of a direction replaces
    that direction's default policies.
    """

    max_percent: float | None = None
    max_pods: int | None = None


@dataclass(frozen=True, slots=True)
class ScalingBehavior:
    """The HPA's ``behavior`` as annotations; the defaults are the HPA's (and sloscale's).

    ``scale_down_stabilization_s``: ``None`` is the default, 300 s and longer for an on/off
    service (``controller.policy.stabilise.scale_down_delay_s``); a value set is kept as is.
    """

    scale_down_stabilization_s: float | None = None
    scale_up: ScalingRules = ScalingRules(max_percent=100.0, max_pods=4)
    scale_down: ScalingRules = ScalingRules(max_percent=100.0)


@dataclass(frozen=True, slots=True)
class SloSpec:
    """What a Deployment asks of sloscale, after validation."""

    latency_target_ms: float
    latency_quantile: float = 0.99
    objective_pct: float = 99.0
    window_s: float = 28 * 86400.0
    priority: int = 0
    min_replicas: int = 1
    max_replicas: int = 16
    slice_min_pct: int = 10
    slice_max_pct: int = 100
    slice_step_pct: int = 10
    slice_dialect: SliceDialect | None = None
    metrics_profile: MetricsProfile = MetricsProfile.HTTP
    latency_query: str | None = None
    rate_query: str | None = None
    good_ratio_query: str | None = None
    retrain: RetrainSpec | None = None
    model: str | None = None
    """``model``: the served model this SLO covers on a server that serves several (Triton's
    ``model`` label, vLLM's and SGLang's ``model_name``); ``None``: the pod's only model."""
    reclaim_idle_after_s: float | None = None
    """``reclaim-idle-after``: GPU utilisation under 5 % this long shrinks the Deployment to
    its minimum (``min-replicas`` x ``slice-min``) until demand returns."""
    latency_metric: LatencyMetric = LatencyMetric.E2E
    """``latency-metric``: the latency the target and quantile apply to, read from the
    engine's own histogram of it (``ttft``, ``tpot``) or the request's (``e2e``)."""
    behavior: ScalingBehavior = ScalingBehavior()
    mode: Mode = Mode.AUTO
    """``mode``: ``auto`` acts, ``recommend`` only decides, ``off`` is not managed."""
    """``scale-down-stabilization``, ``scale-up-max-percent``, ``scale-up-max-pods``,
    ``scale-down-max-percent``, ``scale-down-max-pods``: the HPA's ``behavior``."""

    @property
    def objective_ratio(self) -> float:
        """The objective as a fraction (99 % -> 0.99)."""
        return self.objective_pct / 100.0

    def slice_options_pct(self) -> tuple[int, ...]:
        """Every slice the spec allows, smallest first."""
        return tuple(range(self.slice_min_pct, self.slice_max_pct + 1, self.slice_step_pct))


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a preemptible Job declares through its annotations."""

    priority: int = PRIORITY_NAMES["low"]
    preemptible: bool = False
    checkpoint_interval_s: float | None = None
    min_runtime_s: float = 600.0
    reclaim_idle_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class SpecError:
    """One bad annotation: which workload, which key, which value, and why."""

    workload: str
    key: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"{self.workload}: annotation {self.key}={self.value!r}: {self.message}"


# --------------------------------------------------------------------------------------------
# What the cluster looks like (``Cluster.snapshot()``)
# --------------------------------------------------------------------------------------------

SHARE_UNIT_PCT = 10
"""Cards are sliced in 10 % units."""


@dataclass(frozen=True, slots=True)
class Card:
    """One GPU card: ``capacity_pct`` is 100 for a whole card."""

    node: str
    index: int
    memory_mib: int
    capacity_pct: int = 100

    @property
    def card_id(self) -> str:
        return f"{self.node}/{self.index}"


@dataclass(frozen=True, slots=True)
class SliceAllocation:
    """A share of one card held by one pod (ready or not: a starting pod holds its slice)."""

    owner: str  # WorkloadRef.key of the Deployment or Job
    pod: str
    card_id: str
    share_pct: int
    memory_mib: int
    ready: bool = True


@dataclass(frozen=True, slots=True)
class Inventory:
    """The GPU pool: every card and every slice placed on it."""

    cards: tuple[Card, ...]
    allocations: tuple[SliceAllocation, ...] = ()

    def total_pct(self) -> int:
        return sum(c.capacity_pct for c in self.cards)

    def used_pct_by_card(self) -> dict[str, int]:
        used = {c.card_id: 0 for c in self.cards}
        for a in self.allocations:
            used[a.card_id] = used.get(a.card_id, 0) + a.share_pct
        return used

    def used_mib_by_card(self) -> dict[str, int]:
        used = {c.card_id: 0 for c in self.cards}
        for a in self.allocations:
            used[a.card_id] = used.get(a.card_id, 0) + a.memory_mib
        return used


class RolloutFailureReason(StrEnum):
    """Why the pods of a Deployment's current template do not become ready, as Kubernetes
    says it: a pod ``Pending`` with ``PodScheduled=False reason=Unschedulable``, a container
    waiting in ``CrashLoopBackOff`` or last terminated ``OOMKilled``, or the Deployment's
    ``Progressing=False reason=ProgressDeadlineExceeded``."""

    UNSCHEDULABLE = "Unschedulable"
    CRASH_LOOP = "CrashLoopBackOff"
    OOM_KILLED = "OOMKilled"
    PROGRESS_DEADLINE = "ProgressDeadlineExceeded"


@dataclass(frozen=True, slots=True)
class RolloutFailure:
    """An observed fact: the pods of the current template are failing, since ``since_s``
    (``None``: unknown), with ``detail`` naming the pod or condition that says so."""

    reason: RolloutFailureReason
    since_s: float | None = None
    detail: str = ""

    def describe(self) -> str:
        return f"{self.reason} ({self.detail})" if self.detail else str(self.reason)


@dataclass(frozen=True, slots=True)
class DeploymentState:
    """An opted-in inference Deployment as the cluster reports it."""

    ref: WorkloadRef
    annotations: Mapping[str, str]
    replicas: int  # spec.replicas
    ready_replicas: int
    slice_pct: int  # per replica, from the pod template
    memory_mib: int  # GPU memory per replica, from the pod template
    rollout_in_progress: bool = False
    retrain_watermark: str | None = None  # ``sloscale.io/retrain-watermark``, kept out of specs
    rollout_failure: RolloutFailure | None = None  # the current template's pods are failing

    @property
    def settled(self) -> bool:
        """Every pod ready at the current template: the metrics describe one allocation."""
        return not self.rollout_in_progress and self.ready_replicas >= self.replicas


class JobPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class JobState:
    """A low-priority Job (training, batch, retraining) as the cluster reports it."""

    ref: WorkloadRef
    annotations: Mapping[str, str]
    pods: int  # gang size: the Job's pods are preempted and resumed together
    share_pct_per_pod: int
    memory_mib_per_pod: int
    phase: JobPhase
    started_at_s: float | None = None  # last start or resume
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobTemplate:
    """A retraining Job template as the cluster holds it (``cronjob/NAME``, ``configmap/NAME``).

    ``error`` says why the reference cannot be used (missing, malformed); the sizes are what
    one Job created from it asks for.
    """

    pods: int = 1
    share_pct_per_pod: int = 100
    memory_mib_per_pod: int = 0
    error: str | None = None

    @property
    def share_pct(self) -> int:
        return self.pods * self.share_pct_per_pod


@dataclass(frozen=True, slots=True)
class OtherAutoscaler:
    """Another autoscaler that scales a Deployment: a ``HorizontalPodAutoscaler``, a KEDA
    ``ScaledObject`` (which drives an HPA of its own), or a Knative autoscaling class
    annotation. Two controllers writing one replica count fight: each undoes the other."""

    kind: str  # HorizontalPodAutoscaler, ScaledObject, or the annotation's key
    name: str  # namespace/name of the object; for an annotation, where it is and its value
    target: WorkloadRef

    def describe(self) -> str:
        """``HorizontalPodAutoscaler team-a/web``: the object to remove or point elsewhere."""
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Everything ``discover`` returns for one tick."""

    time_s: float
    deployments: tuple[DeploymentState, ...]
    jobs: tuple[JobState, ...]
    inventory: Inventory
    # retraining templates by ``namespace/kind/name``; ``None``: this adapter does not resolve
    # them (sizes unknown until a Job exists), a mapping: every template there is
    templates: Mapping[str, JobTemplate] | None = None
    autoscalers: tuple[OtherAutoscaler, ...] = ()
    """Every other autoscaler the adapter knows of, whatever it targets (the core matches
    them to the Deployments it manages)."""
    autoscaler_errors: tuple[str, ...] = ()
    """Why ``autoscalers`` may be incomplete: a list or watch of them failing (the adapter then
    keeps what it last knew, and the tick reports this) or never having succeeded."""


# --------------------------------------------------------------------------------------------
# What the metrics say (``MetricsSource.observe()``)
# --------------------------------------------------------------------------------------------


def available(value: float | None) -> bool:
    """A metric is usable only when present and finite: missing or NaN is never zero."""
    return value is not None and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class UnresolvedTarget:
    """A latency target the histogram's buckets cannot resolve: it lies below the first finite
    bucket (``below_s`` 0), above the last (``above_s`` ``None``), or between two bounds more
    than ``UNRESOLVED_RATIO`` apart. The SLI is then read at ``below_s``, a lower bound of the
    share of requests under the target (``controller.buckets``)."""

    target_s: float
    below_s: float
    above_s: float | None

    def describe(self) -> str:
        target = f"latency target {self.target_s * 1000:g} ms"
        if self.above_s is None:
            where = f"lies above the largest finite bucket ({self.below_s:g} s)"
        elif self.below_s <= 0:
            where = f"lies below the first finite bucket ({self.above_s:g} s)"
        else:
            where = f"lies between buckets {self.below_s:g} s and {self.above_s:g} s"
        bound = (
            "no request counts as good"
            if self.below_s <= 0
            else f"only requests under {self.below_s:g} s count as good"
        )
        return (
            f"{target} {where}, which the histogram cannot resolve: the SLI is a lower bound "
            f"({bound}); put a bucket at the target or the target on a bucket"
        )


_SIGNAL_FIELDS = (
    "request_rate_rps",
    "latency_ms",
    "good_ratio",
    "gpu_util",
    "gpu_busy",
    "gpu_memory_mib",
    "data_samples",
)


@dataclass(frozen=True, slots=True)
class WorkloadMetrics:
    """One workload's signals over the last ``window_s``; ``None`` means unavailable."""

    request_rate_rps: float | None = None
    latency_ms: float | None = None  # at the spec's latency quantile
    good_ratio: float | None = None  # share of requests under the latency target
    gpu_util: float | None = None  # used share / allocated share, 0..1 (SM activity)
    gpu_busy: float | None = None  # share of time a kernel runs on the pod's slice, 0..1
    gpu_memory_mib: float | None = None  # per replica
    data_samples: float | None = None  # cumulative sample count, for retraining
    in_flight: float | None = None  # requests in the service now, queued or in service
    window_s: float = 60.0
    rate_partial: bool = False
    """The rate missed part of its window or of the ready pods, and was sized on the larger
    of it and the last full reading (``actuators.prometheus.coverage``): enough to scale up
    on, never to scale down on."""
    unresolved_target: UnresolvedTarget | None = None
    """The latency target is not resolvable by the histogram's buckets: ``good_ratio`` is the
    conservative (lower) bound, and every decision says so (``SliResolved`` false)."""

    def __post_init__(self) -> None:
        # Every adapter's readings pass here: NaN or infinity is unavailable (None), never a
        # number the planner could read as load or as zero.
        for name in (*_SIGNAL_FIELDS, "in_flight"):
            if not available(getattr(self, name)):
                object.__setattr__(self, name, None)

    @property
    def missing(self) -> tuple[str, ...]:
        """The signals that are unavailable, by field name."""
        return tuple(name for name in _SIGNAL_FIELDS if getattr(self, name) is None)

    def core_available(self) -> bool:
        """Rate and latency are what sizing needs; without them the planner holds.

        A window with no request at all has no latency to read, and needs none: its measured
        zero rate is the reading (a counter that did not move), not a missing series.
        """
        if not available(self.request_rate_rps):
            return False
        return available(self.latency_ms) or self.request_rate_rps == 0.0


@dataclass(frozen=True, slots=True)
class Observation:
    """All workloads' metrics for one tick, plus what went wrong while reading them."""

    time_s: float
    by_workload: Mapping[str, WorkloadMetrics]
    errors: tuple[str, ...] = ()

    def get(self, key: str) -> WorkloadMetrics:
        return self.by_workload.get(key, WorkloadMetrics())


# --------------------------------------------------------------------------------------------
# Decisions and actions (``plan`` output, ``Cluster.apply()`` input)
# --------------------------------------------------------------------------------------------


class Reason(StrEnum):
    """Why a decision came out as it did: every decision has one primary reason (the last
    policy step that changed it), and each step's own reason in its ``Condition``."""

    SCALE_UP = "ScaleUp"
    SCALE_DOWN = "ScaleDown"
    RESIZE = "Resize"
    WITHIN_TOLERANCE = "WithinTolerance"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    SCALE_UP_LIMITED = "ScaleUpLimited"
    SCALE_DOWN_LIMITED = "ScaleDownLimited"
    AT_MAX = "AtMax"
    AT_MIN = "AtMin"
    CAPACITY_LIMITED = "CapacityLimited"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    INVALID_SPEC = "InvalidSpec"
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    PREEMPTED = "Preempted"
    RESUMED = "Resumed"
    IDLE_RECLAIMED = "IdleReclaimed"
    RETRAIN_TRIGGERED = "RetrainTriggered"
    RETRAIN_STARTED = "RetrainStarted"
    RETRAIN_SUCCEEDED = "RetrainSucceeded"
    RETRAIN_FAILED = "RetrainFailed"
    RETRAIN_BLOCKED = "RetrainBlocked"
    LEARNING = "Learning"
    APPLY_FAILED = "ApplyFailed"
    PRIORITY_CAPPED = "PriorityCapped"
    RESIZE_FAILED = "ResizeFailed"
    RESIZE_BACKOFF = "ResizeBackoff"
    TARGET_UNRESOLVED = "TargetUnresolved"
    NOT_MANAGED = "NotManaged"
    RECOMMEND_ONLY = "RecommendOnly"
    CONFLICTING_AUTOSCALER = "ConflictingAutoscaler"


class ConditionType(StrEnum):
    """Which policy step a ``Condition`` reports, in the spirit of the HPA's conditions.

    ``ScalingActive`` (size: a recommendation from metrics, or why there is none),
    ``AbleToScale`` (stabilise: the dead band and the scale-down delay; false with
    ``ResizeFailed``: a resize whose pods did not become ready, rolled back), ``ScalingLimited``
    (the step limit, the bounds, and with ``ResizeBackoff`` a slice size not chosen again
    before its backoff expires), ``CapacityAvailable`` (fit: the pool holds the
    allocation), ``IdleReclaim``, and for jobs ``Preemption`` and ``Resume``; the loop adds
    ``SpecValid`` (false: an invalid spec; true with ``PriorityCapped``: a spec taken only in
    part), ``SliResolved`` (false with ``TargetUnresolved``: the latency histogram's buckets
    cannot resolve the target, so the SLI is a lower bound) and ``Applied``.
    """

    SCALING_ACTIVE = "ScalingActive"
    ABLE_TO_SCALE = "AbleToScale"
    SCALING_LIMITED = "ScalingLimited"
    CAPACITY_AVAILABLE = "CapacityAvailable"
    IDLE_RECLAIM = "IdleReclaim"
    PREEMPTION = "Preemption"
    RESUME = "Resume"
    RETRAINING = "Retraining"
    SPEC_VALID = "SpecValid"
    SLI_RESOLVED = "SliResolved"
    APPLIED = "Applied"


@dataclass(frozen=True, slots=True)
class Condition:
    """What one policy step found: (type, status, reason, message), as Kubernetes conditions.

    ``status`` is whether the condition holds: ``ScalingLimited`` true means a limit bit,
    ``CapacityAvailable`` false that the pool did not hold what was wanted.
    """

    type: ConditionType
    status: bool
    reason: Reason
    message: str

    def as_dict(self) -> dict[str, str]:
        """The Kubernetes shape: ``status`` is ``"True"`` or ``"False"``."""
        return {
            "type": str(self.type),
            "status": "True" if self.status else "False",
            "reason": str(self.reason),
            "message": self.message,
        }


def summary(conditions: Sequence[Condition]) -> str:
    """One line from every condition's message, in the order the steps added them."""
    return "; ".join(c.message for c in conditions if c.message)


@dataclass(frozen=True, slots=True)
class Allocation:
    """What a Deployment gets: replicas of one slice size."""

    replicas: int
    slice_pct: int

    @property
    def share_pct(self) -> int:
        return self.replicas * self.slice_pct

    def describe(self) -> str:
        """For people, e.g. ``2 replicas x 30 %``; purely computational. (``str()`` stays the
        dataclass' repr, which the benchmarks' decision hash reads.)"""
        return f"{self.replicas} replica{'' if self.replicas == 1 else 's'} x {self.slice_pct} %"


@dataclass(frozen=True, slots=True)
class ScaleAction:
    """Set a Deployment's replicas and/or slice (a slice change rolls the Deployment)."""

    ref: WorkloadRef
    target: Allocation
    memory_mib: int
    reason: Reason
    remove_pods: tuple[str, ...] = ()
    """On a scale-down, the pods to remove, in order: the planner drains the emptiest cards so
    that whole cards come free for gangs (Kubernetes: ``controller.kubernetes.io/
    pod-deletion-cost``, which the ReplicaSet controller honours among ready pods)."""
    conditions: tuple[Condition, ...] = ()
    """The decision's conditions, for the Event and the last-decision annotation."""


@dataclass(frozen=True, slots=True)
class JobAction:
    """Suspend (preempt) or resume a Job as a whole gang."""

    ref: WorkloadRef
    suspend: bool
    reason: Reason
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class RetrainAction:
    """Record a model's retraining state and, with ``job_name``, start its retraining Job.

    ``watermark`` is the new value of the Deployment's ``sloscale.io/retrain-watermark``
    annotation. It is written first; only once it is written is Job ``job_name`` created from
    ``template`` (``cronjob/NAME``) with the label ``sloscale.io/retrain-of=<deployment>``.
    Creating a Job whose name exists already is success: the step is idempotent.
    """

    ref: WorkloadRef  # the model's Deployment
    watermark: str
    reason: Reason
    message: str = ""
    job_name: str | None = None
    template: str | None = None

    @property
    def target(self) -> str:
        """The ``ApplyResult.target`` of this action (distinct from the Deployment's scaling)."""
        return f"{self.ref.key}#retrain"


@dataclass(frozen=True, slots=True)
class Notice:
    """A warning for the operator to record on a workload (a Kubernetes ``Warning`` Event):
    a hold only they can lift, said once when it starts or its cause changes, not each tick."""

    ref: WorkloadRef
    reason: Reason
    message: str

    @property
    def target(self) -> str:
        """The ``ApplyResult.target`` of this notice (distinct from the workload's scaling)."""
        return f"{self.ref.key}#notice"


@dataclass(frozen=True, slots=True)
class Plan:
    """The actions of one tick; empty when nothing should change."""

    scale: tuple[ScaleAction, ...] = ()
    jobs: tuple[JobAction, ...] = ()
    retrain: tuple[RetrainAction, ...] = ()
    notices: tuple[Notice, ...] = ()

    def is_empty(self) -> bool:
        return not self.scale and not self.jobs and not self.retrain and not self.notices


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What happened to one action: ``ok`` or an error message the operator can act on."""

    target: str
    ok: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """One entry of the decision log: what sloscale decided for one object, and why.

    ``reason`` is the primary reason, ``conditions`` what every policy step found (none
    overwrites another) and ``message`` their summary.
    """

    time_s: float
    target: str
    reason: Reason
    message: str
    current: Allocation | None = None
    desired: Allocation | None = None
    applied: bool = False
    conditions: tuple[Condition, ...] = ()

    @property
    def changes(self) -> bool:
        return self.desired is not None and self.desired != self.current

    def log_line(self) -> str:
        """One line for the log: target, current -> desired, reason, message, e.g.
        ``demo/chat: 2 replicas x 30 % -> 1 replica x 30 %, ScaleDown: sized for 13.4 rps``.
        Purely computational."""
        current = self.current.describe() if self.current is not None else "nothing"
        desired = self.desired
        if desired is not None and desired != self.current:
            move = f"{current} -> {desired.describe()}"
        else:
            move = f"keeps {current}"
        return f"{self.target}: {move}, {self.reason.value}: {self.message}"
