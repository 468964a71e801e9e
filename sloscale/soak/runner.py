"""``sloscale soak``: the demo's world and loop for simulated days, with faults at the ports.

Two runs of the same seed: one with the ``FaultPlan``'s faults (``sloscale.soak.ports``,
plus the controller's restarts and leader changes, which this runner carries out), one
without any. The faulty run records every tick (``invariants.TickRecord``) and the checker
reads them; the report compares the two runs' ground truth (SLO attainment, GPU-hours).

Restart: the controller is recreated from the saved memory, as ``sloscale demo
--restart-every`` does. Leader change: a follower (a new instance on the same store) ticks
in shadow mode (``dry_run``) for 1-10 minutes, as a non-leader replica of ``sloscale run
--leader-elect`` does; then the leader stops, one tick passes with no leader (the lease
changing hands) and the follower acts, restoring the leader's memory on its first acting
tick (``controller.keeper``). Failed rollout: an outside writer (a person, a GitOps sync)
resizes a Deployment's template to half the GPU memory its model needs, so the new pods are
OOMKilled; the controller's rollback must undo it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TextIO

from actuators.sim.cluster import SimulatedCluster
from actuators.sim.report import SimReport
from controller.domain import (
    Allocation,
    ClusterSnapshot,
    ConditionType,
    Plan,
    Reason,
    ScaleAction,
)
from controller.loop import Controller
from controller.ports import MetricsSource
from controller.report import TickReport
from controller.spec import parse_job_spec, parse_slo_spec
from sloscale.demo import DemoOptions, DemoRun, build_demo
from sloscale.soak.faults import Fault, FaultClass, FaultPlan
from sloscale.soak.invariants import Bounds, TickRecord, Violation, WorkloadTick, check
from sloscale.soak.ports import FaultyCluster, FaultyMetrics, RetrainStart

LEADER_WARM_S = (60.0, 600.0)
"""How long a follower runs in shadow mode before it takes over."""


@dataclass(frozen=True, slots=True)
class FaultyRun:
    """The faulty run's ground truth, records and what was injected."""

    report: SimReport
    records: tuple[TickRecord, ...]
    injected: dict[str, int]
    retrains: tuple[RetrainStart, ...]
    violations: tuple[Violation, ...]
    restarts: int
    leader_changes: int


@dataclass
class _Wired:
    """The faulty ports of one run, kept by the wrappers ``build_demo`` calls."""

    cluster: FaultyCluster | None = None
    metrics: FaultyMetrics | None = None

    def wrap_cluster(self, sim: SimulatedCluster) -> FaultyCluster:
        self.cluster = FaultyCluster(sim)
        return self.cluster

    def wrap_metrics(self, inner: MetricsSource) -> FaultyMetrics:
        self.metrics = FaultyMetrics(inner)
        return self.metrics


@dataclass
class _Leader:
    """The acting controller, a follower in shadow mode, and the handover in progress."""

    demo: DemoRun
    new_controller: Callable[[], Controller]
    follower: Controller | None = None
    handing_over: bool = False
    restarts: int = 0
    leader_changes: int = 0
    pending: list[Fault] = field(default_factory=list)  # leader changes still to come


