"""Planner steps, one at a time, with the arithmetic in the comments."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.capacity import CapacityModel, quantile_multiplier
from controller.domain import (
    Allocation,
    Card,
    ClusterSnapshot,
    ConditionType,
    DeploymentState,
    Inventory,
    JobPhase,
    JobSpec,
    JobState,
    Reason,
    SliceAllocation,
    SloSpec,
    WorkloadMetrics,
    WorkloadRef,
)
from controller.placement.fit import fit
from controller.plan import PlannerConfig, plan
from controller.policy.headroom import (
    headroom_floor,
    next_headroom,
    next_rate_margin,
    paced_burn_rate,
    window_was_sized_for,
)
from controller.policy.inputs import JobInput, PlannerMemory, WorkloadInput
from controller.policy.replicas import backlog_rps, sizing_rate_rps
from controller.policy.size import size
from controller.policy.slices import SliceMemory, decayed_peak_rps, profile_share_pct
from controller.policy.stabilise import (
    apply_bounds,
    apply_fresh_window,
    apply_scale_down_delay,
    apply_step_limit,
    apply_tolerance,
)
from controller.policy.verdict import Proposal

SPEC = SloSpec(latency_target_ms=500.0, max_replicas=16)
# 0.02 card-seconds per request, latency calibrated to the exponential prior (a = z at p99)
LEARNT = CapacityModel(
    cost_card_s=0.02, explored_max_pct=100, service_quantile_mult=quantile_multiplier(0.99)
)
NO_HEADROOM = 0.0
CFG = PlannerConfig()


def with_slices(cfg: PlannerConfig, **changes: float) -> PlannerConfig:
    """``cfg`` with its slice stage's ``changes``."""
    return replace(cfg, slices=replace(cfg.slices, **changes))


FRESH = PlannerMemory()
CARDS = tuple(Card("n1", i, 81920) for i in range(4))


def workload(
    replicas: int = 2,
    slice_pct: int = 50,
    rate: float | None = 40.0,
    latency: float | None = 300.0,
    capacity: CapacityModel = LEARNT,
    spec: SloSpec = SPEC,
    memory: PlannerMemory = FRESH,
    name: str = "chat",
    forecast: float | None = None,
) -> WorkloadInput:
    ref = WorkloadRef("prod", name)
    state = DeploymentState(ref, {}, replicas, replicas, slice_pct, 8192)
    m = WorkloadMetrics(request_rate_rps=rate, latency_ms=latency, good_ratio=1.0)
    return WorkloadInput(spec, state, m, forecast, capacity, memory)


def snapshot(*inputs: WorkloadInput, jobs: tuple[JobState, ...] = (), cards=CARDS, t=1000.0):
    allocations, free = [], {c.card_id: c.capacity_pct for c in cards}
    for inp in inputs:
        for i in range(inp.state.replicas):
            card = next(c for c, f in free.items() if f >= inp.state.slice_pct)
            free[card] -= inp.state.slice_pct
            allocations.append(SliceAllocation(inp.key, f"p{i}", card, inp.state.slice_pct, 8192))
    for j in jobs:
        if j.phase is JobPhase.RUNNING:
            for i in range(j.pods):
                card = next(c for c, f in free.items() if f >= j.share_pct_per_pod)
                free[card] -= j.share_pct_per_pod
                allocations.append(
                    SliceAllocation(j.ref.key, f"j{i}", card, j.share_pct_per_pod, 1024)
                )
    return ClusterSnapshot(
        t, tuple(i.state for i in inputs), jobs, Inventory(cards, tuple(allocations))
    )


