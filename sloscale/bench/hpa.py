"""The Kubernetes HPA, faithfully: replica calculator plus the default behaviour.

Purely computational core, mirroring ``pkg/controller/podautoscaler``:

* ``replica_count`` is ``ReplicaCalculator`` (``replica_calculator.go``): the usage ratio of
  the pods with metrics; a dead band of ``tolerance`` (0.1); ``ceil(ratio x ready pods)``;
  pending pods ignored; for CPU-like resources, unready pods ignored (and counted as idle
  on a scale-up); **missing metrics argue against the move**: on a scale-down missing pods
  count as at 100 % of their request (plain metrics: at the target), on a scale-up as 0 %,
  and if filling them in flips the direction or lands within tolerance, hold.
* ``Behavior`` is ``normalizeDesiredReplicasWithBehaviors`` (``horizontal.go``) with the
  defaults: scale-up stabilisation 0 s, scale-down stabilisation 300 s (the largest
  recommendation of the window wins), scale-up policies 100 % and 4 pods per 15 s (the
  larger), scale-down 100 % per 15 s, then min/max replicas.

``HpaPolicy`` is the adapter: every sync period (15 s) it reads the workload's GPU
utilisation through the ``MetricsSource`` port (DCGM's busy fraction, averaged over the ready
pods: the only per-pod value a Prometheus adapter would give), lists pods through
``Cluster.snapshot()`` and writes replicas (never the slice) through ``Cluster.apply``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from controller.domain import (
    Allocation,
    ClusterSnapshot,
    Plan,
    Reason,
    ScaleAction,
    SloSpec,
    WorkloadMetrics,
    WorkloadRef,
    available,
)
from controller.policy.stabilise import highest_recent, lowest_recent, recent
from controller.ports import Cluster, MetricsSource, ObserveTarget

TOLERANCE = 0.1
SYNC_PERIOD_S = 15.0
SCALE_DOWN_STABILIZATION_S = 300.0


class PodPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"


@dataclass(frozen=True, slots=True)
class PodSample:
    """One pod as the HPA lists it: phase, readiness, request and metric (``None``: missing)."""

    name: str
    value: float | None
    request: float = 1.0
    ready: bool = True
    phase: PodPhase = PodPhase.RUNNING


@dataclass(frozen=True, slots=True)
class MetricTarget:
    """``utilization_pct`` of the request (CPU-like resource) or a plain average ``value``."""

    value: float
    resource: bool = False  # a resource utilisation target: unready pods are set aside


def _ratio(metrics: Mapping[str, float], requests: Mapping[str, float], t: MetricTarget) -> float:
    """``GetResourceUtilizationRatio`` (integer percent, as Go) or ``GetMetricUtilizationRatio``."""
    if t.resource:
        used = sum(v for k, v in metrics.items() if k in requests)
        requested = sum(requests[k] for k in metrics if k in requests)
        utilization = math.floor(used * 100 / requested) if requested > 0 else 0
        return utilization / t.value
    return (sum(metrics.values()) / len(metrics)) / t.value


def replica_count(
    current_replicas: int,
    pods: Sequence[PodSample],
    target: MetricTarget,
    tolerance: float = TOLERANCE,
) -> int | None:
    """The replica calculator's recommendation; ``None`` when no ready pod has a metric.

    Purely computational.
    """
    requests = {p.name: p.request for p in pods}
    ready_count = 0
    ignored: list[str] = []
    missing: list[str] = []
    metrics: dict[str, float] = {}
    for p in pods:
        if p.phase is PodPhase.PENDING:
            ignored.append(p.name)
            continue
        if p.value is None:
            missing.append(p.name)
            continue
        if target.resource and not p.ready:
            ignored.append(p.name)
            continue
        metrics[p.name] = p.value
        ready_count += 1
    if not metrics:
        return None
    ratio = _ratio(metrics, requests, target)
    rebalance_ignored = bool(ignored) and ratio > 1.0
    if not rebalance_ignored and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current_replicas
        return math.ceil(ratio * ready_count)
    for name in missing:
        if ratio < 1.0:  # scale-down: missing pods count as at their request / the target
            metrics[name] = requests[name] if target.resource else target.value
        elif ratio > 1.0 or not target.resource:  # scale-up: missing pods count as idle
            metrics[name] = 0.0
    if rebalance_ignored:
        for name in ignored:
            metrics[name] = 0.0
    new_ratio = _ratio(metrics, requests, target)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current_replicas
    new_replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (
        new_ratio > 1.0 and new_replicas < current_replicas
    ):
        return current_replicas
    return new_replicas


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """``Pods`` (add ``value`` pods) or ``Percent`` (add ``value`` %) per ``period_s``."""

    kind: str  # "Pods" or "Percent"
    value: int
    period_s: float


@dataclass(frozen=True, slots=True)
class Behavior:
    """The HPA's default ``behavior`` (autoscaling/v2)."""

    scale_up_stabilization_s: float = 0.0
    scale_down_stabilization_s: float = SCALE_DOWN_STABILIZATION_S
    scale_up: tuple[ScalingPolicy, ...] = (
        ScalingPolicy("Percent", 100, 15.0),
        ScalingPolicy("Pods", 4, 15.0),
    )
    scale_down: tuple[ScalingPolicy, ...] = (ScalingPolicy("Percent", 100, 15.0),)


