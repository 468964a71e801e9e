"""Faults injected at the ports: ``FaultyMetrics`` and ``FaultyCluster`` wrap the simulator's
``MetricsSource`` and ``Cluster`` and degrade what they return while a fault is in force.

Each fault returns what the real adapter returns in that situation, so the controller is
tested on the same inputs it gets on a cluster, and nothing inside the loop or the planner
knows about the soak:

- ``prometheus-outage``: every query fails; ``PrometheusMetricsSource`` then returns no
  workload's metrics and an error (``Observation.errors``) — as here;
- ``partial-scrape``: one workload's rate misses some of its pods. The Prometheus adapter's
  coverage rule (``actuators.prometheus.coverage``) sizes it on the larger of the partial
  reading and the last full one (at most ``partial_hold_s`` old, flagged ``rate_partial``)
  or calls it unavailable, and notes it in ``errors``; this wrapper applies the same rule to
  a reading of 50-90 % of the true rate;
- ``nan-stale``: one workload's series read NaN (rate, latency and good ratio) or went stale
  (every series absent); both arrive as ``None``, never zero (``WorkloadMetrics``);
- ``watch-failure``: ``KubernetesCluster.snapshot`` serves its last confirmed cache for up to
  ``max_staleness_s`` (here 30 s), then raises ``discovery stale``: the cache is frozen at the
  fault's start, then every call raises;
- ``conflict-409``: another writer scales the Deployment (one replica more) between the
  snapshot and the write; the adapter then does not re-send its target over that change and
  reports a failed ``conflict`` result. Job and retraining writes are unaffected;
- ``api-5xx`` / ``throttled-429``: every write fails with the API's status, as
  ``KubernetesCluster._guarded`` reports an ``ApiError`` (the 429 with its Retry-After; the
  adapter does not retry within the tick: the next tick plans again on fresh data);
- ``slow-api``: every call takes 2-10 s of simulated time (the world moves on meanwhile: the
  plan is applied to a cluster a little older than the snapshot it was made on, and the
  next tick starts on schedule, as the real loop's fixed-rate timer does).

``FaultyCluster`` also records, through the port, what the checker needs and the controller
cannot be trusted to report about itself: each applied scale change with the state it
changed (read from the simulator before the write), and each retraining Job created.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from actuators.sim.cluster import SimulatedCluster
from controller.domain import (
    Allocation,
    ApplyResult,
    ClusterSnapshot,
    Observation,
    Plan,
    Reason,
    ScaleAction,
    WorkloadMetrics,
)
from controller.ports import MetricsSource, ObserveTarget
from sloscale.soak.faults import Fault, FaultClass

STALE_BOUND_S = 30.0
"""How long a failed watch's cache is still served before ``snapshot()`` refuses it."""
PARTIAL_HOLD_S = 300.0
"""The Prometheus adapter's ``partial_hold_s``."""


@dataclass(frozen=True, slots=True)
class ScaleChange:
    """A scale action the cluster carried out: the state before it, the target, why."""

    time_s: float
    key: str
    before: Allocation
    after: Allocation
    reason: Reason
    placed_before: int | None = None  # pods of the Deployment on a card before the write
    serving_before: float | None = None  # full-speed replicas before (``serving_units``)
    serving_after: float | None = None


@dataclass(frozen=True, slots=True)
class RetrainStart:
    """A retraining Job created through the port."""

    time_s: float
    model: str
    job: str


def _pick(fault: Fault, keys: Sequence[str]) -> str | None:
    return keys[fault.pick % len(keys)] if keys else None


def _fraction(fault: Fault, lo: float, hi: float) -> float:
    """A value in ``[lo, hi]`` chosen by the fault's ``pick``."""
    return lo + (hi - lo) * ((fault.pick >> 8) % 1000) / 999.0


def serving_units(allocation: Allocation, s_sat_pct: float) -> float:
    """What an allocation serves in replicas at full speed: a slice past the model's
    saturation share buys nothing (the simulator's ``mu(s) = min(s, s_sat) / s_sat / t0``).
    Ground truth the controller never sees; the checker uses it to tell a capacity fallback
    that serves more from a scale-down."""
    return allocation.replicas * min(allocation.slice_pct, s_sat_pct) / s_sat_pct