class TestSize:
    def test_cheapest_allocation_for_the_rate(self) -> None:
        # mu(s) = s / 0.02; a replica takes mu - ln(100)/0.5 = mu - 9.21 rps under 500 ms p99.
        # 40 rps: 50 % -> 3 x 15.8 (150 %), 60 % -> 2 x 20.8 (120 %), 100 % -> 1 x 40.8 (100 %)
        p = size(workload(), NO_HEADROOM, CFG)
        assert p.allocation == Allocation(1, 100)
        assert p.reason is Reason.RESIZE

    def test_no_rollout_before_the_latency_model_is_calibrated(self) -> None:
        # the 1 x 100 % above is the prior's guess until a window calibrated the latency
        # model: a rollout on a guess can take serving pods down, so scale out instead
        uncalibrated = replace(LEARNT, service_quantile_mult=None)
        p = size(workload(capacity=uncalibrated), NO_HEADROOM, CFG)
        assert p.allocation == Allocation(3, 50)

    def test_a_burning_window_scales_out_instead_of_rolling_the_pods(self) -> None:
        # the 1 x 100 % above, but the window misses the target for a tenth of its requests
        # (burn 10): a rollout would replace serving pods; 3 x 50 % adds pods next to them
        inp = workload()
        missing = replace(inp.metrics, good_ratio=0.9)
        p = size(replace(inp, metrics=missing), NO_HEADROOM, CFG)
        assert p.allocation == Allocation(3, 50)
        assert p.reason is Reason.SCALE_UP

    def test_saturation_makes_larger_slices_worthless(self) -> None:
        # the model uses at most 60 % of a card: slices above 70 % are not even considered,
        # so 2 x 60 % (120 %) beats the 1 x 100 % (100 %) that the unsaturated model picks
        p = size(workload(slice_pct=60, capacity=replace(LEARNT, sat_pct=60.0)), NO_HEADROOM, CFG)
        assert p.allocation == Allocation(2, 60)

    def test_small_resize_savings_keep_the_current_slice(self) -> None:
        # at 60 % now: 2 x 60 = 120 %; 1 x 100 % saves 17 %, under the 25 % it takes to roll
        p = size(workload(replicas=2, slice_pct=60), NO_HEADROOM, CFG)
        assert p.allocation == Allocation(2, 60)

    def test_headroom_shrinks_the_latency_budget(self) -> None:
        # 60 % headroom: budget 200 ms -> a 60 % replica takes 30 - 23.0 = 7 rps: 6 replicas
        p = size(workload(slice_pct=60, capacity=replace(LEARNT, sat_pct=60.0)), 0.6, CFG)
        assert p.allocation == Allocation(6, 60)

    def test_forecast_above_the_observed_rate_wins(self) -> None:
        p = size(
            workload(slice_pct=60, capacity=replace(LEARNT, sat_pct=60.0), forecast=80.0),
            NO_HEADROOM,
            CFG,
        )
        assert p.allocation == Allocation(4, 60)  # 80 / 20.8 -> 4

    @pytest.mark.parametrize("missing", [None, float("nan")], ids=["none", "nan"])
    def test_missing_metrics_hold(self, missing: float | None) -> None:
        p = size(workload(rate=missing), NO_HEADROOM, CFG)
        assert p.allocation == Allocation(2, 50)
        assert p.reason is Reason.METRICS_UNAVAILABLE

    def test_a_window_without_requests_sizes_on_its_zero_rate(self) -> None:
        # no request: no latency to read, and none needed; the rate is a reading, not a gap
        p = size(workload(rate=0.0, latency=None), NO_HEADROOM, CFG)
        # fewer replicas, but the slice stays: rolling to the smallest one for no load would
        # only be rolled back at the next request
        assert (p.allocation, p.reason) == (Allocation(1, 50), Reason.SCALE_DOWN)

    def test_latency_missing_under_traffic_still_holds(self) -> None:
        p = size(workload(rate=5.0, latency=None), NO_HEADROOM, CFG)
        assert (p.allocation, p.reason) == (Allocation(2, 50), Reason.METRICS_UNAVAILABLE)

    def test_a_scale_down_margin_holds_a_scale_down_that_lacks_it(self) -> None:
        # one slice only: 30 rps on 50 % slices takes 2 replicas at the target (15.8 rps each)
        # but 3 with a 30 % margin (11.8 rps each), so from 3 the margin holds
        spec = replace(SPEC, slice_min_pct=50, slice_max_pct=50)
        inp = workload(replicas=3, rate=30.0, spec=spec)
        assert size(inp, NO_HEADROOM, CFG).allocation == Allocation(2, 50)
        held = size(
            inp, NO_HEADROOM, replace(CFG, sizing=replace(CFG.sizing, scale_down_margin=0.3))
        )
        assert (held.allocation, held.reason) == (Allocation(3, 50), Reason.WITHIN_TOLERANCE)

    def test_a_quiet_minute_keeps_the_slice_its_recent_peak_needs(self) -> None:
        # 2 rps alone fits one 30 % slice; the 40 rps seen an hour ago needs a full card
        quiet = workload(replicas=1, slice_pct=100, rate=2.0)
        assert size(quiet, NO_HEADROOM, CFG).allocation.slice_pct == 30
        seen = PlannerMemory(slices=SliceMemory(peak_rate_rps=40.0, peak_at_s=0.0))
        assert size(replace(quiet, memory=seen), NO_HEADROOM, CFG).allocation == Allocation(1, 100)

    # a service idle 70 % of the time and at 20 rps the rest. Per replica under 500 ms:
    # 30 % takes 5.79 rps, 40 % 10.79, 50 % 15.79, 60 % 20.79. Mean share over the profile:
    # 30 %: .7 x 30 + .3 x 4 x 30 = 57; 40 %: .7 x 40 + .3 x 2 x 40 = 52; 50 %: 65; 60 %: 60
    MOSTLY_IDLE = (0.0,) * 70 + (20.0,) * 30
    # size() judges the profile at the most headroom: none here, for the arithmetic above
    AT_TARGET = replace(CFG, headroom=replace(CFG.headroom, max_headroom=0.0))

    def test_the_mean_share_over_the_profile_weighs_idle_floor_against_busy_efficiency(
        self,
    ) -> None:
        inp = replace(workload(), rate_profile_rps=self.MOSTLY_IDLE)
        shares = {s: profile_share_pct(inp, s, 500.0) for s in (30, 40, 50, 60)}
        assert shares == pytest.approx({30: 57.0, 40: 52.0, 50: 65.0, 60: 60.0})
        # busy all day, the largest slice's rate per share wins: 1 x 60 % serves 20 rps
        busy = replace(inp, rate_profile_rps=(20.0,) * 100)
        assert profile_share_pct(busy, 60, 500.0) == 60.0
        assert profile_share_pct(busy, 40, 500.0) == 80.0
        assert profile_share_pct(replace(inp, rate_profile_rps=()), 40, 500.0) is None
        # a slice whose replicas cannot serve the profile's peak within max-replicas is out
        assert profile_share_pct(replace(inp, rate_profile_rps=(200.0,)), 40, 500.0) is None

    def test_the_slice_follows_the_rate_profile_not_the_moment(self) -> None:
        # now at 20 rps, 1 x 60 % is the cheapest; over the day 40 % holds the least share
        inp = workload(replicas=2, slice_pct=40, rate=20.0)
        assert size(inp, NO_HEADROOM, CFG).allocation.slice_pct == 60
        profiled = replace(inp, rate_profile_rps=self.MOSTLY_IDLE)
        assert size(profiled, NO_HEADROOM, self.AT_TARGET).allocation == Allocation(2, 40)

    def test_the_profile_is_judged_at_the_most_headroom_the_budget_may_ask_for(self) -> None:
        # at 45 % headroom (275 ms) a 40 % replica takes 3.3 rps, a 60 % one 13.2: the small
        # slice's saving on the idle floor is gone (112 % against 78 % over the profile)
        inp = replace(
            workload(replicas=2, slice_pct=40, rate=20.0), rate_profile_rps=self.MOSTLY_IDLE
        )
        assert CFG.headroom.max_headroom == 0.45
        assert profile_share_pct(inp, 40, 275.0) == pytest.approx(112.0)
        assert profile_share_pct(inp, 60, 275.0) == pytest.approx(78.0)
        assert size(inp, NO_HEADROOM, CFG).allocation.slice_pct == 60

    def test_a_rate_past_the_profile_grows_the_slice(self) -> None:
        # 16 x 40 % serve 172 rps at most: 200 rps needs a larger slice, profile or not
        inp = replace(
            workload(replicas=2, slice_pct=40, rate=200.0), rate_profile_rps=self.MOSTLY_IDLE
        )
        assert size(
            replace(inp, metrics=replace(inp.metrics, request_rate_rps=150.0)),
            NO_HEADROOM,
            self.AT_TARGET,
        ).allocation == Allocation(14, 40)
        assert size(inp, NO_HEADROOM, self.AT_TARGET).allocation.slice_pct > 40

    def test_a_slice_close_in_profile_cost_to_the_best_is_kept(self) -> None:
        # at 30 %: 57 % over the profile against 40 %'s 52 %, under a 10 % saving: no rollout,
        # even where 1 x 40 % would save a third now (2 x 30 % at 10 rps)
        inp = replace(
            workload(replicas=2, slice_pct=30, rate=10.0), rate_profile_rps=self.MOSTLY_IDLE
        )
        assert size(inp, NO_HEADROOM, self.AT_TARGET).allocation == Allocation(2, 30)
        eager = with_slices(self.AT_TARGET, profile_min_saving=0.05)
        assert size(inp, NO_HEADROOM, eager).allocation.slice_pct == 40

    def test_no_profile_rollout_within_the_dwell_after_a_resize(self) -> None:
        # the 1 x 50 % -> 40 % roll below, an hour after the last resize: held for 6 h
        quiet = replace(
            workload(replicas=1, slice_pct=50, rate=2.0), rate_profile_rps=self.MOSTLY_IDLE
        )
        now = 10 * 3600.0
        recent = replace(
            quiet, memory=PlannerMemory(slices=SliceMemory(last_resize_s=now - 3600.0))
        )
        assert CFG.slices.profile_dwell_s == 6 * 3600.0
        assert size(recent, NO_HEADROOM, self.AT_TARGET, now).allocation == Allocation(1, 50)
        old = replace(
            quiet, memory=PlannerMemory(slices=SliceMemory(last_resize_s=now - 7 * 3600.0))
        )
        assert size(old, NO_HEADROOM, self.AT_TARGET, now).allocation == Allocation(2, 40)
        # a rate the slice cannot serve within max-replicas still grows it at once
        burst = replace(recent, metrics=replace(recent.metrics, request_rate_rps=600.0))
        assert size(burst, NO_HEADROOM, self.AT_TARGET, now).allocation.slice_pct > 50

    def test_the_profile_rolls_to_its_slice_only_where_that_costs_no_more_now(self) -> None:
        # at 1 x 50 % and 2 rps: 1 x 40 % saves 20 % now (under the 25 % to roll for the
        # moment) and 20 % over the profile (52 against 65): roll (holding the share while
        # the new pods start, as every resize does)
        quiet = replace(
            workload(replicas=1, slice_pct=50, rate=2.0), rate_profile_rps=self.MOSTLY_IDLE
        )
        assert size(quiet, NO_HEADROOM, self.AT_TARGET).allocation == Allocation(2, 40)
        strict = with_slices(self.AT_TARGET, profile_min_saving=0.25)
        assert size(quiet, NO_HEADROOM, strict).allocation == Allocation(1, 50)
        # at 12 rps 40 % needs 2 x 40 = 80 % against 1 x 50 % now: keep the slice for now
        busy = replace(quiet, metrics=replace(quiet.metrics, request_rate_rps=12.0))
        assert size(busy, NO_HEADROOM, self.AT_TARGET).allocation == Allocation(1, 50)

    def test_an_idle_window_rolls_to_the_profiles_slice(self) -> None:
        # no request in the window: with a profile, 40 % (52 % over it against 50 %'s 65 %)
        # is rolled to while nothing is served; without one the slice stays where it is
        idle = replace(
            workload(replicas=1, slice_pct=50, rate=0.0), rate_profile_rps=self.MOSTLY_IDLE
        )
        assert size(idle, NO_HEADROOM, self.AT_TARGET).allocation == Allocation(2, 40)
        unprofiled = replace(idle, rate_profile_rps=())
        assert size(unprofiled, NO_HEADROOM, self.AT_TARGET).allocation == Allocation(1, 50)

    # idle 90 % of the time and at 0.7 rps the rest: one 20 % replica serves all of it
    # (0.79 rps each), so 20 % holds the least share over the profile (20 against 30)
    IDLE_THEN_TRICKLE = (0.0,) * 90 + (0.7,) * 10

    def test_a_burst_the_profile_slice_serves_only_dearly_grows_it(self) -> None:
        # 4 rps: 20 % takes 6 x 20 = 120 %, 1 x 30 % (5.79 rps) serves it at a quarter of that
        # (held at 2 x 30 % while it rolls: a resize never lowers the share, 40 %, it holds)
        inp = replace(
            workload(replicas=2, slice_pct=20, rate=4.0), rate_profile_rps=self.IDLE_THEN_TRICKLE
        )
        assert size(inp, NO_HEADROOM, self.AT_TARGET).allocation == Allocation(2, 30)
        # under SliceConfig.burst_ratio times the share, the profile's slice scales out instead
        lax = with_slices(self.AT_TARGET, burst_ratio=5.0)
        assert size(inp, NO_HEADROOM, lax).allocation == Allocation(6, 20)

    def test_a_burning_burst_grows_the_slice_with_a_replica_more(self) -> None:
        # the window misses (burn 10): a rollout to fewer pods would take a serving pod down
        # first, so the growth keeps one replica more than now (3 x 30 % at 8 rps: 90 %
        # against 11 x 20 % = 220 %)
        burning = replace(
            workload(replicas=2, slice_pct=20, rate=8.0), rate_profile_rps=self.IDLE_THEN_TRICKLE
        )
        burning = replace(burning, metrics=replace(burning.metrics, good_ratio=0.9))
        p = size(burning, NO_HEADROOM, self.AT_TARGET)
        assert (p.allocation, p.reason) == (Allocation(3, 30), Reason.RESIZE)
        # at 6 rps, 3 x 30 % (90 %) against 8 x 20 % (160 %) saves under half: scale out
        six = replace(burning, metrics=replace(burning.metrics, request_rate_rps=6.0))
        assert size(six, NO_HEADROOM, self.AT_TARGET).allocation == Allocation(8, 20)
        # pods still starting hold the slice as a burning window does, growth aside
        starting = replace(burning, state=replace(burning.state, ready_replicas=1))
        assert size(starting, NO_HEADROOM, self.AT_TARGET).allocation == Allocation(3, 30)
        # no growth on a latency model not yet calibrated: 11 x 20 % is all it may do
        guess = replace(burning, capacity=replace(LEARNT, service_quantile_mult=None))
        assert size(guess, NO_HEADROOM, self.AT_TARGET).allocation == Allocation(11, 20)

    def test_the_peak_halves_every_half_life_and_follows_a_higher_rate(self) -> None:
        seen = SliceMemory(peak_rate_rps=40.0, peak_at_s=0.0)
        half_life = CFG.slices.peak_half_life_s
        assert decayed_peak_rps(seen, None, half_life, CFG.slices) == pytest.approx(20.0)
        assert decayed_peak_rps(seen, float("nan"), 2 * half_life, CFG.slices) == pytest.approx(
            10.0
        )
        assert decayed_peak_rps(seen, 25.0, half_life, CFG.slices) == 25.0
        assert decayed_peak_rps(seen, 5.0, 0.0, CFG.slices) == 40.0

    def test_learning_scales_on_the_latency_ratio(self) -> None:
        p = size(workload(capacity=CapacityModel(), latency=750.0), NO_HEADROOM, CFG)
        assert p.allocation == Allocation(3, 50)  # ceil(2 * 750 / 500)
        held = size(workload(capacity=CapacityModel(), latency=100.0), NO_HEADROOM, CFG)
        assert held.reason is Reason.LEARNING

    def test_beyond_max_replicas_asks_for_the_strongest_allocation(self) -> None:
        p = size(workload(rate=10_000.0), NO_HEADROOM, CFG)
        assert p.reason is Reason.AT_MAX
        assert p.allocation == Allocation(16, 100)


