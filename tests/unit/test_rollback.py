"""The rollback stage (faults: a failed resize rolls back), one rule at a time, with the
arithmetic in the comments. Capacity as in ``test_planner``: mu(s) = s / 0.02 rps, and a
replica takes mu - 9.21 rps under a 500 ms p99 (no headroom)."""

from dataclasses import replace

import pytest

from controller.domain import (
    Allocation,
    Card,
    ConditionType,
    Reason,
    RolloutFailure,
    RolloutFailureReason,
)
from controller.plan import PlannerConfig, plan
from controller.policy.inputs import PlannerMemory, WorkloadInput
from controller.policy.rollback import (
    RollbackConfig,
    RollbackMemory,
    SliceBackoff,
    apply_rollback,
    back_off,
    remember_rollout,
)
from controller.policy.size import size
from controller.policy.slices import slice_candidates
from controller.policy.verdict import Proposal
from tests.unit.test_planner import snapshot, workload

CFG = PlannerConfig()
RB = RollbackConfig()
NOW = 10_000.0
OOM = RolloutFailure(RolloutFailureReason.OOM_KILLED, NOW - 30.0, "pod chat-7d9-x: container model")
GOOD_50 = RollbackMemory(last_good_pct=50)


def failing(
    inp: WorkloadInput, failure: RolloutFailure | None = OOM, *, ready: int | None = None
) -> WorkloadInput:
    """``inp`` whose rollout to its current template is stuck with ``failure``."""
    state = replace(
        inp.state,
        rollout_in_progress=True,
        rollout_failure=failure,
        ready_replicas=inp.state.ready_replicas if ready is None else ready,
    )
    return replace(inp, state=state)


def with_rollback(inp: WorkloadInput, memory: RollbackMemory) -> WorkloadInput:
    return replace(inp, memory=replace(inp.memory, rollback=memory))


def held(inp: WorkloadInput) -> Proposal:
    return Proposal.first(inp.current, Reason.ROLLOUT_IN_PROGRESS, ConditionType.SCALING_ACTIVE, "")


def roll(inp: WorkloadInput, headroom: float = 0.0) -> tuple[Proposal, RollbackMemory]:
    return apply_rollback(inp, held(inp), NOW, headroom, RB, CFG.headroom)


