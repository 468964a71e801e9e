"""Victims, resumes and idle reclaim (issue 6), with the arithmetic in the comments."""

from dataclasses import replace

import pytest

from controller.capacity import CapacityModel
from controller.domain import (
    Allocation,
    Card,
    Inventory,
    JobPhase,
    JobSpec,
    JobState,
    Reason,
    SliceAllocation,
    WorkloadRef,
)
from controller.placement.fit import drain_order
from controller.placement.pool import SlicePool
from controller.placement.preemption import (
    JobSlot,
    candidates,
    choose_victims,
    work_at_risk_gpu_s,
)
from controller.placement.resume import resume_cooldown_s
from controller.plan import plan
from controller.policy.inputs import JobInput, PlannerMemory
from controller.policy.reclaim import idle_since
from tests.unit.test_planner import LEARNT, snapshot, workload

CARDS = tuple(Card("n1", i, 81920) for i in range(2))


def job(
    name: str,
    share: int = 50,
    started: float = 0.0,
    priority: int = -100,
    interval: float | None = 600.0,
    pods: int = 1,
    phase: JobPhase = JobPhase.RUNNING,
    **spec: float,
) -> JobInput:
    state = JobState(WorkloadRef("b", name, "Job"), {}, pods, share, 1024, phase, started)
    return JobInput(
        state,
        JobSpec(
            priority=priority,
            preemptible=True,
            checkpoint_interval_s=interval,
            **spec,  # type: ignore[arg-type]
        ),
    )


def slot(j: JobInput, *cards: str) -> JobSlot:
    return JobSlot(j, [(c, j.state.share_pct_per_pod, 1024) for c in cards])


def pool_with(*slots: JobSlot) -> SlicePool:
    allocations = tuple(
        SliceAllocation(s.inp.key, f"p{i}", card, pct, mib)
        for s in slots
        for i, (card, pct, mib) in enumerate(s.allocations)
    )
    return SlicePool(Inventory(CARDS, allocations))


class TestWorkAtRisk:
    @pytest.mark.parametrize(
        ("runtime_s", "expected_gpu_s"),
        [
            pytest.param(300.0, 150.0, id="before-the-first-checkpoint"),  # 0.5 card x 300 s
            pytest.param(660.0, 330.0, id="just-at-the-first"),  # 600 s productive: not yet past
            pytest.param(1000.0, 170.0, id="after-one"),  # (1000 - 60) % 600 = 340 s x 0.5
        ],
    )
    def test_time_since_the_last_checkpoint_times_gpus(
        self, runtime_s: float, expected_gpu_s: float
    ) -> None:
        assert work_at_risk_gpu_s(job("a"), 50, runtime_s) == pytest.approx(
            expected_gpu_s if runtime_s != 660.0 else 0.0
        )


class TestVictims:
    def test_lowest_priority_first_then_least_work_lost(self) -> None:
        # at t=1000: a lost (1000 - 60) % 600 = 340 s, b 100 s (started 300: 700-60=640 % 600=40?)
        a, b = job("a", started=0.0), job("b", started=300.0)
        c = job("c", started=0.0, priority=-50)
        ranked = candidates(
            [slot(c, "n1/0"), slot(a, "n1/0"), slot(b, "n1/1")], 0, 1000.0, allow_protected=False
        )
        # a: 340 s x 0.5; b: (700 - 60) % 600 = 40 s x 0.5; c has the higher priority
        assert [s.inp.key for s in ranked] == ["b/b", "b/a", "b/c"]

    def test_protected_and_equal_priority_jobs_are_not_candidates(self) -> None:
        young = job("young", started=900.0)  # 100 s into its 600 s minimum runtime
        peer = job("peer", priority=0)
        ranked = candidates(
            [slot(young, "n1/0"), slot(peer, "n1/1")], 0, 1000.0, allow_protected=False
        )
        assert ranked == []

    def test_victims_free_a_card_the_demand_can_use(self) -> None:
        # card 0: jobs a and b at 50 % each; card 1: c at 50 % beside x (not a candidate).
        # A 100 % slice fits only on an emptied card 0: both a and b go, c (cheapest) stays.
        a, b = slot(job("a", started=0.0), "n1/0"), slot(job("b", started=0.0), "n1/0")
        c, x = slot(job("c", started=300.0), "n1/1"), slot(job("x"), "n1/1")
        victims = choose_victims(pool_with(a, b, c, x), [(100, 1024)], [c, a, b])
        assert sorted(v.inp.key for v in victims) == ["b/a", "b/b"]

    def test_one_victim_when_one_suffices(self) -> None:
        # a 50 % slice: freeing any one job's 50 % is enough; the cheapest one is chosen
        a, b = slot(job("a", started=0.0), "n1/0"), slot(job("b", started=300.0), "n1/1")
        pool = pool_with(a, b, slot(job("x"), "n1/0"), slot(job("y"), "n1/1"))
        victims = choose_victims(pool, [(50, 1024)], [b, a])
        assert [v.inp.key for v in victims] == ["b/b"]