class TestErrorBudgetHeadroom:
    def test_an_ample_budget_lets_the_quantile_run_past_the_target(self) -> None:
        assert headroom_floor(1.0, CFG.headroom) == CFG.headroom.min_headroom < 0
        assert headroom_floor(1.0 - CFG.headroom.budget_spend_free, CFG.headroom) == pytest.approx(
            CFG.headroom.min_headroom
        )

    def test_the_floor_rises_to_its_top_as_the_budget_goes(self) -> None:
        floors = [headroom_floor(r, CFG.headroom) for r in (0.5, 0.3, 0.1, 0.0, -2.0)]
        assert floors == sorted(floors)
        assert floors[-1] == floors[-2] == pytest.approx(CFG.headroom.floor_top)
        assert CFG.headroom.floor_top < CFG.headroom.max_headroom  # the integral goes higher
        # convex: half the rest of the budget spent lifts the floor a quarter of its range
        span = CFG.headroom.floor_top - CFG.headroom.min_headroom
        assert headroom_floor(0.3, CFG.headroom) == pytest.approx(
            CFG.headroom.min_headroom + 0.25 * span
        )

    def test_the_pace_spends_an_ample_budget_and_holds_back_a_short_one(self) -> None:
        cfg = CFG.headroom
        assert paced_burn_rate(cfg.budget_reserve, cfg) == pytest.approx(1.0)
        paces = [paced_burn_rate(r, cfg) for r in (1.0, 0.6, cfg.budget_reserve, 0.0, -0.5, -9)]
        assert paces == sorted(paces, reverse=True)
        assert paces[0] == pytest.approx(1.0 + cfg.pacing_gain * (1.0 - cfg.budget_reserve))
        assert paces[3] < 1.0  # under the reserve: burn slower than earned until it is back
        assert paces[-1] == cfg.pacing_min_burn_rate  # never asks for nothing (a ratchet)

    @given(
        r=st.floats(-5.0, 1.0),
        h=st.floats(-0.3, 0.45),
        bad=st.floats(0.0, 0.2),
    )
    def test_the_headroom_stays_in_its_bounds_and_moves_with_the_burn(
        self, r: float, h: float, bad: float
    ) -> None:
        cfg = CFG.headroom
        window = WorkloadMetrics(request_rate_rps=1.0, latency_ms=300.0, good_ratio=1.0 - bad)
        nxt = next_headroom(PlannerMemory(headroom=h), window, SPEC, r, cfg)
        assert headroom_floor(r, cfg) - 1e-12 <= nxt <= cfg.max_headroom + 1e-12
        burn = bad / (1.0 - SPEC.objective_ratio)
        if burn > paced_burn_rate(r, cfg) and h >= headroom_floor(r, cfg):
            assert nxt >= min(h, cfg.max_headroom) - 1e-12  # spending too fast: never down

    def test_the_sized_rate_moves_to_the_upper_band_as_the_budget_is_overspent(self) -> None:
        inp = replace(workload(rate=40.0, forecast=50.0), rate_upper_rps=70.0)
        assert sizing_rate_rps(inp, CFG.headroom) == 50.0  # ample budget: the expected rate
        assert sizing_rate_rps(replace(inp, budget_remaining=0.0), CFG.headroom) == 70.0
        # half the budget past the free share: a quarter of the way (the rise is convex)
        half = 1.0 - (CFG.headroom.budget_spend_free + 0.5 * (1.0 - CFG.headroom.budget_spend_free))
        assert CFG.headroom.budget_pressure_exponent == 2.0
        assert sizing_rate_rps(replace(inp, budget_remaining=half), CFG.headroom) == pytest.approx(
            55.0
        )
        linear = replace(CFG.headroom, budget_pressure_exponent=1.0)
        assert sizing_rate_rps(replace(inp, budget_remaining=half), linear) == pytest.approx(60.0)
        # never under what is measured now
        assert sizing_rate_rps(replace(inp, rate_forecast_rps=10.0), CFG.headroom) == 40.0

    def test_a_budget_under_its_reserve_raises_the_rate_margin_without_a_cap(self) -> None:
        cfg, memory = CFG.headroom, PlannerMemory()
        pace = paced_burn_rate(-0.5, cfg)
        assert pace < 1.0
        seen = []
        for _ in range(2000):  # 2000 ticks of an hour burning at 3: past every bounded margin
            memory = replace(memory, rate_margin=next_rate_margin(memory, 3.0, -0.5, cfg))
            seen.append(memory.rate_margin)
        assert seen == sorted(seen)
        assert seen[-1] == pytest.approx(2000 * cfg.rate_margin_gain * (3.0 - pace))
        assert seen[-1] > 1.0 + cfg.max_headroom  # no cap
        # at the pace it holds; under it it gives back, never below nothing
        assert next_rate_margin(memory, pace, -0.5, cfg) == pytest.approx(memory.rate_margin)
        assert next_rate_margin(memory, pace / 2, -0.5, cfg) < memory.rate_margin
        assert next_rate_margin(PlannerMemory(), 0.0, -0.5, cfg) == 0.0
        # under the reserve but not gone: it already integrates, against that budget's pace
        low = cfg.budget_reserve / 2
        grown = next_rate_margin(PlannerMemory(), 3.0, low, cfg)
        assert grown == pytest.approx(cfg.rate_margin_gain * (3.0 - paced_burn_rate(low, cfg)))
        # no reading, or the capacity model still being learnt (the cold start's misses): held
        assert next_rate_margin(memory, None, -0.5, cfg) == memory.rate_margin
        assert next_rate_margin(memory, 9.0, -0.5, cfg, learnt=False) == memory.rate_margin
        # once the reserve is back it is given back, to nothing
        for _ in range(6000):
            memory = replace(memory, rate_margin=next_rate_margin(memory, 5.0, 0.5, cfg))
        assert memory.rate_margin == 0.0
        # a budget never under its reserve never grows it, however hard the hour burns
        assert next_rate_margin(PlannerMemory(), 50.0, cfg.budget_reserve + 0.01, cfg) == 0.0

    def test_the_rate_margin_sizes_past_the_band_and_plan_keeps_it(self) -> None:
        inp = replace(workload(rate=40.0, forecast=50.0), rate_upper_rps=70.0, budget_remaining=0.0)
        margin = replace(inp, memory=PlannerMemory(rate_margin=0.5))
        assert sizing_rate_rps(margin, CFG.headroom) == pytest.approx(105.0)
        gone = replace(inp, budget_remaining=-1.0, recent_burn_rate=4.0)
        result = plan([gone], [], snapshot(gone), CFG)
        grown = result.memories[gone.key].rate_margin
        pace = paced_burn_rate(-1.0, CFG.headroom)
        assert grown == pytest.approx(CFG.headroom.rate_margin_gain * (4.0 - pace))
        again = replace(gone, memory=result.memories[gone.key])
        assert plan([again], [], snapshot(again), CFG).memories[gone.key].rate_margin > grown

    def test_the_headroom_integrates_the_burn_rate_against_the_paced_one(self) -> None:
        def window(good_ratio: float) -> WorkloadMetrics:
            return WorkloadMetrics(request_rate_rps=1.0, latency_ms=300.0, good_ratio=good_ratio)

        h0 = PlannerMemory(headroom=0.0)
        allowance = 1.0 - SPEC.objective_ratio
        reserve = CFG.headroom.budget_reserve  # where the pace is 1
        # burning at the paced rate: no change
        on_target = window(1.0 - 1.0 * allowance)
        assert next_headroom(h0, on_target, SPEC, reserve, CFG.headroom) == pytest.approx(0.0)
        # with the whole budget left the same window is under the pace: the headroom gives back
        assert next_headroom(h0, on_target, SPEC, 1.0, CFG.headroom) < 0.0
        # a window that misses the objective by a little (burn 1.5) steps up a little, not
        # by the full step: half the windows sized at the target quantile do that
        slight = next_headroom(h0, window(1.0 - 1.5 * allowance), SPEC, reserve, CFG.headroom)
        assert slight == pytest.approx(CFG.headroom.headroom_gain * (1.5 - 1.0))
        assert 0 < slight < CFG.headroom.headroom_step_up / 4
        # a bad window (burn 10) steps up by at most the full step
        bad = next_headroom(h0, window(0.9), SPEC, 1.0, CFG.headroom)
        assert bad == pytest.approx(CFG.headroom.headroom_step_up)
        # a window without requests spends nothing
        idle = WorkloadMetrics(request_rate_rps=0.0)
        assert next_headroom(h0, idle, SPEC, 1.0, CFG.headroom) < 0

    def test_a_transient_window_does_not_wind_the_headroom_up(self) -> None:
        bad = WorkloadMetrics(request_rate_rps=1.0, latency_ms=900.0, good_ratio=0.9)
        h0 = PlannerMemory(headroom=0.1)
        held = next_headroom(h0, bad, SPEC, 1.0, CFG.headroom, sized_for_window=False)
        assert held == pytest.approx(0.1)
        idle = WorkloadMetrics(request_rate_rps=0.0)  # decaying still goes on
        assert next_headroom(h0, idle, SPEC, 1.0, CFG.headroom, sized_for_window=False) < 0.1

    def test_which_windows_the_allocation_was_sized_for(self) -> None:
        # 2 x 50 % at headroom 0 serve 2 x (25 - 9.21) = 31.6 rps under the 500 ms target
        assert window_was_sized_for(workload(rate=30.0, memory=PlannerMemory(headroom=0.0)))
        # 40 rps outran them: the forecast's miss, not the model's
        assert not window_was_sized_for(workload(rate=40.0, memory=PlannerMemory(headroom=0.0)))
        # a pod still starting: the cold start's miss
        starting = workload(rate=10.0)
        starting = replace(starting, state=replace(starting.state, ready_replicas=1))
        assert not window_was_sized_for(starting)
        rolling = workload(rate=10.0)
        rolling = replace(rolling, state=replace(rolling.state, rollout_in_progress=True))
        assert not window_was_sized_for(rolling)
        # before the model is learnt every window counts
        assert window_was_sized_for(workload(rate=400.0, capacity=CapacityModel()))

    def test_good_windows_decay_to_the_floor_and_a_spent_budget_lifts_it(self) -> None:
        good = WorkloadMetrics(request_rate_rps=1.0, latency_ms=300.0, good_ratio=1.0)
        h = 0.0
        for _ in range(1000):
            h = next_headroom(PlannerMemory(headroom=h), good, SPEC, 1.0, CFG.headroom)
        assert h == pytest.approx(CFG.headroom.min_headroom)
        spent = next_headroom(PlannerMemory(headroom=h), good, SPEC, 0.0, CFG.headroom)
        assert spent == pytest.approx(CFG.headroom.floor_top)
        # past the floor, only windows burning faster than the pace lift it, to max_headroom
        burning = WorkloadMetrics(request_rate_rps=1.0, latency_ms=900.0, good_ratio=0.95)
        for _ in range(100):
            spent = next_headroom(PlannerMemory(headroom=spent), burning, SPEC, 0.0, CFG.headroom)
        assert spent == pytest.approx(CFG.headroom.max_headroom)