class TestRollback:
    def test_a_failed_shrink_rolls_back_to_the_last_good_slice(self) -> None:
        # 2 x 50 % shrank to 4 x 30 % (the share kept while rolling), whose pods are
        # OOMKilled; the two 50 % pods still serve. 40 rps at 50 %: 40 / (25 - 9.21) -> 3
        inp = with_rollback(failing(workload(replicas=4, slice_pct=30), ready=2), GOOD_50)
        prop, memory = roll(inp)
        assert prop.allocation == Allocation(3, 50)
        assert prop.reason is Reason.RESIZE_FAILED
        last = prop.conditions[-1]
        assert (last.type, last.status) == (ConditionType.ABLE_TO_SCALE, False)
        assert "OOMKilled" in last.message and "pod chat-7d9-x" in last.message
        assert "rolled back to 50 %" in last.message
        assert memory.backoffs == (
            SliceBackoff(30, NOW + 300.0, 300.0, RolloutFailureReason.OOM_KILLED),
        )

    def test_a_failed_grow_rolls_back_to_the_smaller_slice_and_scales_out(self) -> None:
        # 3 x 50 % grew to 4 x 100 % for a burst; its pods are Pending with no fit for 5 min.
        # The 100 % pods serve nothing, so 50 % is no scale-down of what serves: the burst's
        # 40 rps at 50 % needs 3, and no ready pod is removed (3 still ready)
        stuck = RolloutFailure(RolloutFailureReason.UNSCHEDULABLE, NOW - 300.0, "pod chat-1")
        inp = with_rollback(failing(workload(replicas=4, slice_pct=100), stuck, ready=3), GOOD_50)
        prop, _ = roll(inp)
        assert prop.allocation == Allocation(3, 50)
        # at 80 rps: 80 / 15.79 -> 6 replicas of 50 %, scaled out rather than left short
        busy = replace(inp, metrics=replace(inp.metrics, request_rate_rps=80.0))
        assert roll(busy)[0].allocation == Allocation(6, 50)

    def test_a_rollback_keeps_every_ready_pod(self) -> None:
        # 10 rps at 50 % needs 1 replica, but 4 pods of 50 % are ready: none is removed
        inp = failing(workload(replicas=4, slice_pct=30, rate=10.0), ready=4)
        prop, _ = roll(with_rollback(inp, GOOD_50))
        assert prop.allocation == Allocation(4, 50)

    def test_blind_a_rollback_keeps_the_replicas_that_run(self) -> None:
        inp = failing(workload(replicas=4, slice_pct=30, rate=None, latency=None), ready=2)
        prop, _ = roll(with_rollback(inp, GOOD_50))
        assert prop.allocation == Allocation(4, 50)

    @pytest.mark.parametrize(
        ("case", "memory", "failure"),
        [
            ("no failure", GOOD_50, None),
            ("no good slice known", RollbackMemory(), OOM),
            ("failing at the good slice: not the resize's fault", RollbackMemory(30), OOM),
            (
                "unschedulable for less than the grace",
                GOOD_50,
                RolloutFailure(RolloutFailureReason.UNSCHEDULABLE, NOW - 60.0),
            ),
        ],
    )
    def test_nothing_to_roll_back(
        self, case: str, memory: RollbackMemory, failure: RolloutFailure | None
    ) -> None:
        inp = with_rollback(failing(workload(replicas=4, slice_pct=30), failure), memory)
        prop, after = roll(inp)
        assert prop == held(inp), case
        assert after == memory, case

    @pytest.mark.parametrize(
        "reason",
        [
            RolloutFailureReason.CRASH_LOOP,
            RolloutFailureReason.OOM_KILLED,
            RolloutFailureReason.PROGRESS_DEADLINE,
        ],
    )
    def test_a_crash_or_the_progress_deadline_counts_at_once(
        self, reason: RolloutFailureReason
    ) -> None:
        inp = failing(workload(replicas=2, slice_pct=30), RolloutFailure(reason, NOW))
        prop, _ = roll(with_rollback(inp, GOOD_50))
        assert prop.reason is Reason.RESIZE_FAILED


class TestBackoff:
    def test_doubles_at_each_failure_up_to_an_hour(self) -> None:
        # 300, 600, 1200, 2400, then 3600 (not 4800), then 3600
        memory, t, lengths = GOOD_50, 0.0, []
        for _ in range(6):
            memory = back_off(memory, 30, RolloutFailureReason.OOM_KILLED, t, RB)
            (entry,) = memory.backoffs
            lengths.append(entry.backoff_s)
            t = entry.until_s + 15.0  # retried once it expired, and failed again
        assert lengths == [300.0, 600.0, 1200.0, 2400.0, 3600.0, 3600.0]

    def test_the_same_failure_seen_again_does_not_extend_it(self) -> None:
        first = back_off(GOOD_50, 30, RolloutFailureReason.OOM_KILLED, NOW, RB)
        assert back_off(first, 30, RolloutFailureReason.OOM_KILLED, NOW + 15.0, RB) == first

    def test_a_backed_off_size_is_no_candidate_until_it_expires(self) -> None:
        inp = workload()
        assert 100 in slice_candidates(inp, NOW)
        blocked = back_off(GOOD_50, 100, RolloutFailureReason.OOM_KILLED, NOW, RB)
        assert 100 not in slice_candidates(with_rollback(inp, blocked), NOW + 299.0)
        assert 100 in slice_candidates(with_rollback(inp, blocked), NOW + 300.0)

    def test_sizing_does_not_choose_a_backed_off_size(self) -> None:
        # 40 rps: 1 x 100 % (100 %) is cheapest; backed off, the next is 2 x 60 % (120 %),
        # not worth a rollout from 2 x 50 % (needs 3 x 50 % = 150 %; 120 > 0.75 x 150)
        inp = workload()
        assert size(inp, 0.0, CFG, NOW).allocation == Allocation(1, 100)
        blocked = back_off(GOOD_50, 100, RolloutFailureReason.OOM_KILLED, NOW, RB)
        assert size(with_rollback(inp, blocked), 0.0, CFG, NOW).allocation == Allocation(3, 50)

    def test_memory_learns_the_good_slice_and_forgets_a_size_that_works(self) -> None:
        settled = workload(slice_pct=60).state  # 8192 MiB
        blocked = back_off(GOOD_50, 60, RolloutFailureReason.OOM_KILLED, 0.0, RB)
        after = remember_rollout(blocked, settled, 400.0, RB)
        assert after == RollbackMemory(60, (), 8192)  # 60 % worked on its retry

    def test_a_failing_rollout_does_not_move_the_good_slice(self) -> None:
        state = failing(workload(slice_pct=30)).state
        assert remember_rollout(GOOD_50, state, NOW, RB) == GOOD_50

    def test_a_long_expired_backoff_is_forgotten(self) -> None:
        blocked = back_off(GOOD_50, 30, RolloutFailureReason.OOM_KILLED, 0.0, RB)
        state = failing(workload(slice_pct=50)).state
        assert remember_rollout(blocked, state, 300.0 + 3599.0, RB).backoffs
        assert not remember_rollout(blocked, state, 300.0 + 3600.0, RB).backoffs