class FaultyMetrics:
    """``MetricsSource`` that degrades the wrapped one's readings while faults are active."""

    def __init__(self, inner: MetricsSource) -> None:
        self.inner = inner
        self.active: tuple[Fault, ...] = ()
        self.degraded: dict[str, FaultClass] = {}  # of the last call: workload -> why
        self.blind = False  # the last call returned nothing (outage)
        self.last: Observation | None = None  # what the last call returned
        self._last_full: dict[str, tuple[float, float]] = {}  # key -> (rps, time)

    def observe(self, targets: Sequence[ObserveTarget], now_s: float) -> Observation:
        self.degraded = {}
        self.blind = False
        if any(f.fault_class is FaultClass.PROMETHEUS_OUTAGE for f in self.active):
            self.blind = True
            error = "prometheus: query failed: connection refused (every query of the batch)"
            self.last = Observation(time_s=now_s, by_workload={}, errors=(error,))
            return self.last
        obs = self.inner.observe(targets, now_s)
        keys = sorted(t.ref.key for t in targets if t.ref.kind == "Deployment")
        by_workload = dict(obs.by_workload)
        errors = list(obs.errors)
        for fault in self.active:
            key = _pick(fault, keys)
            if key is None or key not in by_workload:
                continue
            m = by_workload[key]
            if fault.fault_class is FaultClass.PARTIAL_SCRAPE:
                by_workload[key] = self._partial(key, m, fault, now_s, errors)
            elif fault.fault_class is FaultClass.NAN_STALE:
                by_workload[key] = (
                    replace(m, request_rate_rps=math.nan, latency_ms=math.nan, good_ratio=math.nan)
                    if fault.pick % 2
                    else WorkloadMetrics(window_s=m.window_s)
                )
            else:
                continue
            self.degraded[key] = fault.fault_class
        for key, m in by_workload.items():
            rate = m.request_rate_rps
            if key not in self.degraded and rate is not None:
                self._last_full[key] = (rate, now_s)
        self.last = Observation(time_s=obs.time_s, by_workload=by_workload, errors=tuple(errors))
        return self.last

    def _partial(
        self, key: str, m: WorkloadMetrics, fault: Fault, now_s: float, errors: list[str]
    ) -> WorkloadMetrics:
        """The adapter's rule for a partial rate (``PrometheusMetricsSource._trusted``)."""
        if m.request_rate_rps is None:
            return m
        partial = m.request_rate_rps * _fraction(fault, 0.5, 0.9)
        last = self._last_full.get(key)
        if last is not None and 0.0 <= now_s - last[1] <= PARTIAL_HOLD_S:
            sized = max(partial, last[0])
            errors.append(f"prometheus: {key} rate partial: sized on {sized:.4g} rps")
            return replace(m, request_rate_rps=sized, rate_partial=True)
        errors.append(f"prometheus: {key} rate partial: unavailable, no recent full reading")
        return replace(m, request_rate_rps=None)


