"""Retraining, the data flywheel: start one retraining per crossed threshold, at a good time.

Why it exists: a served model accumulates new data (a cumulative sample counter per model).
When enough has accrued since its last training, sloscale starts its retraining as a
low-priority, preemptible Job on the same GPU pool, in a window the forecast leaves free,
and exactly once, however often the controller restarts or changes leader.

Purely computational, no side effects: plain data in (the counter, the watermark annotation
as read, the model's Jobs, the free share), plain data out (a status, at most one action, at
most one decision). The loop feeds it; the adapters write what it asks.

The state lives on the cluster, never only in this process:

- the Deployment's ``sloscale.io/retrain-watermark`` annotation (JSON, ``Watermark``): the
  sample count and time of the last retraining, a trigger waiting for its window, the name of
  the Job started for it, failures and the time of the next retry;
- the Jobs labelled ``sloscale.io/retrain-of=<deployment>``.

The per-model state machine (``step``)::

    Idle ──new ≥ threshold, cooldown over──► Waiting ──window │ urgent │ deadline──► Running
      ▲                                         ▲                                     │
      └──────── Succeeded: watermark := samples the Job started with ◄────────────────┤
                                                └──── Backoff ◄── Failed (retry later)┘

Exactly once: the trigger is written before anything else, so a restart does not lose it.
A Job is started by writing its name (``<model>-retrain-<seq>``, ``seq`` counted in the
annotation) into the annotation *first* and creating it *second*; creating a name that exists
is success. So a controller that restarts between the two creates the same name (no second
Job), one that restarts after sees the Job, and any unfinished Job of the model, recorded or
not, blocks a new one (an unrecorded one is adopted). A newer annotation this process wrote
but the cache does not show yet wins by its revision ``rev``.

Counter rule (KEDA's lesson): an unavailable or NaN count never triggers and is never zero; a
count below the watermark or below the last reading is a counter reset: the watermark is
rebased on the new count, which never triggers by itself.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from controller.domain import (
    ApplyResult,
    ClusterSnapshot,
    Decision,
    DeploymentState,
    JobPhase,
    JobState,
    JobTemplate,
    Reason,
    RetrainAction,
    RetrainSpec,
    WorkloadRef,
    available,
)

WATERMARK_ANNOTATION = "sloscale.io/retrain-watermark"
RETRAIN_OF_LABEL = "sloscale.io/retrain-of"
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
_JOB_NAME_MAX = 63  # a Job's name becomes a label value (``job-name``): 63 characters at most


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
class RetrainConfig:
    """Tuning of the retraining step."""

    reserve_ratio: float = 0.1  # free share kept beyond the Job's own, as a share of the pool
    history_s: float = 86400.0  # inference's share over the last day defines "off-peak"
    min_history_s: float = 6 * 3600.0  # with less, only the room for the Job counts
    sample_every_s: float = 300.0
    backoff_base_s: float = 300.0  # first retry after a failure; doubles per failure
    backoff_max_s: float = 6 * 3600.0
    default_share_pct: int = 100  # a template of unknown size is assumed to need one card


@dataclass(frozen=True, slots=True)
class Watermark:
    """The ``sloscale.io/retrain-watermark`` annotation: the model's retraining state."""

    samples: float | None = None  # count the last retraining trained on (None: no baseline)
    time_s: float | None = None  # when it finished (cooldown runs from here)
    rev: int = 0  # bumped on every write: the newer of two readings wins
    seq: int = 0  # Jobs started so far: names the next one
    triggered_at_s: float | None = None
    triggered_samples: float | None = None
    job: str | None = None  # the Job started for the pending trigger
    job_samples: float | None = None  # the count when it started (the watermark on success)
    started_at_s: float | None = None
    failures: int = 0  # consecutive failed Jobs of the pending trigger
    retry_at_s: float | None = None
    last_job: str | None = None
    last_outcome: str | None = None  # "Succeeded" or "Failed"
    last_finished_s: float | None = None

    def to_annotation(self) -> str:
        """Compact JSON with the keys that are set, sorted (stable across writes)."""
        out: dict[str, Any] = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is not None and not (name in ("failures", "rev", "seq") and value == 0):
                out[_KEYS[name]] = value
        return json.dumps(out, sort_keys=True, separators=(",", ":"))

    @staticmethod
    def parse(text: str | None) -> Watermark:
        """Read the annotation; ``None`` or empty is no watermark. Raises ``ValueError``."""
        if text is None or not text.strip():
            return Watermark()
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{WATERMARK_ANNOTATION} is not JSON: {e.msg}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{WATERMARK_ANNOTATION} must be a JSON object")
        values: dict[str, Any] = {}
        for name in _FIELDS:
            value = raw.get(_KEYS[name])
            if value is None:
                continue
            kind = _KINDS[name]
            ok = (
                isinstance(value, str)
                if kind is str
                else isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            if not ok:
                raise ValueError(f"{WATERMARK_ANNOTATION}: {_KEYS[name]}={value!r} is invalid")
            values[name] = int(value) if kind is int else value
        return Watermark(**values)


_KINDS: dict[str, type] = {
    "samples": float,
    "time_s": float,
    "rev": int,
    "seq": int,
    "triggered_at_s": float,
    "triggered_samples": float,
    "job": str,
    "job_samples": float,
    "started_at_s": float,
    "failures": int,
    "retry_at_s": float,
    "last_job": str,
    "last_outcome": str,
    "last_finished_s": float,
}
_FIELDS = tuple(_KINDS)
_KEYS = {name: name.removesuffix("_s").replace("_", "-") for name in _FIELDS}


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
class RetrainWindow:
    """This tick's view of the pool: its size, inference's forecast share, what is free.

    ``inference_pct`` is every opted-in Deployment's planned share scaled by its forecast;
    ``free_pct`` is the pool less that and less every Job holding or waiting for a slice.
    """

    free_pct: float
    total_pct: float
    inference_pct: float = 0.0
    typical_pct: float | None = None  # inference's median share over the last day

    def off_peak(self) -> bool:
        """Inference's forecast is at or below its median of the last day (unknown: yes)."""
        return self.typical_pct is None or self.inference_pct <= self.typical_pct

    def fits(self, need_pct: float, cfg: RetrainConfig) -> bool:
        """An off-peak window with room for the Job and ``reserve_ratio`` of the pool beside it."""
        room = self.free_pct - need_pct >= cfg.reserve_ratio * self.total_pct
        return room and self.off_peak()


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


# --------------------------------------------------------------------------------------------
# small pure steps
# --------------------------------------------------------------------------------------------


def newer(cluster: Watermark, written: Watermark | None) -> Watermark:
    """The watermark to act on: what this process wrote wins until the cache catches up."""
    return written if written is not None and written.rev > cluster.rev else cluster


def counter_reset(samples: float, wm: Watermark, last_samples: float | None) -> bool:
    """A cumulative count that went down was reset (or lost series): never a trigger."""
    below_watermark = wm.samples is not None and samples < wm.samples
    return below_watermark or (last_samples is not None and samples < last_samples)


def cooldown_left_s(wm: Watermark, cooldown_s: float, now_s: float) -> float:
    """Seconds until the cooldown since the last retraining is over (0: over)."""
    if wm.time_s is None:
        return 0.0
    return max(0.0, wm.time_s + cooldown_s - now_s)


def backoff_s(failures: int, cfg: RetrainConfig) -> float:
    """Exponential: base, 2 x base, 4 x base, ... capped at ``backoff_max_s``."""
    return float(min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** max(0, failures - 1)))