class TestStabilise:
    def test_tolerance_skips_a_small_scale_down(self) -> None:
        inp = workload(replicas=10, slice_pct=50)
        p = apply_tolerance(inp, Proposal(Allocation(9, 50), Reason.SCALE_DOWN), CFG.stabilise)
        assert p.allocation == Allocation(10, 50)  # 1 of 10 is within 10 %
        assert p.reason is Reason.WITHIN_TOLERANCE

    def test_scale_down_waits_for_the_delay(self) -> None:
        inp = workload(replicas=4, memory=PlannerMemory(((900.0, Allocation(4, 50)),)))
        p, history = apply_scale_down_delay(
            inp, Proposal(Allocation(2, 50), Reason.SCALE_DOWN), 1000.0, CFG.stabilise
        )
        assert p.reason is Reason.SCALE_DOWN_STABILIZED
        assert p.allocation == Allocation(4, 50)
        # 301 s after the high recommendation, it has left the window: scale down
        later = replace(inp, memory=PlannerMemory(history))
        p2, _ = apply_scale_down_delay(
            later, Proposal(Allocation(2, 50), Reason.SCALE_DOWN), 1201.0, CFG.stabilise
        )
        assert p2.allocation == Allocation(2, 50)

    def test_a_larger_slice_with_fewer_pods_waits_for_the_window(self) -> None:
        # 6 x 80 % -> 5 x 100 %: more share, one pod fewer, 15 s after 8 x 80 % was
        # recommended; past the model's saturation share the 100 % slice serves no more
        # than 80 %, so it takes capacity away: held until the window agrees
        inp = workload(
            replicas=6, slice_pct=80, memory=PlannerMemory(((985.0, Allocation(8, 80)),))
        )
        bigger = Proposal(Allocation(5, 100), Reason.RESIZE)
        p, history = apply_scale_down_delay(inp, bigger, 1000.0, CFG.stabilise)
        assert (p.allocation, p.reason) == (Allocation(6, 80), Reason.SCALE_DOWN_STABILIZED)
        assert history[-1] == (1000.0, Allocation(5, 100))
        later = replace(inp, memory=PlannerMemory(((600.0, Allocation(8, 80)),)))
        p, _ = apply_scale_down_delay(later, bigger, 1000.0, CFG.stabilise)
        assert p.allocation == Allocation(5, 100)  # the window agrees: resized
        grow = Proposal(Allocation(6, 100), Reason.RESIZE)  # no pod taken away: at once
        p, _ = apply_scale_down_delay(inp, grow, 1000.0, CFG.stabilise)
        assert p.allocation == Allocation(6, 100)

    def test_an_on_off_service_holds_its_recommendations_longer(self) -> None:
        # 30 of the profile's 100 steps without a request (on_off_idle_share 0.25): the
        # 4 x 50 % of 900 s ago still bounds a scale-down 38 minutes on, and not after 40
        seen = PlannerMemory(((900.0, Allocation(4, 50)),))
        on_off = replace(
            workload(replicas=4, memory=seen), rate_profile_rps=(0.0,) * 30 + (20.0,) * 70
        )
        assert CFG.stabilise.on_off_scale_down_delay_s == 2400.0
        down = Proposal(Allocation(2, 50), Reason.SCALE_DOWN)
        p, history = apply_scale_down_delay(on_off, down, 3200.0, CFG.stabilise)
        assert (p.allocation, p.reason) == (Allocation(4, 50), Reason.SCALE_DOWN_STABILIZED)
        assert p.message == "recommendations of the last 2400 s were higher"
        assert history[0] == (900.0, Allocation(4, 50))
        p, _ = apply_scale_down_delay(on_off, down, 3301.0, CFG.stabilise)
        assert p.allocation == Allocation(2, 50)
        # 20 idle steps of 100, or no profile yet: the HPA's 300 s
        for profile in ((0.0,) * 20 + (20.0,) * 80, ()):
            steady = replace(on_off, rate_profile_rps=profile)
            p, history = apply_scale_down_delay(steady, down, 1201.0, CFG.stabilise)
            assert p.allocation == Allocation(2, 50)
            assert len(history) == 1  # only the proposal: the 900 s one has left the window

    @pytest.mark.parametrize(
        ("wanted", "at_s", "held"),
        [
            (Allocation(5, 40), 1000.0, True),  # same share, smaller slice: 100 s after blind
            (Allocation(1, 100), 1000.0, True),  # same share, fewer replicas
            (Allocation(3, 50), 1000.0, False),  # a scale-up is never held
            (Allocation(1, 50), 1200.0, False),  # 300 s after the blind tick: a whole window
        ],
    )
    def test_no_scale_down_before_a_whole_window_after_a_blind_tick(
        self, wanted: Allocation, at_s: float, held: bool
    ) -> None:
        # found by the fault soak: after an outage, 2 x 100 % became 5 x 40 % 270 s later
        inp = workload(replicas=2, slice_pct=50, memory=PlannerMemory(blind_at_s=900.0))
        p = apply_fresh_window(inp, Proposal(wanted, Reason.RESIZE), at_s, CFG.stabilise)
        assert p.allocation == (Allocation(2, 50) if held else wanted)
        if held:
            assert p.reason is Reason.SCALE_DOWN_STABILIZED
            assert "no scale-down before 300 s of full data" in p.message

    def test_a_partial_rate_may_scale_up_but_marks_the_tick_blind(self) -> None:
        partial = replace(
            workload(replicas=2, rate=400.0),
            metrics=WorkloadMetrics(
                request_rate_rps=80.0, latency_ms=300.0, good_ratio=1.0, rate_partial=True
            ),
        )
        result = plan([partial], [], snapshot(partial), CFG)
        (d,) = result.decisions
        # 80 rps x 0.02 card-s = 1.6 cards: more than the 2 x 50 % it has
        assert d.desired is not None and d.desired.share_pct > 100
        assert result.memories["prod/chat"].blind_at_s == 1000.0

    def test_a_blind_tick_marks_the_memory(self) -> None:
        blind = workload(rate=None, latency=None)
        result = plan([blind], [], snapshot(blind), CFG)
        assert result.memories["prod/chat"].blind_at_s == 1000.0
        fresh = workload()
        assert plan([fresh], [], snapshot(fresh), CFG).memories["prod/chat"].blind_at_s is None

    def test_scale_down_goes_to_the_highest_recent_recommendation(self) -> None:
        inp = workload(replicas=6, memory=PlannerMemory(((900.0, Allocation(4, 50)),)))
        p, _ = apply_scale_down_delay(
            inp, Proposal(Allocation(2, 50), Reason.SCALE_DOWN), 1000.0, CFG.stabilise
        )
        assert p.allocation == Allocation(4, 50)

    @pytest.mark.parametrize(
        ("current", "wanted", "limit"),
        [
            pytest.param(1, 20, 5, id="small-deployment-plus-4"),  # max(2 * 1, 1 + 4)
            pytest.param(10, 40, 20, id="large-deployment-doubles"),  # max(2 * 10, 14)
            pytest.param(3, 6, 6, id="within-limit"),
        ],
    )
    def test_step_limit(self, current: int, wanted: int, limit: int) -> None:
        p = apply_step_limit(
            workload(replicas=current), Proposal(Allocation(wanted, 50), Reason.SCALE_UP)
        )
        assert p.allocation.replicas == limit

    def test_bounds(self) -> None:
        spec = replace(SPEC, min_replicas=2, max_replicas=4, slice_min_pct=20, slice_max_pct=60)
        p = apply_bounds(spec, Proposal(Allocation(9, 100), Reason.SCALE_UP))
        assert p.allocation == Allocation(4, 60)
        assert p.reason is Reason.AT_MAX
        assert (
            apply_bounds(spec, Proposal(Allocation(1, 10), Reason.SCALE_DOWN)).reason
            is Reason.AT_MIN
        )


