"""The plan of a tick: every policy stage in order, then placement.

    for each workload:  headroom ─► size ─► tolerance ─► scale-down delay ─► step limit
                        ─► bounds ─► idle reclaim ─► rollback of a failed resize
    then, for all:      fit (placement, preemption, idle jobs, resumes)

Each stage owns its config (``PlannerConfig`` is just their list) and its part of the
workload's memory (``PlannerMemory``), and adds a ``Condition`` to the decision; none
overwrites another. Purely computational, no side effects.

Workloads are isolated from each other: an exception in one workload's stages before
placement holds that workload alone (fail static, its pods kept in the pool, a decision
saying why, ``PlanResult.failures`` naming it) while the others are planned as if it were
not there. Only a failure of the global fit step can hold them all (``hold_all``, in the loop).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from controller.domain import (
    Allocation,
    ClusterSnapshot,
    Condition,
    ConditionType,
    Decision,
    DeploymentState,
    Plan,
    Reason,
    ScaleAction,
    summary,
)
from controller.placement.fit import FitResult, fit
from controller.placement.pool import Slice
from controller.placement.resume import ResumeConfig
from controller.policy.headroom import (
    HeadroomConfig,
    next_headroom,
    next_rate_margin,
    window_was_sized_for,
)
from controller.policy.inputs import JobInput, PlannerMemory, WorkloadInput
from controller.policy.reclaim import apply_idle_reclaim
from controller.policy.replicas import SizingConfig
from controller.policy.rollback import (
    RollbackConfig,
    apply_rollback,
    remember_rollout,
    rollback_memory_mib,
)
from controller.policy.size import size
from controller.policy.slices import SliceConfig, alternatives, remember_peak
from controller.policy.stabilise import (
    StabiliseConfig,
    apply_bounds,
    apply_fresh_window,
    apply_scale_down_delay,
    apply_step_limit,
    apply_tolerance,
    hold_recommendation,
)
from controller.policy.verdict import Proposal


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """Each stage's own config; the defaults mirror the HPA's where one exists."""

    headroom: HeadroomConfig = field(default_factory=HeadroomConfig)
    sizing: SizingConfig = field(default_factory=SizingConfig)
    slices: SliceConfig = field(default_factory=SliceConfig)
    stabilise: StabiliseConfig = field(default_factory=StabiliseConfig)
    resume: ResumeConfig = field(default_factory=ResumeConfig)
    rollback: RollbackConfig = field(default_factory=RollbackConfig)


@dataclass(frozen=True, slots=True)
class PlanResult:
    plan: Plan
    decisions: tuple[Decision, ...]
    memories: Mapping[str, PlannerMemory]
    desired: Mapping[str, Allocation] = field(default_factory=dict)
    placements: Mapping[str, Sequence[Slice]] = field(default_factory=dict)
    failures: Mapping[str, str] = field(default_factory=dict)
    """Per workload whose planning raised: the error (``Type: message``); it was held."""


def plan(
    inputs: Sequence[WorkloadInput],
    jobs: Sequence[JobInput],
    snapshot: ClusterSnapshot,
    cfg: PlannerConfig = PlannerConfig(),
) -> PlanResult:
    """Size, stabilise and fit every workload; return the actions, decisions and new memory.

    A workload whose stages raise is held alone, the others planned without it."""
    now = snapshot.time_s
    planned: list[WorkloadInput] = []
    proposals: dict[str, Proposal] = {}
    memories: dict[str, PlannerMemory] = {}
    fallbacks: dict[str, tuple[Allocation, ...]] = {}
    failures: dict[str, str] = {}
    for given in inputs:
        try:
            inp = _first_sight(_remember(given, now, cfg), now)
            prop, memory = _propose(inp, now, cfg)
            if inp.warnings:
                prop = replace(prop, conditions=(*inp.warnings, *prop.conditions))
            options = alternatives(inp, memory.headroom, prop, cfg.headroom, now)
        except Exception as e:  # a fuse: one workload's failure must not hold the others
            failures[given.key] = f"{type(e).__name__}: {e}"
            continue
        planned.append(inp)
        proposals[inp.key], memories[inp.key], fallbacks[inp.key] = prop, memory, options
    fitted = fit(proposals, planned, jobs, snapshot, cfg.resume, fallbacks)
    result = _result(planned, _with_job_warnings(fitted, jobs), memories, now)
    if not failures:
        return result
    held = tuple(
        hold(inp.state, now, Reason.METRICS_UNAVAILABLE, f"planning failed: {failures[inp.key]}")
        for inp in inputs
        if inp.key in failures
    )
    return replace(result, decisions=result.decisions + held, failures=failures)


def _result(
    inputs: Sequence[WorkloadInput],
    fitted: FitResult,
    memories: dict[str, PlannerMemory],
    now_s: float,
) -> PlanResult:
    """The actions and decisions of what fitted; a resize is remembered."""
    scale: list[ScaleAction] = []
    decisions: list[Decision] = []
    for inp in inputs:
        prop, current = fitted.proposals[inp.key], inp.current
        if prop.allocation.slice_pct != current.slice_pct:
            memories[inp.key] = _resized(memories[inp.key], now_s)
        memory_mib = inp.state.memory_mib
        if _rolls_back(prop):  # the last good template, memory too
            memory_mib = rollback_memory_mib(memories[inp.key].rollback, inp.state)
        if prop.allocation != current or memory_mib != inp.state.memory_mib:
            removals = fitted.removals.get(inp.key, ()) if _scales_in(current, prop) else ()
            scale.append(
                ScaleAction(
                    inp.state.ref,
                    prop.allocation,
                    memory_mib,
                    prop.reason,
                    removals,
                    prop.conditions,
                )
            )
        decisions.append(
            Decision(
                now_s,
                inp.key,
                prop.reason,
                prop.message,
                current,
                prop.allocation,
                conditions=prop.conditions,
            )
        )
    for act in fitted.actions:
        message = summary(act.conditions)
        decisions.append(
            Decision(now_s, act.ref.key, act.reason, message, conditions=act.conditions)
        )
    return PlanResult(
        Plan(tuple(scale), tuple(fitted.actions)),
        tuple(decisions),
        memories,
        {k: p.allocation for k, p in fitted.proposals.items()},
        fitted.placements,
    )


def _with_job_warnings(fitted: FitResult, jobs: Sequence[JobInput]) -> FitResult:
    """Each job action with its job's spec warnings first (the Event carries them)."""
    warned = {j.key: j.warnings for j in jobs if j.warnings}
    if not warned:
        return fitted
    actions = [
        replace(a, conditions=(*warned.get(a.ref.key, ()), *a.conditions)) for a in fitted.actions
    ]
    return replace(fitted, actions=actions)


