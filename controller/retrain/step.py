"""The per-model retraining state machine (``step``): one tick in, a status and at most one
action and one decision out.

Idle ──new ≥ threshold, cooldown over──► Waiting ──window │ urgent │ deadline──► Running, then
the watermark advances on success or the trigger backs off on failure (``controller.retrain``
tells the whole story: exactly once, the counter rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from controller.domain import (
    Condition,
    ConditionType,
    Decision,
    JobPhase,
    JobState,
    JobTemplate,
    Reason,
    RetrainAction,
    RetrainSpec,
    WorkloadRef,
    available,
)
from controller.retrain.watermark import (
    Watermark,
    backoff_s,
    cooldown_left_s,
    counter_reset,
    job_name,
    newer,
)
from controller.retrain.window import RetrainConfig, RetrainWindow

RETRAIN_REASONS = frozenset(
    {
        Reason.RETRAIN_TRIGGERED,
        Reason.RETRAIN_STARTED,
        Reason.RETRAIN_SUCCEEDED,
        Reason.RETRAIN_FAILED,
        Reason.RETRAIN_BLOCKED,
    }
)
"""Decisions about a model's retraining: they never replace its scaling decision."""

_ACTIVE = (JobPhase.PENDING, JobPhase.RUNNING, JobPhase.SUSPENDED)


class RetrainState(StrEnum):
    IDLE = "Idle"  # below the threshold
    COOLDOWN = "Cooldown"  # over the threshold, but the last retraining is too recent
    WAITING = "Waiting"  # triggered, waiting for a window with enough free GPU share
    STARTING = "Starting"  # the Job is recorded in the annotation but not seen yet
    RUNNING = "Running"  # the Job exists and is not finished (pending, running, suspended)
    BACKOFF = "Backoff"  # the last Job failed; retried at ``retry_at_s``
    UNAVAILABLE = "MetricsUnavailable"  # no usable sample count this tick
    BLOCKED = "Blocked"  # the template or the watermark annotation cannot be used


@dataclass(frozen=True, slots=True)
class RetrainInput:
    """One model's retraining inputs this tick."""

    ref: WorkloadRef
    spec: RetrainSpec
    samples: float | None  # the cumulative count (None or NaN: unavailable)
    watermark_text: str | None  # the annotation as the cluster shows it
    jobs: tuple[JobState, ...] = ()  # Jobs labelled ``retrain-of=<deployment>``
    template: JobTemplate | None = None  # None: size unknown (assume default_share_pct)


@dataclass(frozen=True, slots=True)
class RetrainMemory:
    """What this process remembers between ticks; losing it (a restart) is harmless."""

    last_samples: float | None = None  # for reset detection
    written: Watermark | None = None  # the last watermark written (beats a lagging cache)
    created: tuple[str, ...] = ()  # Jobs this process created (not re-created when unseen)
    blocked: str | None = None  # the last reported blocking error (reported once)


@dataclass(frozen=True, slots=True)
class RetrainStatus:
    """A model's retraining as the API, the metrics and the demo show it."""

    key: str
    state: RetrainState
    message: str
    threshold_samples: float
    samples: float | None
    samples_since_watermark: float | None
    watermark: Watermark
    need_pct: float
    window_open: bool
    start_by_s: float | None  # the deadline: started by then whatever the window


@dataclass(frozen=True, slots=True)
class RetrainEvent:
    """A step in a retraining's life, for the timeline (``triggered`` ... ``succeeded``)."""

    key: str
    kind: str  # triggered, started, succeeded, failed
    time_s: float
    samples: float | None
    job: str | None = None


@dataclass(frozen=True, slots=True)
class RetrainOutcome:
    status: RetrainStatus
    memory: RetrainMemory
    action: RetrainAction | None = None
    decision: Decision | None = None
    events: tuple[RetrainEvent, ...] = field(default_factory=tuple)
    trigger: Decision | None = None  # a trigger of the same tick as the start it led to


