"""Every model's retraining across ticks (``RetrainBook``), as the loop drives it.

The loop hands in the snapshot and each opted-in model's sample count (``Model``); the book
runs ``step`` per model and returns the actions to apply and the decisions; after ``apply``
the loop reports the results (``applied``), and what was written is remembered (``written``).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from controller.domain import (
    ApplyResult,
    ClusterSnapshot,
    Condition,
    ConditionType,
    Decision,
    DeploymentState,
    JobTemplate,
    Reason,
    RetrainAction,
    RetrainSpec,
    WorkloadRef,
    available,
)
from controller.retrain.step import (
    RetrainEvent,
    RetrainInput,
    RetrainMemory,
    RetrainStatus,
    step,
)
from controller.retrain.watermark import Watermark, model_jobs
from controller.retrain.window import RetrainConfig, RetrainWindow, free_share_pct


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
        self._typical_pct: float | None = None  # the median of ``inference``, while unchanged
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

    def forget(self) -> None:
        """Drop every model's memory, as a restart does (harmless: the state that counts is
        on the cluster). For a replica whose ticks were in shadow mode and that now acts:
        the watermarks and Jobs that memory took as written never were."""
        self.memory.clear()

    def _window(
        self, snapshot: ClusterSnapshot, inference_pct: Mapping[str, float]
    ) -> RetrainWindow:
        """This tick's window, with inference's median share over the last day."""
        now, cfg = snapshot.time_s, self.config
        window = free_share_pct(snapshot, inference_pct)
        history = self.inference
        if not history or now - history[-1][0] >= cfg.sample_every_s:
            history.append((now, window.inference_pct))
            self._typical_pct = None
        while history and now - history[0][0] > cfg.history_s:
            history.popleft()
            self._typical_pct = None
        if now - history[0][0] < cfg.min_history_s:
            return window
        if self._typical_pct is None:  # the median changes only with the samples (every 5 min)
            self._typical_pct = statistics.median(v for _, v in history)
        return replace(window, typical_pct=self._typical_pct)

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
            message = f"{action.message}: failed: {why}"
            blocked = Condition(ConditionType.RETRAINING, False, Reason.RETRAIN_BLOCKED, message)
            out.append(Decision(now, key, Reason.RETRAIN_BLOCKED, message, conditions=(blocked,)))
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


__all__ = ["Model", "RetrainBook", "forecast_growth", "written"]