def job(
    name: str,
    priority: int = -100,
    started: float = 0.0,
    pods: int = 2,
    share: int = 100,
    phase: JobPhase = JobPhase.RUNNING,
    preemptible: bool = True,
) -> JobInput:
    state = JobState(WorkloadRef("research", name, "Job"), {}, pods, share, 1024, phase, started)
    return JobInput(
        state, JobSpec(priority=priority, preemptible=preemptible, checkpoint_interval_s=600)
    )


class TestFit:
    def test_never_plans_more_than_the_pool(self) -> None:
        # 4 cards = 400 %; 1000 rps asks for 16 x 100 %: only 4 fit
        inp = workload(rate=1000.0, slice_pct=100, replicas=1)
        result = plan([inp], [], snapshot(inp))
        assert result.desired[inp.key].share_pct <= 400
        assert result.decisions[0].reason is Reason.CAPACITY_LIMITED

    def test_preempts_a_lower_priority_job_to_make_room(self) -> None:
        inp = workload(
            rate=100.0, slice_pct=100, replicas=2, capacity=replace(LEARNT, sat_pct=100.0)
        )
        j = job("train")  # holds 2 of the 4 cards
        result = plan([inp], [j], snapshot(inp, jobs=(j.state,)))
        assert [a.ref.name for a in result.plan.jobs if a.suspend] == ["train"]
        assert result.desired[inp.key] == Allocation(3, 100)  # 100 / 40.8 -> 3

    @pytest.mark.parametrize(
        "blocker",
        [
            pytest.param(job("train", priority=0), id="equal-priority"),
            pytest.param(job("train", started=900.0), id="inside-min-runtime"),
            pytest.param(job("train", preemptible=False), id="not-preemptible"),
        ],
    )
    def test_protected_jobs_are_not_preempted(self, blocker: JobInput) -> None:
        inp = workload(
            rate=100.0, slice_pct=100, replicas=2, capacity=replace(LEARNT, sat_pct=100.0)
        )
        result = plan([inp], [blocker], snapshot(inp, jobs=(blocker.state,)))
        assert not result.plan.jobs
        assert result.desired[inp.key] == Allocation(2, 100)

    def test_resumes_a_suspended_job_when_the_pool_has_room(self) -> None:
        inp = workload(rate=10.0, slice_pct=60, replicas=1, capacity=replace(LEARNT, sat_pct=60.0))
        j = job("train", phase=JobPhase.SUSPENDED)
        result = plan([inp], [j], snapshot(inp, jobs=(j.state,)))
        assert [(a.ref.name, a.suspend) for a in result.plan.jobs] == [("train", False)]

    def test_higher_priority_claims_capacity_first(self) -> None:
        hi = workload(
            name="hi",
            rate=200.0,
            slice_pct=100,
            replicas=1,
            spec=replace(SPEC, priority=100),
            capacity=replace(LEARNT, sat_pct=100.0),
        )
        lo = workload(
            name="lo",
            rate=200.0,
            slice_pct=100,
            replicas=1,
            capacity=replace(LEARNT, sat_pct=100.0),
        )
        result = plan([lo, hi], [], snapshot(lo, hi))
        assert result.desired[hi.key].replicas == 3  # 1 + 2 new of the 2 free cards
        assert result.desired[lo.key].replicas == 1

    def test_a_fallback_on_a_full_pool_never_shrinks_what_runs(self) -> None:
        # 5 x 50 % runs on three cards, a protected job holds the fourth. 4 x 80 % (one card
        # each) does not fit; 3 x 70 % would, but it has fewer replicas: a scale-down the
        # stabilised window never approved (found by the fault soak). What runs stays.
        inp = workload(replicas=5, slice_pct=50)
        blocker = job("train", pods=1, preemptible=False)
        want = Proposal.first(Allocation(4, 80), Reason.RESIZE, ConditionType.SCALING_ACTIVE, "")
        fallbacks = {inp.key: (Allocation(3, 70),)}
        snap = snapshot(inp, jobs=(blocker.state,))
        fitted = fit({inp.key: want}, [inp], [blocker], snap, CFG.resume, fallbacks)
        assert fitted.proposals[inp.key].allocation == Allocation(5, 50)
        assert fitted.proposals[inp.key].reason is Reason.CAPACITY_LIMITED
        # a fallback that shrinks nothing is still taken: 2 x 50 % on one card, a job's 30 %
        # on the other; 2 x 100 % does not fit, 2 x 60 % does
        two = workload(replicas=2, slice_pct=50)
        small = job("eval", pods=1, share=30, preemptible=False)
        cards = (Card("n1", 0, 81920), Card("n1", 1, 81920))
        roomy = snapshot(two, jobs=(small.state,), cards=cards)
        big = Proposal.first(Allocation(2, 100), Reason.RESIZE, ConditionType.SCALING_ACTIVE, "")
        grow = {two.key: (Allocation(2, 60),)}
        refit = fit({two.key: big}, [two], [small], roomy, CFG.resume, grow)
        assert refit.proposals[two.key].allocation == Allocation(2, 60)