def start_reason(
    new_samples: float, wm: Watermark, spec: RetrainSpec, fits: bool, now_s: float
) -> str | None:
    """Why a triggered retraining may start now, or ``None`` when it waits."""
    urgent = spec.urgent_threshold_samples
    if urgent is not None and new_samples >= urgent:
        return f"urgent: {new_samples:.0f} new samples >= {urgent:.0f}"
    if spec.deadline_s is not None and wm.triggered_at_s is not None:
        waited = now_s - wm.triggered_at_s
        if waited >= spec.deadline_s:
            return f"deadline: waited {waited:.0f} s >= {spec.deadline_s:.0f} s for a window"
    if fits:
        return "off-peak window: the forecast leaves enough free GPU share"
    return None


# --------------------------------------------------------------------------------------------
# the state machine
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ctx:
    inp: RetrainInput
    memory: RetrainMemory
    now_s: float
    window: RetrainWindow
    cfg: RetrainConfig
    trigger: Decision | None = None

    @property
    def need_pct(self) -> float:
        t = self.inp.template
        return float(t.share_pct if t is not None else self.cfg.default_share_pct)

    @property
    def fits(self) -> bool:
        return self.window.fits(self.need_pct, self.cfg)


def step(
    inp: RetrainInput,
    memory: RetrainMemory,
    now_s: float,
    window: RetrainWindow,
    cfg: RetrainConfig = RetrainConfig(),
) -> RetrainOutcome:
    """One tick of one model's retraining: what to write and why.

    Purely computational, no side effects. At most one action (one annotation write, and
    with it at most one Job creation) and at most one decision per tick.
    """
    ctx = _Ctx(inp, memory, now_s, window, cfg)
    try:
        cluster_wm = Watermark.parse(inp.watermark_text)
    except ValueError as e:
        return _blocked(ctx, Watermark(), str(e))
    wm = newer(cluster_wm, memory.written)
    samples = inp.samples if available(inp.samples) else None
    by_name = {j.ref.name: j for j in inp.jobs}
    if wm.job is not None:
        return _follow(ctx, wm, samples, by_name.get(wm.job))
    active = [j for j in inp.jobs if j.phase in _ACTIVE]
    if active:
        return _adopt(ctx, wm, samples, active[0])
    if samples is None:
        return _status(ctx, wm, RetrainState.UNAVAILABLE, "sample count unavailable: holding")
    previous = memory.last_samples
    ctx = replace(ctx, memory=replace(memory, last_samples=samples))
    if wm.samples is None:
        base = _bump(wm, samples=samples)
        return _write(ctx, base, RetrainState.IDLE, f"baseline: {samples:.0f} samples", None)
    if counter_reset(samples, wm, previous):
        rebased = _bump(wm, samples=samples)
        message = f"counter reset ({samples:.0f} < {wm.samples:.0f}): watermark rebased"
        state = RetrainState.WAITING if wm.triggered_at_s is not None else RetrainState.IDLE
        return _write(ctx, rebased, state, message, None)
    new = samples - wm.samples
    events: tuple[RetrainEvent, ...] = ()
    trigger: Decision | None = None
    if wm.triggered_at_s is None:
        if new < inp.spec.threshold_samples:
            return _status(ctx, wm, RetrainState.IDLE, _progress(new, inp.spec))
        left = cooldown_left_s(wm, inp.spec.cooldown_s, now_s)
        if left > 0:
            return _status(ctx, wm, RetrainState.COOLDOWN, f"cooldown: {left:.0f} s left")
        wm = _bump(wm, triggered_at_s=now_s, triggered_samples=samples, failures=0)
        message = f"{new:.0f} new samples >= threshold {inp.spec.threshold_samples:.0f}"
        trigger = _decision(ctx, Reason.RETRAIN_TRIGGERED, message)
        events = (RetrainEvent(inp.ref.key, "triggered", now_s, new),)
    ctx = replace(ctx, trigger=trigger)
    if wm.retry_at_s is not None and now_s < wm.retry_at_s:
        message = f"retry after failure {wm.failures} at {wm.retry_at_s:.0f}"
        return _status(ctx, wm, RetrainState.BACKOFF, message)
    if inp.template is not None and inp.template.error is not None:
        return _blocked(ctx, wm, f"{inp.spec.job_template}: {inp.template.error}")
    why = start_reason(new, wm, inp.spec, ctx.fits, now_s)
    if why is None:
        typical = "unknown" if window.typical_pct is None else f"{window.typical_pct:.0f} %"
        message = (
            f"waiting for an off-peak window: inference forecast {window.inference_pct:.0f} % "
            f"(day's median {typical}), {window.free_pct:.0f} % free (needs "
            f"{ctx.need_pct:.0f} % + {cfg.reserve_ratio * window.total_pct:.0f} % reserve)"
        )
        if trigger is not None:
            return _write(ctx, wm, RetrainState.WAITING, message, trigger, events)
        return _status(ctx, wm, RetrainState.WAITING, message)
    return _start(ctx, wm, samples, new, why, events)