def job_name(deployment: str, seq: int) -> str:
    """``<deployment>-retrain-<seq>``, the deployment part cut to keep 63 characters."""
    suffix = f"-retrain-{seq}"
    return deployment[: _JOB_NAME_MAX - len(suffix)].rstrip("-.") + suffix


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


def free_share_pct(
    snapshot: ClusterSnapshot,
    inference_pct: Mapping[str, float],
) -> RetrainWindow:
    """The pool's share left by the plan: total minus inference (as planned and scaled to the
    forecast) minus every Job that holds or waits for a slice (a suspended one does not: it is
    resumed, like a retraining is placed, when there is room)."""
    total = float(snapshot.inventory.total_pct())
    jobs = sum(
        j.pods * j.share_pct_per_pod
        for j in snapshot.jobs
        if j.phase in (JobPhase.PENDING, JobPhase.RUNNING)
    )
    others = sum(
        a.share_pct
        for a in snapshot.inventory.allocations
        if a.owner not in inference_pct and a.owner not in {j.ref.key for j in snapshot.jobs}
    )
    inference = sum(inference_pct.values())
    return RetrainWindow(total - inference - jobs - others, total, inference)


def model_jobs(ref: WorkloadRef, jobs: Sequence[JobState]) -> tuple[JobState, ...]:
    """The Jobs labelled ``sloscale.io/retrain-of=<deployment>`` in the model's namespace."""
    return tuple(
        j
        for j in jobs
        if j.ref.namespace == ref.namespace and j.labels.get(RETRAIN_OF_LABEL) == ref.name
    )


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
    return Decision(ctx.now_s, ctx.inp.ref.key, reason, message)


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


def forecast_growth(upper_rps: float | None, observed_rps: float | None, cap: float = 3.0) -> float:
    """How much more than now inference is forecast to need (>= 1, at most ``cap``)."""
    if not (available(upper_rps) and available(observed_rps)):
        return 1.0
    assert upper_rps is not None and observed_rps is not None
    if observed_rps <= 0:
        return 1.0 if upper_rps <= 0 else cap
    return min(cap, max(1.0, upper_rps / observed_rps))


@dataclass(frozen=True, slots=True)
class Model:
    """An opted-in Deployment with retraining settings, and its sample count this tick."""

    deployment: DeploymentState
    spec: RetrainSpec
    samples: float | None