def _propose(
    inp: WorkloadInput, now_s: float, cfg: PlannerConfig
) -> tuple[Proposal, PlannerMemory]:
    """One workload's stages before placement: its proposal and its new memory."""
    headroom = next_headroom(
        inp.memory,
        inp.metrics,
        inp.spec,
        inp.budget_remaining,
        cfg.headroom,
        sized_for_window=window_was_sized_for(inp),
    )
    margin = next_rate_margin(
        inp.memory,
        inp.recent_burn_rate,
        inp.budget_remaining,
        cfg.headroom,
        learnt=inp.capacity.known and inp.capacity.calibrated,
    )
    inp = replace(inp, memory=replace(inp.memory, rate_margin=margin))
    prop = size(inp, headroom, cfg, now_s)
    blind = prop.reason is Reason.METRICS_UNAVAILABLE or inp.metrics.rate_partial
    if blind:  # no scale-down before a whole window of full data (a partial rate may grow)
        inp = replace(inp, memory=replace(inp.memory, blind_at_s=now_s))
    if prop.reason is Reason.METRICS_UNAVAILABLE:
        # blind: what runs is this tick's recommendation, so the window is never empty when
        # data returns; an idle service has no latency to read, but its idleness is measured
        history = hold_recommendation(inp, now_s, cfg.stabilise)
        prop = apply_idle_reclaim(inp, prop, now_s)
    else:
        prop = apply_tolerance(inp, prop, cfg.stabilise)
        prop, history = apply_scale_down_delay(inp, prop, now_s, cfg.stabilise)
        prop = apply_fresh_window(inp, prop, now_s, cfg.stabilise)
        prop = apply_step_limit(inp, prop)
        prop = apply_bounds(inp.spec, prop)
        prop = apply_idle_reclaim(inp, prop, now_s)
    # a failed resize is undone whatever the metrics say: its pods are not serving
    prop, rollback = apply_rollback(inp, prop, now_s, headroom, cfg.rollback, cfg.headroom)
    memory = replace(inp.memory, recommendations=history, headroom=headroom, rollback=rollback)
    return prop, memory


def _remember(inp: WorkloadInput, now_s: float, cfg: PlannerConfig) -> WorkloadInput:
    """The input with this tick's peak rate and rollout outcome in its memory."""
    rate = inp.metrics.request_rate_rps
    slices = remember_peak(inp.memory.slices, rate, now_s, cfg.slices)
    rollback = remember_rollout(inp.memory.rollback, inp.state, now_s, cfg.rollback)
    return replace(inp, memory=replace(inp.memory, slices=slices, rollback=rollback))


def _first_sight(inp: WorkloadInput, now_s: float) -> WorkloadInput:
    """A workload the planner has no memory of starts its window with what runs (as the
    HPA's recordInitialRecommendation does): after a start or a restart, no scale-down
    before a whole window of data says so."""
    if inp.memory.recommendations:
        return inp
    seeded = ((now_s, inp.current),)
    return replace(inp, memory=replace(inp.memory, recommendations=seeded))


def _resized(memory: PlannerMemory, now_s: float) -> PlannerMemory:
    return replace(memory, slices=replace(memory.slices, last_resize_s=now_s))


def _rolls_back(prop: Proposal) -> bool:
    """The rollback stage rolled a failed resize back, even if a later step (the fit's
    ``CapacityLimited``) became the primary reason: the last good memory is written."""
    return any(c.reason is Reason.RESIZE_FAILED for c in prop.conditions)


def _scales_in(current: Allocation, prop: Proposal) -> bool:
    target = prop.allocation
    return target.slice_pct == current.slice_pct and target.replicas < current.replicas


def hold(state: DeploymentState, now_s: float, reason: Reason, message: str) -> Decision:
    """Fail static: a decision that keeps what the workload has, saying why."""
    condition = Condition(ConditionType.SCALING_ACTIVE, False, reason, message)
    current = Allocation(state.replicas, state.slice_pct)
    return Decision(
        now_s, state.ref.key, reason, message, current, current, conditions=(condition,)
    )


def hold_all(
    states: Sequence[DeploymentState], now_s: float, reason: Reason, message: str
) -> tuple[Decision, ...]:
    """Fail static: a decision per workload that keeps what it has."""
    return tuple(hold(s, now_s, reason, message) for s in states)