def _start(
    ctx: _Ctx,
    wm: Watermark,
    samples: float,
    new: float,
    why: str,
    events: tuple[RetrainEvent, ...],
) -> RetrainOutcome:
    name = job_name(ctx.inp.ref.name, wm.seq + 1)
    started = _bump(
        wm,
        seq=wm.seq + 1,
        job=name,
        job_samples=samples,
        started_at_s=ctx.now_s,
        retry_at_s=None,
    )
    message = f"start Job {name} from {ctx.inp.spec.job_template} ({why})"
    decision = _decision(ctx, Reason.RETRAIN_STARTED, message)
    started_event = RetrainEvent(ctx.inp.ref.key, "started", ctx.now_s, new, name)
    # a trigger of this same tick is in the annotation and the events; the decision is the start
    return _write(
        ctx, started, RetrainState.STARTING, message, decision, (*events, started_event), name
    )


def _follow(
    ctx: _Ctx, wm: Watermark, samples: float | None, job: JobState | None
) -> RetrainOutcome:
    """A Job is recorded for the pending trigger: create it if unseen, else watch it."""
    assert wm.job is not None
    if job is None:
        if wm.job in ctx.memory.created:
            return _status(ctx, wm, RetrainState.STARTING, f"Job {wm.job} created, not seen yet")
        message = f"Job {wm.job} recorded but not found: creating it (idempotent)"
        return _write(ctx, wm, RetrainState.STARTING, message, None, (), wm.job)
    if job.phase is JobPhase.SUCCEEDED:
        trained = wm.job_samples if wm.job_samples is not None else wm.triggered_samples
        done = Watermark(
            samples=trained,
            time_s=ctx.now_s,
            rev=wm.rev + 1,
            seq=wm.seq,
            last_job=wm.job,
            last_outcome="Succeeded",
            last_finished_s=ctx.now_s,
        )
        message = f"Job {wm.job} succeeded: watermark advanced to {trained or 0:.0f} samples"
        decision = _decision(ctx, Reason.RETRAIN_SUCCEEDED, message)
        event = RetrainEvent(ctx.inp.ref.key, "succeeded", ctx.now_s, trained, wm.job)
        return _write(ctx, done, RetrainState.IDLE, message, decision, (event,))
    if job.phase is JobPhase.FAILED:
        failures = wm.failures + 1
        retry = ctx.now_s + backoff_s(failures, ctx.cfg)
        failed = _bump(
            wm,
            job=None,
            job_samples=None,
            started_at_s=None,
            failures=failures,
            retry_at_s=retry,
            last_job=wm.job,
            last_outcome="Failed",
            last_finished_s=ctx.now_s,
        )
        message = f"Job {wm.job} failed (failure {failures}): retry at {retry:.0f}"
        decision = _decision(ctx, Reason.RETRAIN_FAILED, message)
        event = RetrainEvent(ctx.inp.ref.key, "failed", ctx.now_s, wm.job_samples, wm.job)
        return _write(ctx, failed, RetrainState.BACKOFF, message, decision, (event,))
    if samples is not None:
        ctx = replace(ctx, memory=replace(ctx.memory, last_samples=samples))
    return _status(ctx, wm, RetrainState.RUNNING, f"Job {wm.job} {job.phase.value.lower()}")