class FaultyCluster:
    """``Cluster`` over a ``SimulatedCluster`` that fails reads and writes while faults are
    active, and records what it carried out (``changes``, ``retrains``)."""

    def __init__(self, inner: SimulatedCluster) -> None:
        self.inner = inner
        self.active: tuple[Fault, ...] = ()
        self.changes: list[ScaleChange] = []
        self.retrains: list[RetrainStart] = []
        self.discover_failed = False  # the last snapshot() raised
        self._cache: ClusterSnapshot | None = None
        self._raced: set[Fault] = set()  # 409 faults whose other writer has written
        self._frozen: dict[Fault, float] = {}  # watch failure -> when its cache froze

    def _fault(self, fault_class: FaultClass) -> Fault | None:
        return next((f for f in self.active if f.fault_class is fault_class), None)

    def _slow(self) -> None:
        fault = self._fault(FaultClass.SLOW_API)
        if fault is not None:
            self.inner.advance(_fraction(fault, 2.0, 10.0))

    def snapshot(self) -> ClusterSnapshot:
        self.discover_failed = False
        self._slow()
        now = self.inner.now()
        watch = self._fault(FaultClass.WATCH_FAILURE)
        if watch is None:
            self._cache = self.inner.snapshot()
            return self._cache
        if self._cache is not None and now - self._frozen_since(watch, now) <= STALE_BOUND_S:
            return replace(self._cache, time_s=now)
        self.discover_failed = True
        raise RuntimeError(
            f"discovery stale (bound {STALE_BOUND_S:g} s), not serving the cache: deployments "
            "not confirmed (watch failed: 500 Internal Server Error)"
        )

    def _frozen_since(self, watch: Fault, now: float) -> float:
        """When the cache was last confirmed: the first call that saw this fault."""
        since = self._frozen.get(watch)
        if since is None:
            since = self._frozen[watch] = now
        return since

    def apply(self, plan: Plan, *, dry_run: bool = False) -> list[ApplyResult]:
        if dry_run:  # a shadow tick writes nothing, so no write can fail
            return self.inner.apply(plan, dry_run=True)
        self._slow()
        now = self.inner.now()
        refused = self._refusal()
        if refused is not None:
            targets = [a.ref.key for a in plan.scale] + [a.ref.key for a in plan.jobs]
            targets += [a.target for a in plan.retrain]
            return [ApplyResult(t, False, refused) for t in targets]
        results: list[ApplyResult] = []
        conflict = self._fault(FaultClass.CONFLICT)
        scale = plan.scale
        if conflict is not None and scale:
            results += [self._race(a, conflict) for a in scale]
            scale = ()
        truth = self.inner.snapshot() if scale else None
        deployments = truth.deployments if truth is not None else ()
        before = {d.ref.key: Allocation(d.replicas, d.slice_pct) for d in deployments}
        placed: dict[str, int] = {}
        for a in truth.inventory.allocations if truth is not None else ():
            placed[a.owner] = placed.get(a.owner, 0) + 1
        applied = self.inner.apply(replace(plan, scale=scale))
        for action, result in zip(scale, applied, strict=False):
            was = before.get(action.ref.key)
            if result.ok and was is not None and was != action.target:
                self.changes.append(
                    ScaleChange(
                        now,
                        action.ref.key,
                        was,
                        action.target,
                        action.reason,
                        placed.get(action.ref.key, 0),
                        *self._serving(action.ref.key, was, action.target),
                    )
                )
        retrained = applied[len(scale) + len(plan.jobs) :]
        for retrain, result in zip(plan.retrain, retrained, strict=False):
            if result.ok and retrain.job_name is not None and "created" in result.message:
                self.retrains.append(RetrainStart(now, retrain.ref.key, retrain.job_name))
        return results + list(applied)

    def _serving(
        self, key: str, before: Allocation, after: Allocation
    ) -> tuple[float | None, float | None]:
        sat = next(
            (d.model.s_sat_pct for d in self.inner.world.deployments if d.ref.key == key), None
        )
        if sat is None:
            return None, None
        return serving_units(before, sat), serving_units(after, sat)

    def _refusal(self) -> str | None:
        """The message every write fails with under a 5xx or a 429 fault, else ``None``."""
        if self._fault(FaultClass.API_5XX) is not None:
            return (
                "patch deployments: 503 ServiceUnavailable: the server is currently unable "
                "to handle the request"
            )
        throttled = self._fault(FaultClass.THROTTLED)
        if throttled is not None:
            retry_s = 1 + throttled.pick % 30
            return (
                "patch deployments: 429 TooManyRequests: Too many requests, "
                f"Retry-After: {retry_s} s"
            )
        return None

    def _race(self, action: ScaleAction, fault: Fault) -> ApplyResult:
        """Another writer scales the Deployment first (once per fault); ours is refused."""
        key = action.ref.key
        if fault not in self._raced:
            self._raced.add(fault)
            dep = next((d for d in self.inner.snapshot().deployments if d.ref.key == key), None)
            if dep is not None:
                other = Allocation(dep.replicas + 1, dep.slice_pct)
                race = ScaleAction(action.ref, other, dep.memory_mib, Reason.SCALE_UP)
                self.inner.apply(Plan(scale=(race,)))
        message = "conflict: replicas changed since it was planned; not applied, re-planned"
        return ApplyResult(key, False, f"{message} on the next tick")