class TestThroughThePlan:
    def test_the_plan_rolls_back_and_later_decisions_say_the_size_is_backed_off(self) -> None:
        inp = failing(workload(replicas=4, slice_pct=30), ready=2)
        inp = replace(inp, memory=PlannerMemory(rollback=GOOD_50))
        result = plan([inp], [], snapshot(inp, t=NOW))
        (action,) = result.plan.scale
        assert action.target.slice_pct == 50 and action.reason is Reason.RESIZE_FAILED
        assert action.memory_mib == 8192  # the template's now: no good memory remembered
        shrunk = replace(inp, state=replace(inp.state, memory_mib=4096))
        good = replace(shrunk, memory=PlannerMemory(rollback=RollbackMemory(50, (), 8192)))
        (restored,) = plan([good], [], snapshot(good, t=NOW)).plan.scale
        assert restored.memory_mib == 8192  # the OOMKilled resize's 4096 MiB is undone
        assert result.decisions[0].reason is Reason.RESIZE_FAILED
        memory = result.memories[inp.key]
        assert memory.rollback.blocked_pct(NOW) == {30}
        # the next tick, rolled back and settled at 3 x 50 %: the condition stays
        rolled = replace(workload(replicas=3, slice_pct=50), memory=memory)
        later = plan([rolled], [], snapshot(rolled, t=NOW + 15.0))
        backoff = [c for c in later.decisions[0].conditions if c.reason is Reason.RESIZE_BACKOFF]
        assert [(c.type, c.status) for c in backoff] == [(ConditionType.SCALING_LIMITED, True)]
        assert "30 % slice backed off (300 s) after OOMKilled" in backoff[0].message


def test_a_capacity_limited_rollback_still_writes_the_last_good_memory() -> None:
    """Found by the fault soak: rerank's template halved to 12 GiB at 70 %, its pods
    OOMKilled, and the rollback wanted more replicas than the pool held. The fit stage made
    the decision ``CapacityLimited``, and the plan then wrote the template's (broken) memory
    instead of the last good one: the rollback never happened, for hours."""
    inp = failing(workload(replicas=2, slice_pct=50, rate=80.0))  # 1.6 cards: 4 x 50 %
    inp = with_rollback(inp, RollbackMemory(50, (), 16384))  # the template has 8192 MiB
    one_card = (Card("n1", 0, 81920),)  # holds only the 2 x 50 % it has
    result = plan([inp], [], snapshot(inp, cards=one_card, t=NOW))
    (action,) = result.plan.scale
    assert action.target == Allocation(2, 50) and action.memory_mib == 16384
    (decision,) = result.decisions
    assert decision.reason is Reason.CAPACITY_LIMITED
    assert any(c.reason is Reason.RESIZE_FAILED for c in decision.conditions)
