"""Resumes: a suspended job, highest priority first, comes back when its whole gang fits *and*
the pool can still hold what inference is forecast to need over the resume horizon; after a
preemption it waits a cooldown that doubles with each recent preemption (hysteresis), so the
same job is not thrashed. Purely computational.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.domain import Condition, ConditionType, JobAction, JobPhase, Reason
from controller.placement.pool import Slice, SlicePool
from controller.policy.inputs import JobInput, WorkloadInput
from controller.policy.replicas import replicas_at_slice
from controller.policy.verdict import Proposal


@dataclass(frozen=True, slots=True)
class ResumeConfig:
    """When suspended jobs come back."""

    reserve_ratio: float = 0.25  # of replicas, for a workload not yet learnt
    horizon_s: float = 1800.0  # the forecast must keep the headroom this long
    cooldown_s: float = 900.0  # after a preemption; doubles with each in the last day
    cooldown_max_s: float = 4 * 3600.0


def resume_cooldown_s(job: JobInput, now_s: float, base_s: float, max_s: float) -> float:
    """Hysteresis: ``base_s`` after one preemption in the last day, doubling with each more."""
    n = job.recent_preemptions(now_s)
    if n == 0:
        return 0.0
    return min(max_s, base_s * 2.0 ** (n - 1))


def cooling_down(job: JobInput, now_s: float, base_s: float, max_s: float) -> bool:
    last = job.last_preempted_s
    if job.preempted_s:
        last = max(job.preempted_s) if last is None else max(last, *job.preempted_s)
    if last is None:
        return False
    return now_s - last < resume_cooldown_s(job, now_s, base_s, max_s)


@dataclass(frozen=True, slots=True)
class ResumeResult:
    actions: tuple[JobAction, ...]
    placements: dict[str, list[Slice]]


def resumes(
    jobs: Sequence[JobInput],
    pool: SlicePool,
    reserve: Sequence[tuple[int, int]],
    now_s: float,
    cfg: ResumeConfig,
) -> ResumeResult:
    """Resume suspended jobs, highest priority first, that fit and leave ``reserve`` placeable.

    ``reserve`` is what inference is forecast to need over the resume horizon beyond what it
    holds now, as slices: a job is resumed only if, with its gang placed, every one of them
    still fits. Resumed gangs are placed on ``pool``.
    """
    actions: list[JobAction] = []
    placements: dict[str, list[Slice]] = {}
    suspended = [j for j in jobs if j.state.phase == JobPhase.SUSPENDED]
    suspended.sort(key=lambda j: (-j.spec.priority, j.key))
    why = (
        f"resume: the gang fits and the forecast keeps inference's headroom for "
        f"{cfg.horizon_s / 60:.0f} min"
    )
    for j in suspended:
        if cooling_down(j, now_s, cfg.cooldown_s, cfg.cooldown_max_s):
            continue
        with pool.trial():
            fits = pool.place_all(j.gang) is not None and pool.placeable(reserve) >= len(reserve)
        if not fits:
            continue
        placed = pool.place_all(j.gang)
        assert placed is not None  # the trial succeeded
        placements[j.key] = placed
        condition = Condition(ConditionType.RESUME, True, Reason.RESUMED, why)
        actions.append(JobAction(j.state.ref, False, Reason.RESUMED, (condition,)))
    return ResumeResult(tuple(actions), placements)


def resume_reserve(
    inputs: Sequence[WorkloadInput],
    desired: Mapping[str, Proposal],
    fitted: Mapping[str, Proposal],
    cfg: ResumeConfig,
) -> list[tuple[int, int]]:
    """The slices inference is forecast to need over the resume horizon beyond its plan.

    What it wanted this tick and did not get (a capacity-limited workload must not see the
    fragments it could not use handed to a job it will preempt later), or what ``size``
    would ask at the planned slice for the upper band over the resume horizon
    (``resume_rate_rps``), whichever is more; a workload whose capacity is not learnt yet
    keeps ``reserve_ratio`` of its replicas (at least one) in reserve. Largest slices
    first, so the trial placement is the strict one.
    """
    out: list[tuple[int, int]] = []
    for inp in inputs:
        wanted = desired[inp.key].allocation
        planned = fitted[inp.key].allocation
        if wanted.slice_pct != planned.slice_pct and wanted.share_pct > planned.share_pct:
            out.extend([(wanted.slice_pct, inp.state.memory_mib)] * wanted.replicas)
            continue
        rate = max(
            inp.metrics.request_rate_rps or 0.0,
            inp.rate_forecast_rps or 0.0,
            inp.resume_rate_rps or 0.0,
        )
        slice_pct = planned.slice_pct
        if inp.capacity.known and inp.metrics.core_available():
            # a resume is sized for the target itself, never past it on an ample budget
            budget_ms = inp.spec.latency_target_ms * (1.0 - max(0.0, inp.memory.headroom))
            need = replicas_at_slice(inp, slice_pct, rate, budget_ms)
            want = inp.spec.max_replicas if need is None else need.replicas
        else:
            want = planned.replicas + max(1, math.ceil(cfg.reserve_ratio * planned.replicas))
        if wanted.slice_pct == slice_pct:
            want = max(want, wanted.replicas)
        extra = max(0, min(inp.spec.max_replicas, want) - planned.replicas)
        out.extend([(slice_pct, inp.state.memory_mib)] * extra)
    out.sort(key=lambda d: (-d[0], -d[1]))
    return out