def _adopt(ctx: _Ctx, wm: Watermark, samples: float | None, job: JobState) -> RetrainOutcome:
    """An unfinished Job of this model that the annotation does not name: record it."""
    base = samples if samples is not None else wm.triggered_samples or wm.samples
    adopted = _bump(
        wm,
        job=job.ref.name,
        job_samples=base,
        started_at_s=job.started_at_s if job.started_at_s is not None else ctx.now_s,
        triggered_at_s=wm.triggered_at_s if wm.triggered_at_s is not None else ctx.now_s,
        triggered_samples=wm.triggered_samples if wm.triggered_samples is not None else base,
    )
    message = f"Job {job.ref.name} of this model is {job.phase.value.lower()}: adopted"
    return _write(ctx, adopted, RetrainState.RUNNING, message, None)


def _blocked(ctx: _Ctx, wm: Watermark, error: str) -> RetrainOutcome:
    decision = None
    if ctx.memory.blocked != error:
        decision = _decision(ctx, Reason.RETRAIN_BLOCKED, error)
    memory = replace(ctx.memory, blocked=error)
    status = _make_status(replace(ctx, memory=memory), wm, RetrainState.BLOCKED, error)
    return RetrainOutcome(status, memory, None, decision)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _bump(wm: Watermark, **changes: Any) -> Watermark:
    return replace(wm, rev=wm.rev + 1, **changes)


def _progress(new: float, spec: RetrainSpec) -> str:
    return f"{new:.0f} of {spec.threshold_samples:.0f} new samples"


def _decision(ctx: _Ctx, reason: Reason, message: str) -> Decision:
    failed = reason in (Reason.RETRAIN_FAILED, Reason.RETRAIN_BLOCKED)
    why = Condition(ConditionType.RETRAINING, not failed, reason, message)
    return Decision(ctx.now_s, ctx.inp.ref.key, reason, message, conditions=(why,))


def _make_status(ctx: _Ctx, wm: Watermark, state: RetrainState, message: str) -> RetrainStatus:
    samples = ctx.inp.samples if available(ctx.inp.samples) else None
    since = None if samples is None or wm.samples is None else max(0.0, samples - wm.samples)
    deadline = ctx.inp.spec.deadline_s
    start_by = (
        wm.triggered_at_s + deadline
        if deadline is not None and wm.triggered_at_s is not None and wm.job is None
        else None
    )
    return RetrainStatus(
        key=ctx.inp.ref.key,
        state=state,
        message=message,
        threshold_samples=ctx.inp.spec.threshold_samples,
        samples=samples,
        samples_since_watermark=since,
        watermark=wm,
        need_pct=ctx.need_pct,
        window_open=ctx.fits,
        start_by_s=start_by,
    )


def _status(ctx: _Ctx, wm: Watermark, state: RetrainState, message: str) -> RetrainOutcome:
    memory = replace(ctx.memory, blocked=None)
    return RetrainOutcome(_make_status(ctx, wm, state, message), memory)


def _write(
    ctx: _Ctx,
    wm: Watermark,
    state: RetrainState,
    message: str,
    decision: Decision | None,
    events: tuple[RetrainEvent, ...] = (),
    create: str | None = None,
) -> RetrainOutcome:
    """An outcome that writes ``wm`` (and creates ``create``); memory updates once it is done."""
    action = RetrainAction(
        ref=ctx.inp.ref,
        watermark=wm.to_annotation(),
        reason=decision.reason if decision is not None else Reason.RETRAIN_TRIGGERED,
        message=message,
        job_name=create,
        template=ctx.inp.spec.job_template if create is not None else None,
    )
    memory = replace(ctx.memory, blocked=None)
    trigger = ctx.trigger if decision is not ctx.trigger else None
    status = _make_status(ctx, wm, state, message)
    return RetrainOutcome(status, memory, action, decision, events, trigger)


__all__ = [
    "RETRAIN_REASONS",
    "RetrainEvent",
    "RetrainInput",
    "RetrainMemory",
    "RetrainOutcome",
    "RetrainState",
    "RetrainStatus",
    "start_reason",
    "step",
]