class TestResume:
    def test_hysteresis_doubles_the_cooldown_with_each_recent_preemption(self) -> None:
        j = replace(job("a", phase=JobPhase.SUSPENDED), preempted_s=(0.0, 1000.0, 2000.0))
        assert resume_cooldown_s(j, 3000.0, 900.0, 14400.0) == 3600.0  # 900 x 2^(3-1)

    def test_no_resume_when_the_forecast_needs_the_room_within_the_horizon(self) -> None:
        # 4 cards; chat holds 1 x 100 %; a 2-card job would fit the 3 free cards now, but the
        # resume-horizon forecast (150 rps) needs 4 replicas of 100 %: 3 more, so no room.
        sat = replace(LEARNT, sat_pct=100.0)
        inp = workload(rate=10.0, slice_pct=100, replicas=1, capacity=sat)
        j = job("train", share=100, pods=2, phase=JobPhase.SUSPENDED)
        calm = plan([inp], [j], snapshot(inp, jobs=(j.state,)))
        assert [a.reason for a in calm.plan.jobs] == [Reason.RESUMED]
        busy = replace(inp, resume_rate_rps=150.0)
        result = plan([busy], [j], snapshot(busy, jobs=(j.state,)))
        assert result.plan.jobs == ()

    def test_a_capacity_model_not_learnt_keeps_a_reserve(self) -> None:
        inp = workload(rate=10.0, slice_pct=100, replicas=2, capacity=CapacityModel())
        j = job("train", share=100, pods=2, phase=JobPhase.SUSPENDED)
        # 4 cards, 2 held, a 2-card gang would leave no room for the 1-replica reserve
        assert plan([inp], [j], snapshot(inp, jobs=(j.state,))).plan.jobs == ()


class TestIdleReclaim:
    def test_the_tracker_starts_keeps_and_clears(self) -> None:
        assert idle_since(None, 0.01, 100.0) == 100.0
        assert idle_since(100.0, 0.02, 200.0) == 100.0
        assert idle_since(100.0, None, 300.0) == 100.0  # missing is no evidence either way
        assert idle_since(100.0, 0.5, 400.0) is None

    def test_an_idle_job_is_suspended_with_the_reason(self) -> None:
        inp = workload(rate=10.0, slice_pct=50, replicas=1)
        idle = replace(job("nb", share=50, reclaim_idle_after_s=1800.0), idle_since_s=-900.0)
        result = plan([inp], [idle], snapshot(inp, jobs=(idle.state,)))
        assert [(a.ref.name, a.suspend) for a in result.plan.jobs] == [("nb", True)]
        decision = next(d for d in result.decisions if d.target == "b/nb")
        assert "idle reclaim" in decision.message


class TestDrainOrder:
    def test_a_scale_in_removes_the_pods_on_the_emptiest_cards(self) -> None:
        # chat: 3 x 30 %, two on card 0 (shared with a 40 % job: 100 % used), one alone on
        # card 1 (30 % used). Going to 2 replicas removes the lone pod: card 1 comes free whole.
        inp = workload(rate=1.0, slice_pct=30, replicas=3, latency=50.0)
        j = job("train", share=40)
        alloc = (
            SliceAllocation(inp.key, "chat-a", CARDS[0].card_id, 30, 8192),
            SliceAllocation(inp.key, "chat-b", CARDS[1].card_id, 30, 8192),
            SliceAllocation(inp.key, "chat-c", CARDS[0].card_id, 30, 8192),
            SliceAllocation(j.key, "train-0", CARDS[0].card_id, 40, 1024),
        )
        snap = replace(snapshot(inp, jobs=(j.state,)), inventory=Inventory(CARDS, alloc))
        # planned before, its scale-down window long past (a first sight would hold 3)
        seen = PlannerMemory(((-3600.0, Allocation(3, 30)),))
        down = replace(inp, spec=replace(inp.spec, min_replicas=2), memory=seen)
        result = plan([down], [j], snap)
        (action,) = result.plan.scale
        assert action.target.replicas == 2
        assert action.remove_pods == ("chat-b",)
        one = plan([replace(down, spec=replace(inp.spec, min_replicas=1))], [j], snap)
        assert one.plan.scale[0].remove_pods == ("chat-b", "chat-c")  # emptiest card first
        assert sorted(c for c, _, _ in result.placements[inp.key]) == [CARDS[0].card_id] * 2

    def test_not_ready_pods_go_before_ready_ones(self) -> None:
        used = {"c0": 90, "c1": 30}
        pods = [
            SliceAllocation("w", "ready-sparse", "c1", 30, 1),
            SliceAllocation("w", "starting", "c0", 30, 1, ready=False),
            SliceAllocation("w", "ready-full", "c0", 30, 1),
        ]
        keep_first = [a.pod for a in drain_order(pods, used)]
        assert keep_first == ["ready-full", "ready-sparse", "starting"]

    def test_a_scale_up_names_no_pods(self) -> None:
        inp = workload(rate=200.0, slice_pct=50, replicas=1)
        result = plan([inp], [], snapshot(inp))
        assert all(a.remove_pods == () for a in result.plan.scale)
