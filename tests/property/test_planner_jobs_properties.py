"""Invariants of preemption, resume and placement for any workloads, jobs and pool (issue 6)."""

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.domain import (
    PRIORITY_NAMES,
    Card,
    Inventory,
    JobPhase,
    JobSpec,
    JobState,
    Reason,
    SliceAllocation,
    WorkloadRef,
)
from controller.placement.pool import SlicePool
from controller.placement.preemption import JobSlot, choose_victims
from controller.plan import plan
from controller.policy.inputs import JobInput
from tests.property.test_planner_properties import scenarios

CRITICAL = PRIORITY_NAMES["critical"]


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_planned_slices_never_exceed_any_card(s) -> None:
    inputs, jobs, snap = s
    result = plan(inputs, jobs, snap)
    share: dict[str, int] = defaultdict(int)
    mib: dict[str, int] = defaultdict(int)
    for slices in result.placements.values():
        for card, pct, m in slices:
            share[card] += pct
            mib[card] += m
    cards = {c.card_id: c for c in snap.inventory.cards}
    for card, used in share.items():
        assert used <= cards[card].capacity_pct
        assert mib[card] <= cards[card].memory_mib
    for inp in inputs:  # what is planned is exactly what is placed
        desired = result.desired[inp.key]
        assert len(result.placements[inp.key]) == desired.replicas
        assert all(pct == desired.slice_pct for _, pct, _ in result.placements[inp.key])


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_a_gang_is_never_split(s) -> None:
    inputs, jobs, snap = s
    result = plan(inputs, jobs, snap)
    suspended = {a.ref.key for a in result.plan.jobs if a.suspend}
    resumed = {a.ref.key for a in result.plan.jobs if not a.suspend}
    held = defaultdict(list)
    for a in snap.inventory.allocations:
        held[a.owner].append((a.card_id, a.share_pct, a.memory_mib))
    for j in jobs:
        key = j.state.ref.key
        placed = result.placements.get(key, [])
        if key in suspended:
            assert key not in result.placements  # all of its slices go back
        elif key in resumed:
            assert len(placed) == j.state.pods  # all of its pods or none
        elif j.state.phase is JobPhase.RUNNING:
            assert sorted(placed) == sorted(held[key])  # kept whole where it runs


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_victims_have_lower_priority_than_their_claimant_and_respect_min_runtime(s) -> None:
    inputs, jobs, snap = s
    result = plan(inputs, jobs, snap)
    by_key = {j.state.ref.key: j for j in jobs}
    claimants = {i.key: i.spec.priority for i in inputs}
    messages = {d.target: d.message for d in result.decisions}
    for a in result.plan.jobs:
        if not a.suspend or a.reason is not Reason.PREEMPTED:
            continue
        victim = by_key[a.ref.key]
        claimant = messages[a.ref.key].split()[2]  # "preempted for ns/name (...)"
        assert victim.spec.preemptible
        assert victim.spec.priority < claimants[claimant]
        started = victim.state.started_at_s
        assert started is not None
        if snap.time_s - started < victim.spec.min_runtime_s:
            assert claimants[claimant] >= CRITICAL  # the only exception


@st.composite
def fragmented(draw: st.DrawFn) -> tuple[SlicePool, list[JobSlot], list[tuple[int, int]]]:
    """A pool whose cards are shared by several jobs, and a demand of equal slices."""
    n_cards = draw(st.integers(1, 6))
    cards = tuple(Card("n", i, 81920) for i in range(n_cards))
    allocations: list[SliceAllocation] = []
    slots: list[JobSlot] = []
    for j in range(draw(st.integers(1, 8))):
        card = draw(st.integers(0, n_cards - 1))
        pct = draw(st.sampled_from([10, 20, 30, 50]))
        used = sum(a.share_pct for a in allocations if a.card_id == cards[card].card_id)
        if used + pct > 100:
            continue
        ref = WorkloadRef("b", f"j{j}", "Job")
        allocations.append(SliceAllocation(ref.key, f"p{j}", cards[card].card_id, pct, 1024))
        state = JobState(ref, {}, 1, pct, 1024, JobPhase.RUNNING, 0.0)
        slots.append(
            JobSlot(JobInput(state, JobSpec(preemptible=True)), [(cards[card].card_id, pct, 1024)])
        )
    pool = SlicePool(Inventory(cards, tuple(allocations)))
    slice_pct = draw(st.sampled_from([20, 50, 80, 100]))
    demand = [(slice_pct, 1024)] * draw(st.integers(1, 4))
    return pool, slots, demand


@settings(max_examples=300, deadline=None)
@given(fragmented())
def test_every_victim_is_needed_and_helps_place_the_demand(case) -> None:
    pool, slots, demand = case
    victims = choose_victims(pool, demand, slots)
    if not victims:
        return

    def placeable(without: list[JobSlot]) -> int:
        trial = pool.copy()
        for v in without:
            trial.release_all(v.allocations)
        return trial.placeable(demand)

    best = placeable(victims)
    assert best > pool.placeable(demand)  # preempting them places more of the demand
    for v in victims:  # and none of them could be spared
        assert placeable([x for x in victims if x is not v]) < best
