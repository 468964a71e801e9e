"""Invariants of the planner for any spec, metrics, capacity estimate and pool."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.capacity import CapacityModel
from controller.domain import (
    Card,
    ClusterSnapshot,
    DeploymentState,
    Inventory,
    JobPhase,
    JobSpec,
    JobState,
    SliceAllocation,
    SloSpec,
    WorkloadMetrics,
    WorkloadRef,
)
from controller.plan import plan
from controller.policy.inputs import JobInput, PlannerMemory, WorkloadInput

MISSING = st.sampled_from([None, math.nan])
RATE = st.one_of(MISSING, st.floats(0, 500))
LATENCY = st.one_of(MISSING, st.floats(1, 5000))


@st.composite
def specs(draw: st.DrawFn) -> SloSpec:
    step = draw(st.sampled_from([10, 20, 50]))
    lo = draw(st.integers(1, 100 // step)) * step
    hi = draw(st.integers(lo // step, 100 // step)) * step
    min_r = draw(st.integers(0, 4))
    max_r = draw(st.integers(max(1, min_r), 12))
    return SloSpec(
        latency_target_ms=draw(st.floats(20, 3000)),
        latency_quantile=draw(st.sampled_from([0.5, 0.9, 0.95, 0.99])),
        min_replicas=min_r,
        max_replicas=max_r,
        slice_min_pct=lo,
        slice_max_pct=hi,
        slice_step_pct=step,
        priority=draw(st.sampled_from([-100, 0, 100, 1000])),
    )


@st.composite
def capacities(draw: st.DrawFn) -> CapacityModel:
    if draw(st.booleans()):
        return CapacityModel()
    cost = draw(st.floats(0.0005, 2.0))
    return CapacityModel(
        cost_card_s=cost,
        sat_pct=draw(st.one_of(st.none(), st.floats(5, 100))),
        explored_max_pct=draw(st.sampled_from([0, 10, 50, 100])),
        service_quantile_mult=draw(st.one_of(st.none(), st.floats(0.001, 10.0))),
        wait_shape=draw(st.floats(0.3, 3.0)),
        # a batching replica's knee: its serial work, never more than the request's cost
        serial_cost_card_s=draw(st.one_of(st.none(), st.floats(0.0001, 1.0).map(cost.__mul__))),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[WorkloadInput], list[JobInput], ClusterSnapshot]:
    n_cards = draw(st.integers(1, 8))
    cards = tuple(Card(f"n{i // 4}", i % 4, 81920) for i in range(n_cards))
    free = {c.card_id: 100 for c in cards}
    allocations: list[SliceAllocation] = []
    inputs: list[WorkloadInput] = []
    for w in range(draw(st.integers(1, 4))):
        spec = draw(specs())
        slice_pct = draw(st.sampled_from(spec.slice_options_pct()))
        replicas = draw(st.integers(spec.min_replicas, spec.max_replicas))
        ref = WorkloadRef("ns", f"w{w}")
        placed = 0
        for i in range(replicas):
            card = next((c for c, f in free.items() if f >= slice_pct), None)
            if card is None:
                break
            free[card] -= slice_pct
            allocations.append(SliceAllocation(ref.key, f"w{w}-{i}", card, slice_pct, 4096))
            placed += 1
        if placed < max(spec.min_replicas, 1) and replicas > 0:
            continue  # the pool cannot even hold what this workload runs now
        state = DeploymentState(ref, {}, placed, placed, slice_pct, 4096)
        metrics = WorkloadMetrics(
            request_rate_rps=draw(RATE),
            latency_ms=draw(LATENCY),
            good_ratio=draw(st.one_of(MISSING, st.floats(0, 1))),
        )
        if placed < spec.min_replicas:
            continue
        inputs.append(
            WorkloadInput(
                spec,
                state,
                metrics,
                draw(st.one_of(st.none(), st.floats(0, 500))),
                draw(capacities()),
                PlannerMemory(),
            )
        )
    jobs: list[JobInput] = []
    for j in range(draw(st.integers(0, 3))):
        pods, share = draw(st.integers(1, 3)), draw(st.sampled_from([10, 50, 100]))
        ref = WorkloadRef("batch", f"j{j}", "Job")
        cards_for = []
        for _ in range(pods):
            card = next((c for c, f in free.items() if f >= share and c not in cards_for), None)
            if card is None:
                break
            cards_for.append(card)
        running = len(cards_for) == pods and draw(st.booleans())
        if running:
            for i, card in enumerate(cards_for):
                free[card] -= share
                allocations.append(SliceAllocation(ref.key, f"j{j}-{i}", card, share, 1024))
        state = JobState(
            ref,
            {},
            pods,
            share,
            1024,
            JobPhase.RUNNING if running else JobPhase.SUSPENDED,
            started_at_s=draw(st.sampled_from([0.0, 3500.0])),
        )
        jobs.append(
            JobInput(
                state,
                JobSpec(
                    priority=draw(st.sampled_from([-100, 0, 100])), preemptible=draw(st.booleans())
                ),
            )
        )
    snap = ClusterSnapshot(
        3600.0,
        tuple(i.state for i in inputs),
        tuple(j.state for j in jobs),
        Inventory(cards, tuple(allocations)),
    )
    return inputs, jobs, snap


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_bounds_hold_and_slices_are_multiples_of_the_step(s) -> None:
    inputs, jobs, snap = s
    result = plan(inputs, jobs, snap)
    for inp in inputs:
        d = result.desired[inp.key]
        spec = inp.spec
        assert spec.min_replicas <= d.replicas <= spec.max_replicas
        assert spec.slice_min_pct <= d.slice_pct <= spec.slice_max_pct
        assert (d.slice_pct - spec.slice_min_pct) % spec.slice_step_pct == 0
        assert d.slice_pct % 10 == 0


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_planned_share_never_exceeds_the_inventory(s) -> None:
    inputs, jobs, snap = s
    result = plan(inputs, jobs, snap)
    suspended = {a.ref.key for a in result.plan.jobs if a.suspend}
    resumed = {a.ref.key for a in result.plan.jobs if not a.suspend}
    share = sum(result.desired[i.key].share_pct for i in inputs)
    for j in jobs:
        running = j.state.phase is JobPhase.RUNNING and j.state.ref.key not in suspended
        if running or j.state.ref.key in resumed:
            share += j.state.pods * j.state.share_pct_per_pod
    assert share <= snap.inventory.total_pct()


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_missing_or_nan_metrics_never_scale_down(s) -> None:
    inputs, jobs, snap = s
    result = plan(inputs, jobs, snap)
    for inp in inputs:
        m = inp.metrics
        rate_ok = m.request_rate_rps is not None and math.isfinite(m.request_rate_rps)
        latency_ok = m.latency_ms is not None and math.isfinite(m.latency_ms)
        # a window with no request has no latency and needs none: its zero rate is a reading
        no_traffic = rate_ok and m.request_rate_rps == 0.0
        if not rate_ok or not (latency_ok or no_traffic):
            assert result.desired[inp.key] == inp.current


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_no_preemption_of_equal_or_higher_priority(s) -> None:
    inputs, jobs, snap = s
    result = plan(inputs, jobs, snap)
    top = max((i.spec.priority for i in inputs), default=-(10**9))
    by_key = {j.state.ref.key: j for j in jobs}
    for a in result.plan.jobs:
        if a.suspend:
            victim = by_key[a.ref.key]
            assert victim.spec.preemptible
            assert victim.spec.priority < top