class RetrainBook:
    """Every model's retraining memory and recent events, carried across ticks by the loop.

    State only, no I/O (like ``ForecastBank``): the loop hands in the snapshot and counts,
    the book returns the actions and decisions; after ``apply`` the loop reports the results.
    """

    def __init__(self, config: RetrainConfig = RetrainConfig(), history: int = 1000) -> None:
        self.config = config
        self.memory: dict[str, RetrainMemory] = {}
        self.events: deque[RetrainEvent] = deque(maxlen=history)
        self.statuses: tuple[RetrainStatus, ...] = ()
        self.inference: deque[tuple[float, float]] = deque()  # (time, share %) every 5 min
        self._pending: dict[str, tuple[tuple[RetrainEvent, ...], tuple[Decision, ...]]] = {}

    def plan(
        self,
        snapshot: ClusterSnapshot,
        models: Sequence[Model],
        inference_pct: Mapping[str, float],
    ) -> tuple[tuple[RetrainAction, ...], tuple[Decision, ...]]:
        """One retrain step: actions to apply and decisions that need no write."""
        window = self._window(snapshot, inference_pct)
        actions: list[RetrainAction] = []
        decisions: list[Decision] = []
        statuses: list[RetrainStatus] = []
        self._pending = {}
        for m in models:
            ref = m.deployment.ref
            template = _template(snapshot, ref, m.spec)
            inp = RetrainInput(
                ref,
                m.spec,
                m.samples,
                m.deployment.retrain_watermark,
                model_jobs(ref, snapshot.jobs),
                template,
            )
            out = step(inp, self.memory.get(ref.key, RetrainMemory()), snapshot.time_s, window)
            self.memory[ref.key] = out.memory
            statuses.append(out.status)
            if out.action is not None:
                actions.append(out.action)
                found = tuple(d for d in (out.trigger, out.decision) if d is not None)
                self._pending[out.action.target] = (out.events, found)
            elif out.decision is not None:
                decisions.append(out.decision)
        for gone in set(self.memory) - {m.deployment.ref.key for m in models}:
            del self.memory[gone]
        self.statuses = tuple(statuses)
        return tuple(actions), tuple(decisions)

    def _window(
        self, snapshot: ClusterSnapshot, inference_pct: Mapping[str, float]
    ) -> RetrainWindow:
        """This tick's window, with inference's median share over the last day."""
        now, cfg = snapshot.time_s, self.config
        window = free_share_pct(snapshot, inference_pct)
        history = self.inference
        if not history or now - history[-1][0] >= cfg.sample_every_s:
            history.append((now, window.inference_pct))
        while history and now - history[0][0] > cfg.history_s:
            history.popleft()
        if now - history[0][0] < cfg.min_history_s:
            return window
        return replace(window, typical_pct=statistics.median(v for _, v in history))

    def applied(
        self, actions: Sequence[RetrainAction], results: Sequence[ApplyResult]
    ) -> tuple[Decision, ...]:
        """Remember what was written; the decisions, a failed write reported as blocked."""
        by_target = {r.target: r for r in results}
        out: list[Decision] = []
        for action in actions:
            events, found = self._pending.pop(action.target, ((), ()))
            result = by_target.get(action.target)
            key = action.ref.key
            if result is not None and result.ok:
                self.memory[key] = written(self.memory.get(key, RetrainMemory()), action)
                self.events.extend(events)
                out.extend(replace(d, applied=True) for d in found)
                continue
            why = result.message if result is not None else "not applied"
            now = found[0].time_s if found else (events[0].time_s if events else 0.0)
            out.append(
                Decision(now, key, Reason.RETRAIN_BLOCKED, f"{action.message}: failed: {why}")
            )
        return tuple(out)


def _template(snapshot: ClusterSnapshot, ref: WorkloadRef, spec: RetrainSpec) -> JobTemplate | None:
    """The model's template as the snapshot resolves it (``None``: not resolved here)."""
    if snapshot.templates is None:
        return None
    found = snapshot.templates.get(f"{ref.namespace}/{spec.job_template}")
    if found is None:
        return JobTemplate(error="not found")
    return found


def written(memory: RetrainMemory, action: RetrainAction) -> RetrainMemory:
    """The memory after ``action`` was carried out (the loop calls this on success only)."""
    wm = Watermark.parse(action.watermark)
    created = memory.created
    if action.job_name is not None and action.job_name not in created:
        created = (*created[-7:], action.job_name)
    return replace(memory, written=wm, created=created)


__all__ = [
    "RETRAIN_OF_LABEL",
    "RETRAIN_REASONS",
    "WATERMARK_ANNOTATION",
    "Model",
    "RetrainBook",
    "RetrainConfig",
    "RetrainEvent",
    "RetrainInput",
    "RetrainMemory",
    "RetrainOutcome",
    "RetrainState",
    "RetrainStatus",
    "RetrainWindow",
    "Watermark",
    "backoff_s",
    "cooldown_left_s",
    "counter_reset",
    "forecast_growth",
    "free_share_pct",
    "job_name",
    "model_jobs",
    "newer",
    "start_reason",
    "step",
    "written",
]