class TestPlanMemory:
    def test_a_window_with_pods_starting_leaves_the_headroom_where_it_was(self) -> None:
        # 20 rps is within what 2 x 50 % serve: the miss (burn 10) is the model's, it steps up
        inp = workload(rate=20.0, memory=PlannerMemory(headroom=0.1))
        inp = replace(inp, metrics=replace(inp.metrics, good_ratio=0.9))
        steady = plan([inp], [], snapshot(inp))
        assert steady.memories[inp.key].headroom == pytest.approx(
            0.1 + CFG.headroom.headroom_step_up
        )
        # the same window with a pod still starting is the cold start's miss: no step
        starting = replace(inp, state=replace(inp.state, ready_replicas=1))
        held = plan([starting], [], snapshot(starting))
        assert held.memories[inp.key].headroom == pytest.approx(0.1)

    def test_a_resize_is_remembered_and_holds_the_slice_for_the_dwell(self) -> None:
        inp = workload(rate=30.0)  # 2 x 50 % at 30 rps: 1 x 90 % is cheaper than 3 x 50 %
        first = plan([inp], [], snapshot(inp))
        assert first.desired[inp.key].slice_pct == 90
        assert first.memories[inp.key].slices.last_resize_s == 1000.0
        assert first.memories[inp.key].slices.peak_rate_rps == 30.0
        # 2 rps alone would take one 30 % slice (no peak remembered here, to isolate the dwell)
        remembered = first.memories[inp.key]
        memory = replace(remembered, slices=replace(remembered.slices, peak_rate_rps=0.0))
        quiet = replace(workload(rate=2.0), memory=memory)
        soon = plan([quiet], [], snapshot(quiet, t=1000.0 + CFG.slices.resize_dwell_s / 2))
        assert soon.desired[quiet.key].slice_pct == 50
        late = plan([quiet], [], snapshot(quiet, t=1000.0 + CFG.slices.resize_dwell_s))
        assert late.desired[quiet.key].slice_pct == 30