@dataclass
class HpaState:
    """What the HPA controller remembers per target: recommendations and scale events."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    seen: bool = False  # the first reconcile records the current replicas as a recommendation
    up_events: list[tuple[float, int]] = field(default_factory=list)
    down_events: list[tuple[float, int]] = field(default_factory=list)


def _change_in_period(events: Sequence[tuple[float, int]], now_s: float, period_s: float) -> int:
    return sum(n for t, n in events if t > now_s - period_s)


def _scale_up_limit(current: int, state: HpaState, rules: Behavior, now_s: float) -> int:
    """``calculateScaleUpLimitWithScalingRules`` with ``selectPolicy: Max``."""
    result = -(2**31)
    for p in rules.scale_up:
        start = (
            current
            - _change_in_period(state.up_events, now_s, p.period_s)
            + _change_in_period(state.down_events, now_s, p.period_s)
        )
        proposed = start + p.value if p.kind == "Pods" else math.ceil(start * (1 + p.value / 100.0))
        result = max(result, proposed)
    return result


def _scale_down_limit(current: int, state: HpaState, rules: Behavior, now_s: float) -> int:
    """``calculateScaleDownLimitWithBehaviors`` with ``selectPolicy: Max``.

    The period started at the current count less what was added in it plus what was removed
    (kubernetes#109058); the limit is never above the current count, so a scale-down that
    earlier removals exhausted holds instead of turning into a scale-up.
    """
    result = 2**31
    for p in rules.scale_down:
        start = (
            current
            - _change_in_period(state.up_events, now_s, p.period_s)
            + _change_in_period(state.down_events, now_s, p.period_s)
        )
        proposed = start - p.value if p.kind == "Pods" else int(start * (1 - p.value / 100.0))
        result = min(result, proposed)
    return min(result, current)


def normalize(
    current: int,
    desired: int,
    state: HpaState,
    now_s: float,
    *,
    min_replicas: int,
    max_replicas: int,
    rules: Behavior = Behavior(),
) -> tuple[int, str]:
    """Stabilise, rate-limit and bound a recommendation; record it. Returns (replicas, reason).

    Mutates ``state`` (the recommendation history), as the controller's own maps do.
    """
    if not state.seen:  # recordInitialRecommendation: a new HPA starts from what runs
        state.seen = True
        state.recommendations.append((now_s, current))
    history = state.recommendations
    up_s, down_s = rules.scale_up_stabilization_s, rules.scale_down_stabilization_s
    up_rec = lowest_recent(history, now_s, up_s, desired, key=float)
    down_rec = highest_recent(history, now_s, down_s, desired, key=float)
    stabilised = min(max(current, up_rec), down_rec)
    state.recommendations = [*recent(history, now_s, max(up_s, down_s)), (now_s, desired)]
    reason = "ScaleDownStabilized" if stabilised > desired else "DesiredWithinRange"
    if stabilised > current:
        limit = max(current, _scale_up_limit(current, state, rules, now_s))
        allowed = min(max_replicas, limit)
        if stabilised > allowed:
            return allowed, "ScaleUpLimit" if allowed == limit else "TooManyReplicas"
    elif stabilised < current:
        allowed = max(min_replicas, _scale_down_limit(current, state, rules, now_s))
        if stabilised < allowed:
            return allowed, "ScaleDownLimit" if allowed > min_replicas else "TooFewReplicas"
    return min(max_replicas, max(min_replicas, stabilised)), reason


def record_scale(state: HpaState, now_s: float, before: int, after: int) -> None:
    """``storeScaleEvent``: remember the change for the rate limits (kept for 30 min)."""
    horizon = now_s - 1800.0
    state.up_events = [e for e in state.up_events if e[0] > horizon]
    state.down_events = [e for e in state.down_events if e[0] > horizon]
    if after > before:
        state.up_events.append((now_s, after - before))
    elif after < before:
        state.down_events.append((now_s, before - after))


def pods_of(
    snapshot: ClusterSnapshot, key: str, replicas: int, value: float | None
) -> list[PodSample]:
    """The Deployment's pods as the HPA lists them: ready pods carry the workload's average
    metric; started-but-unready pods have none (missing); unplaced pods are Pending."""
    pods: list[PodSample] = []
    for a in snapshot.inventory.allocations:
        if a.owner == key:
            pods.append(PodSample(a.pod, value if a.ready else None, ready=a.ready))
    for i in range(max(0, replicas - len(pods))):
        pods.append(PodSample(f"pending-{i}", None, ready=False, phase=PodPhase.PENDING))
    return pods


def _ready_pods(snapshot: ClusterSnapshot, key: str) -> int:
    return sum(1 for a in snapshot.inventory.allocations if a.owner == key and a.ready)


class HpaPolicy:
    """The HPA on a GPU-utilisation target, replicas only (the slice stays as deployed).

    ``pod_value`` is the one per-pod metric each ready pod reports; a subclass changes the
    metric (``rps.RpsHpaPolicy``: requests per second per pod), never the algorithm.
    """

    def __init__(
        self,
        ref: WorkloadRef,
        spec: SloSpec,
        cluster: Cluster,
        metrics: MetricsSource,
        *,
        target_pct: float,
        period_s: float = SYNC_PERIOD_S,
    ) -> None:
        self.ref = ref
        self.spec = spec
        self.cluster = cluster
        self.metrics = metrics
        self.target = MetricTarget(target_pct)
        self.period_s = period_s
        self.state = HpaState()
        self._next_s = 0.0

    def pod_value(self, metrics: WorkloadMetrics, ready_pods: int) -> float | None:
        """Each ready pod's metric: the GPU busy fraction in percent (``None``: missing)."""
        busy = metrics.gpu_busy
        return 100.0 * busy if available(busy) and busy is not None else None

    def step(self, now_s: float) -> None:
        if now_s + 1e-9 < self._next_s:
            return
        self._next_s = now_s + self.period_s
        snapshot = self.cluster.snapshot()
        dep = next((d for d in snapshot.deployments if d.ref == self.ref), None)
        if dep is None or dep.replicas == 0:
            return  # autoscaling is disabled at zero replicas
        observed = self.metrics.observe([ObserveTarget(self.ref, self.spec)], now_s)
        pods = pods_of(
            snapshot,
            self.ref.key,
            dep.replicas,
            self.pod_value(observed.get(self.ref.key), _ready_pods(snapshot, self.ref.key)),
        )
        desired = replica_count(dep.replicas, pods, self.target)
        if desired is None:
            return  # no metrics: the HPA does not scale (FailedGetResourceMetric)
        replicas, _ = normalize(
            dep.replicas,
            desired,
            self.state,
            now_s,
            min_replicas=self.spec.min_replicas,
            max_replicas=self.spec.max_replicas,
        )
        if replicas != dep.replicas:
            record_scale(self.state, now_s, dep.replicas, replicas)
            reason = Reason.SCALE_UP if replicas > dep.replicas else Reason.SCALE_DOWN
            action = ScaleAction(
                self.ref, Allocation(replicas, dep.slice_pct), dep.memory_mib, reason
            )
            self.cluster.apply(Plan(scale=(action,)))