def run_faulty(
    demo_options: DemoOptions,
    plan: FaultPlan,
    *,
    restart_every_s: float | None = None,
    on_day: Callable[[float], None] | None = None,
) -> FaultyRun:
    """The demo's world for ``plan.duration_s`` with ``plan``'s faults; every tick checked."""
    wired = _Wired()
    demo = build_demo(
        demo_options,
        wrap_cluster=wired.wrap_cluster,
        wrap_metrics=wired.wrap_metrics,
        keep_memory=True,
    )
    assert wired.cluster is not None and wired.metrics is not None and demo.new_controller
    cluster, metrics, sim = wired.cluster, wired.metrics, demo.cluster
    leader = _Leader(demo, demo.new_controller)
    leader.pending = [f for f in plan.faults if f.fault_class is FaultClass.LEADER_CHANGE]
    interval_s = demo.controller.config.interval_s
    start_s = sim.now()
    ticks = math.ceil(plan.duration_s / interval_s)
    restart_ticks = max(1, round(restart_every_s / interval_s)) if restart_every_s else 0
    ticks_per_day = round(86400.0 / interval_s)
    bounds, priorities, cooldowns = _specs(demo)
    records: list[TickRecord] = []
    injected = dict.fromkeys((c.value for c in FaultClass), 0)
    for i in range(1, ticks + 1):
        target_s = start_s + i * interval_s
        if sim.now() < target_s:
            sim.advance(target_s - sim.now())
        rel_s = target_s - start_s
        active = plan.active(rel_s)
        cluster.active = metrics.active = active
        for fault in plan.starting(rel_s - interval_s, rel_s):
            injected[fault.fault_class.value] += 1
            if fault.fault_class is FaultClass.FAILED_ROLLOUT:
                _break_rollout(sim, fault)
            elif fault.fault_class is FaultClass.RESTART:
                _restart(leader)
            elif fault.fault_class is FaultClass.LEADER_CHANGE:
                leader.handing_over = True
        if restart_ticks and i % restart_ticks == 0:
            _restart(leader)
        _maybe_start_follower(leader, rel_s)
        if leader.handing_over:  # the old leader has stopped; the lease changes hands
            _take_over(leader)
        else:
            report = demo.controller.tick()
            records.append(_record(report, demo, cluster, metrics, bounds, priorities))
        if leader.follower is not None:
            leader.follower.tick()
        if on_day is not None and i % ticks_per_day == 0:
            on_day(i / ticks_per_day)
    violations = check(records, bounds, retrains=cluster.retrains, cooldowns_s=cooldowns)
    return FaultyRun(
        sim.report(),
        tuple(records),
        injected,
        tuple(cluster.retrains),
        tuple(violations),
        leader.restarts,
        leader.leader_changes,
    )


def _specs(
    demo: DemoRun,
) -> tuple[dict[str, Bounds], dict[str, int], dict[str, float]]:
    """Per workload its bounds, priority and retraining cooldown, from its annotations."""
    bounds, priorities, cooldowns = {}, {}, {}
    for d in demo.world.deployments:
        spec = parse_slo_spec(d.ref.key, d.annotations).spec
        if spec is None:
            continue
        key = d.ref.key
        bounds[key] = Bounds(
            spec.min_replicas, spec.max_replicas, spec.slice_min_pct, spec.slice_max_pct
        )
        priorities[key] = spec.priority
        if spec.retrain is not None:
            cooldowns[key] = spec.retrain.cooldown_s
    return bounds, priorities, cooldowns


def _restart(leader: _Leader) -> None:
    """The acting controller's process is recreated; it goes on from the saved memory."""
    demo = leader.demo
    demo.past_events.extend(demo.controller.retraining.events)
    demo.controller = leader.new_controller()
    leader.restarts += 1


def _maybe_start_follower(leader: _Leader, rel_s: float) -> None:
    """Start the next leader change's follower its warm-up before the change."""
    if leader.follower is not None or not leader.pending:
        return
    fault = leader.pending[0]
    lo, hi = LEADER_WARM_S
    warm_s = lo + (hi - lo) * (fault.pick % 1000) / 999.0
    if rel_s >= fault.start_s - warm_s:
        follower = leader.new_controller()
        follower.config = replace(follower.config, dry_run=True)
        leader.follower = follower


def _take_over(leader: _Leader) -> None:
    """The follower becomes the leader (from its next tick on); a new one is not yet up."""
    demo = leader.demo
    demo.past_events.extend(demo.controller.retraining.events)
    follower = leader.follower or leader.new_controller()
    follower.config = replace(follower.config, dry_run=False)
    demo.controller = follower
    leader.follower = None
    leader.handing_over = False
    leader.leader_changes += 1
    if leader.pending:
        leader.pending.pop(0)


