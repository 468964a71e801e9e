"""The rollback stage: a resize whose pods do not become ready is undone, and its size is not
tried again before a backoff expires.

A slice change rolls every pod (ARCHITECTURE §4). When the pods of the new template do not
become ready — Pending with no fit, a container in CrashLoopBackOff or OOMKilled at a smaller
memory, the Deployment's progress deadline exceeded — the adapter says so on the snapshot
(``DeploymentState.rollout_failure``), and this stage plans the *last good slice*, the one
whose pods were last all ready, with a ``AbleToScale=False reason=ResizeFailed`` condition
naming the cause. The failed size is backed off, 5 min at its first failure and twice as
long at each next one, up to an hour: meanwhile the slice stage does not consider it
(``RollbackMemory.blocked_pct``), and every decision carries a ``ScalingLimited``
condition with reason ``ResizeBackoff`` saying until when.

A rollback comes before the scale-down window's verdict: the pods it replaces are not
serving, so rolling a failed *grow* back to the smaller last good slice removes no capacity
the workload has; and it never removes a serving pod either, since it keeps at least the
ready replicas (the last good template's, still running under a stuck rollout) and raises
replicas to what the rate needs at the last good slice. The scale-down window then trims as
usual. A failure at the last good slice itself (a bad image, a full pool for a scale-up) is
no resize's fault: nothing is rolled back or backed off. A failure at the last good share
with another GPU memory (a template edited by hand to a smaller ``gpumem``) is a resize's:
the last good memory is restored, and no slice size is backed off.

Its memory (``RollbackMemory``) is the last good slice and the backoffs; it survives restarts
(``controller.persist``). Purely computational, no side effects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from controller.domain import (
    Allocation,
    ConditionType,
    DeploymentState,
    Reason,
    RolloutFailure,
    RolloutFailureReason,
)
from controller.policy.headroom import HeadroomConfig
from controller.policy.replicas import replicas_at_slice, sizing_rate_rps

if TYPE_CHECKING:
    from controller.policy.inputs import WorkloadInput
    from controller.policy.verdict import Proposal

ABLE = ConditionType.ABLE_TO_SCALE
LIMITED = ConditionType.SCALING_LIMITED


@dataclass(frozen=True, slots=True)
class RollbackConfig:
    """When a rollout counts as failed, and how long its size is backed off."""

    backoff_initial_s: float = 300.0  # the first failure of a size
    backoff_max_s: float = 3600.0  # doubling at each next failure, up to this
    unschedulable_grace_s: float = 120.0  # a pod Pending with no fit this long: failed


@dataclass(frozen=True, slots=True)
class SliceBackoff:
    """A slice size that failed: not chosen before ``until_s``; ``backoff_s`` is the length
    of this backoff (the next failure of the size doubles it)."""

    slice_pct: int
    until_s: float
    backoff_s: float
    reason: RolloutFailureReason


@dataclass(frozen=True, slots=True)
class RollbackMemory:
    """What the rollback stage remembers of one workload: the slice whose pods were last all
    ready, and the sizes that failed."""

    last_good_pct: int | None = None
    backoffs: tuple[SliceBackoff, ...] = ()
    last_good_mib: int | None = None  # the GPU memory the last good template gave a pod

    def active(self, now_s: float) -> tuple[SliceBackoff, ...]:
        """The backoffs not yet expired at ``now_s``."""
        return tuple(b for b in self.backoffs if b.until_s > now_s)

    def blocked_pct(self, now_s: float) -> frozenset[int]:
        """The slice sizes the slice stage must not choose at ``now_s``."""
        return frozenset(b.slice_pct for b in self.active(now_s))


# --- memory ---------------------------------------------------------------------------------


def remember_rollout(
    memory: RollbackMemory, state: DeploymentState, now_s: float, cfg: RollbackConfig
) -> RollbackMemory:
    """The memory after this tick's snapshot: a settled, healthy Deployment's slice is the
    last good one (and a backoff of that size is over: it works); a backoff that expired
    more than ``backoff_max_s`` ago is forgotten (the size's next failure starts afresh)."""
    last_good, last_mib = memory.last_good_pct, memory.last_good_mib
    backoffs = memory.backoffs
    if state.settled and state.rollout_failure is None and state.replicas > 0:
        last_good, last_mib = state.slice_pct, state.memory_mib
        backoffs = tuple(b for b in backoffs if b.slice_pct != state.slice_pct)
    backoffs = tuple(b for b in backoffs if now_s - b.until_s < cfg.backoff_max_s)
    after = RollbackMemory(last_good, backoffs, last_mib)
    return memory if after == memory else after


def back_off(
    memory: RollbackMemory,
    slice_pct: int,
    reason: RolloutFailureReason,
    now_s: float,
    cfg: RollbackConfig,
) -> RollbackMemory:
    """The memory with ``slice_pct`` backed off from ``now_s``: ``backoff_initial_s`` at its
    first failure, twice its last backoff at the next (at most ``backoff_max_s``). A size
    already backed off keeps its backoff: a failure seen again before its rollback is
    applied is the same failure."""
    if slice_pct in memory.blocked_pct(now_s):
        return memory
    before = next((b for b in memory.backoffs if b.slice_pct == slice_pct), None)
    length_s = cfg.backoff_initial_s
    if before is not None:
        length_s = min(cfg.backoff_max_s, 2.0 * before.backoff_s)
    others = tuple(b for b in memory.backoffs if b.slice_pct != slice_pct)
    entry = SliceBackoff(slice_pct, now_s + length_s, length_s, reason)
    return replace(memory, backoffs=(*others, entry))


# --- the stage ------------------------------------------------------------------------------


def failure_of(state: DeploymentState, now_s: float, cfg: RollbackConfig) -> RolloutFailure | None:
    """The rollout failure that counts: a crash or the progress deadline at once, a pod
    without a fit once it has waited ``unschedulable_grace_s`` (preemption or a scale-in
    may free room for it within a tick or two)."""
    failure = state.rollout_failure
    if failure is None or failure.reason is not RolloutFailureReason.UNSCHEDULABLE:
        return failure
    if failure.since_s is not None and now_s - failure.since_s < cfg.unschedulable_grace_s:
        return None
    return failure


def apply_rollback(
    inp: WorkloadInput,
    proposal: Proposal,
    now_s: float,
    headroom: float,
    cfg: RollbackConfig,
    headroom_cfg: HeadroomConfig,
) -> tuple[Proposal, RollbackMemory]:
    """Roll a failed resize back to the last good slice and back its size off; otherwise
    say which sizes are backed off. Returns the proposal and the stage's new memory."""
    memory = inp.memory.rollback
    failure = failure_of(inp.state, now_s, cfg)
    current, last_good = inp.current, memory.last_good_pct
    if (
        failure is None
        or last_good is None
        or (last_good == current.slice_pct and not memory_changed(memory, inp.state))
        or last_good not in inp.spec.slice_options_pct()  # the spec no longer allows it
    ):
        return backoff_condition(proposal, memory, now_s), memory
    target = Allocation(rollback_replicas(inp, last_good, headroom, headroom_cfg), last_good)
    if last_good == current.slice_pct:  # only the memory changed: the slice is not at fault
        message = (
            f"pods of the {current.slice_pct} % slice at {inp.state.memory_mib} MiB not ready: "
            f"{failure.describe()}; rolled back to {memory.last_good_mib} MiB"
        )
        return proposal.then(target, Reason.RESIZE_FAILED, ABLE, message, status=False), memory
    memory = back_off(memory, current.slice_pct, failure.reason, now_s, cfg)
    until = next(b for b in memory.backoffs if b.slice_pct == current.slice_pct)
    message = (
        f"pods of the {current.slice_pct} % slice not ready: {failure.describe()}; "
        f"rolled back to {last_good} %, {current.slice_pct} % not chosen again for "
        f"{until.backoff_s:.0f} s"
    )
    rolled = proposal.then(target, Reason.RESIZE_FAILED, ABLE, message, status=False)
    return rolled, memory


def memory_changed(memory: RollbackMemory, state: DeploymentState) -> bool:
    """The template's GPU memory is not the last good one's: a change at the same share
    (``gpumem`` halved by hand, say) is a resize too, and its failure is undone like one."""
    return memory.last_good_mib is not None and memory.last_good_mib != state.memory_mib


def rollback_memory_mib(memory: RollbackMemory, state: DeploymentState) -> int:
    """The GPU memory a rollback writes: the last good template's (an OOMKilled resize may
    have shrunk it), else the template's now."""
    return memory.last_good_mib or state.memory_mib


def rollback_replicas(
    inp: WorkloadInput, slice_pct: int, headroom: float, cfg: HeadroomConfig
) -> int:
    """Replicas of the last good slice: what the rate needs at it, and never fewer than the
    ready pods (a rollback removes no serving pod); blind, never fewer than what runs."""
    spec = inp.spec
    replicas = inp.state.ready_replicas
    if inp.metrics.core_available() and inp.capacity.known:
        budget_ms = spec.latency_target_ms * (1.0 - headroom)
        sized = replicas_at_slice(inp, slice_pct, sizing_rate_rps(inp, cfg), budget_ms)
        replicas = max(replicas, sized.replicas if sized is not None else spec.max_replicas)
    else:
        replicas = max(replicas, inp.current.replicas)
    return min(spec.max_replicas, max(spec.min_replicas, replicas))


def backoff_condition(proposal: Proposal, memory: RollbackMemory, now_s: float) -> Proposal:
    """The proposal with a ``ResizeBackoff`` condition while a size is backed off (its
    primary reason unchanged; the message names the backoff's length, not the time left, so
    that it changes only when the backoffs do)."""
    active = memory.active(now_s)
    if not active:
        return proposal
    message = ", ".join(
        f"{b.slice_pct} % slice backed off ({b.backoff_s:.0f} s) after {b.reason}"
        for b in sorted(active, key=lambda b: b.slice_pct)
    )
    return proposal.then(
        proposal.allocation, Reason.RESIZE_BACKOFF, LIMITED, message, primary=proposal.reason
    )