class TestBacklog:
    def test_requests_in_flight_beyond_littles_law_add_their_drain_rate(self) -> None:
        # 40 rps within a 500 ms target hold about 40 x 0.5 = 20 requests; 320 in flight is a
        # backlog of 300, cleared in 30 s: 10 rps more to size for
        inp = workload()
        queued = replace(inp, metrics=replace(inp.metrics, in_flight=320.0))
        assert backlog_rps(queued, CFG.sizing) == pytest.approx(10.0)
        assert (
            backlog_rps(replace(inp, metrics=replace(inp.metrics, in_flight=15.0)), CFG.sizing) == 0
        )
        assert backlog_rps(inp, CFG.sizing) == 0.0  # no in-flight signal: nothing added

    def test_a_backlog_sizes_for_more_than_the_completions_show(self) -> None:
        inp = workload(rate=40.0, latency=2000.0)
        calm = size(inp, NO_HEADROOM, CFG)
        queued = replace(inp, metrics=replace(inp.metrics, in_flight=1220.0))  # +40 rps
        assert size(queued, NO_HEADROOM, CFG).allocation.share_pct > calm.allocation.share_pct
        assert "sized for 80.0 rps" in size(queued, NO_HEADROOM, CFG).message


class TestConditions:
    """Each stage adds its condition to the decision; none overwrites another."""

    def test_a_stabilised_then_capacity_limited_decision_reports_both(self) -> None:
        # 20 rps takes 2 x 50 %, but 6 x 30 % was recommended 100 s ago: the scale-down
        # delay stabilises to it, a resize; each card holds one 50 % pod beside a 50 % job
        # that may not be preempted, so only 4 of the 6 30 % slices fit: capacity-limited.
        history = ((900.0, Allocation(6, 30)),)
        spec = replace(SPEC, slice_min_pct=30, slice_max_pct=50)
        inp = workload(replicas=4, rate=20.0, memory=PlannerMemory(history), spec=spec)
        pinned = JobState(WorkloadRef("b", "train", "Job"), {}, 4, 50, 1024, JobPhase.RUNNING)
        allocations = tuple(
            SliceAllocation(owner, f"{owner}-{c.index}", c.card_id, 50, mib)
            for c in CARDS
            for owner, mib in ((inp.key, 8192), (pinned.ref.key, 1024))
        )
        snap = ClusterSnapshot(1000.0, (inp.state,), (pinned,), Inventory(CARDS, allocations))
        job_in = JobInput(pinned, JobSpec(priority=-100, preemptible=False))
        result = plan([inp], [job_in], snap)
        decision = next(d for d in result.decisions if d.target == inp.key)
        assert decision.desired == Allocation(4, 50)  # held: the resize does not fit
        assert decision.reason is Reason.CAPACITY_LIMITED
        kinds = [(c.type, c.status, c.reason) for c in decision.conditions]
        assert kinds == [
            (ConditionType.SCALING_ACTIVE, True, Reason.SCALE_DOWN),
            (ConditionType.ABLE_TO_SCALE, True, Reason.SCALE_DOWN_STABILIZED),
            (ConditionType.CAPACITY_AVAILABLE, False, Reason.CAPACITY_LIMITED),
        ]
        assert "stabilised over 300 s: 6 x 30 %" in decision.message
        assert "resize to 6 x 30 % does not fit" in decision.message
        assert result.plan.scale == ()  # nothing changes, and nothing is lost from the why

    def test_a_limited_scale_up_carries_its_conditions_to_the_action(self) -> None:
        # 200 rps needs far more than 2 x 50 % may grow to in one tick (at most 6)
        inp = workload(replicas=2, rate=200.0)
        result = plan([inp], [], snapshot(inp, cards=tuple(Card("n1", i, 81920) for i in range(8))))
        (action,) = result.plan.scale
        types = [c.type for c in action.conditions]
        assert types[0] is ConditionType.SCALING_ACTIVE
        assert ConditionType.SCALING_LIMITED in types
        decision = next(d for d in result.decisions if d.target == inp.key)
        assert decision.conditions == action.conditions
        assert decision.message == "; ".join(c.message for c in decision.conditions)