def _break_rollout(sim: SimulatedCluster, fault: Fault) -> None:
    """An outside writer halves a Deployment's GPU memory: its new pods are OOMKilled."""
    deployments = sim.snapshot().deployments
    if not deployments:
        return
    dep = deployments[fault.pick % len(deployments)]
    action = ScaleAction(
        dep.ref, Allocation(dep.replicas, dep.slice_pct), dep.memory_mib // 2, Reason.RESIZE
    )
    sim.apply(Plan(scale=(action,)))


def _record(
    report: TickReport,
    demo: DemoRun,
    cluster: FaultyCluster,
    metrics: FaultyMetrics,
    bounds: dict[str, Bounds],
    priorities: dict[str, int],
) -> TickRecord:
    """What the acting controller's tick saw and did, and the cluster's state after it."""
    ctl = demo.controller
    seen = report.snapshot is not None and not cluster.discover_failed
    obs = metrics.last
    denied = {
        d.target
        for d in report.decisions
        if any(c.type is ConditionType.CAPACITY_AVAILABLE and not c.status for c in d.conditions)
    }
    workloads = []
    for key in bounds:
        record = ctl.state.find_workload(key)
        recommended = None
        if record is not None and record.memory.recommendations:
            t, allocation = record.memory.recommendations[-1]
            recommended = allocation if t >= report.time_s else None
        fresh = (
            seen
            and obs is not None
            and not metrics.blind
            and key not in metrics.degraded
            and obs.get(key).core_available()
        )
        workloads.append(
            WorkloadTick(key, fresh, recommended, key in denied, priorities.get(key, 0))
        )
    changes = tuple(cluster.changes)
    cluster.changes.clear()
    truth = demo.cluster.snapshot()
    ok = {r.target for r in report.results if r.ok and r.message == "resumed"}
    resumed = []
    for action in report.plan.jobs:
        if not action.suspend and action.ref.key in ok:
            job = next((j for j in truth.jobs if j.ref.key == action.ref.key), None)
            spec = parse_job_spec(action.ref.key, job.annotations).spec if job else None
            resumed.append((action.ref.key, spec.priority if spec else 0))
    return TickRecord(
        report.time_s,
        tuple(workloads),
        changes,
        tuple(resumed),
        _overcommitted(truth),
        _broken_gangs(truth),
    )


def _overcommitted(truth: ClusterSnapshot) -> tuple[str, ...]:
    share: dict[str, int] = {}
    mib: dict[str, int] = {}
    for a in truth.inventory.allocations:
        share[a.card_id] = share.get(a.card_id, 0) + a.share_pct
        mib[a.card_id] = mib.get(a.card_id, 0) + a.memory_mib
    return tuple(
        c.card_id
        for c in truth.inventory.cards
        if share.get(c.card_id, 0) > c.capacity_pct or mib.get(c.card_id, 0) > c.memory_mib
    )


def _broken_gangs(truth: ClusterSnapshot) -> tuple[str, ...]:
    placed: dict[str, int] = {}
    for a in truth.inventory.allocations:
        placed[a.owner] = placed.get(a.owner, 0) + 1
    return tuple(j.ref.key for j in truth.jobs if 0 < placed.get(j.ref.key, 0) < j.pods)


def fault_free(demo_options: DemoOptions, days: float) -> SimReport:
    """The same seed's world and loop without any fault (nor restart)."""
    return build_demo(demo_options).run(days * 24.0)


def progress_printer(label: str, days: float, err: TextIO | None = None) -> Callable[[float], None]:
    stream = err or sys.stderr  # the stream of the moment, not of import time

    def on_day(day: float) -> None:
        print(f"[{label}] day {day:g}/{days:g}", file=stream, flush=True)

    return on_day
