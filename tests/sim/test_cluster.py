"""The simulated cluster's Kubernetes-like semantics, one behaviour per test."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from actuators.sim.cluster import SimulatedCluster
from actuators.sim.placement import best_fit, place_gang
from controller.domain import ClusterSnapshot, DeploymentState, JobPhase, Plan
from tests.sim.worlds import MODEL_MIB, deployment, job, scale, suspend, world


def state(c: SimulatedCluster, name: str = "web") -> DeploymentState:
    return next(d for d in c.snapshot().deployments if d.ref.name == name)


def pods_of(snap: ClusterSnapshot, owner: str) -> list[tuple[str, int, bool]]:
    return [(a.pod, a.share_pct, a.ready) for a in snap.inventory.allocations if a.owner == owner]


# ---- placement ----------------------------------------------------------------------------

BEST_FIT = {
    # free share per card, request -> chosen card
    "least free share that fits": ([100, 40, 60], 40, 1),
    "skips a card that is too small": ([30, 100, 50], 40, 2),
    "nothing fits": ([30, 30, 30], 40, None),
    "tie goes to the first card": ([100, 100], 10, 0),
}


@pytest.mark.parametrize(("free", "share", "card"), BEST_FIT.values(), ids=BEST_FIT)
def test_best_fit_picks_the_tightest_card(free: list[int], share: int, card: int | None) -> None:
    assert best_fit(free, [80_000] * len(free), share, 1024) == card


def test_best_fit_needs_memory_too() -> None:
    # card 0 has the share but not the memory
    assert best_fit([50, 100], [1000, 80_000], 50, 4096) == 1


def test_gang_is_placed_whole_or_not_at_all() -> None:
    free_pct, free_mib = [100, 50], [80_000, 80_000]
    assert place_gang(free_pct, free_mib, [(60, 1), (60, 1)]) is None
    assert free_pct == [100, 50]  # nothing reserved by the failed attempt
    assert place_gang(free_pct, free_mib, [(50, 1), (100, 1)]) == [1, 0]
    assert free_pct == [0, 0]


def test_fragmented_free_share_cannot_hold_a_larger_slice() -> None:
    # two cards, 60 % used on each: 80 % free in total but no card has 50 %
    c = SimulatedCluster(
        world(
            deployment("a", slice_pct=60),
            deployment("b", slice_pct=60),
            deployment("web", replicas=0, slice_pct=50),
        )
    )
    assert sorted(c.snapshot().inventory.used_pct_by_card().values()) == [60, 60]
    c.apply(scale("web", 1, 50))
    c.advance(120.0)
    assert state(c).replicas == 1
    assert state(c).ready_replicas == 0
    assert pods_of(c.snapshot(), "t/web") == []  # a Pending pod holds no slice
    c.apply(scale("b", 0, 60))  # frees a card: the pending pod is placed on the next pass
    assert [share for _, share, _ in pods_of(c.snapshot(), "t/web")] == [50]
    c.advance(60.0)
    assert state(c).ready_replicas == 1


# ---- Deployments --------------------------------------------------------------------------


def test_new_replica_serves_only_after_cold_start() -> None:
    c = SimulatedCluster(world(deployment("web", replicas=1)))
    assert state(c).ready_replicas == 1  # warm start: initial pods are ready
    c.apply(scale("web", 2, 50))
    snap = c.snapshot()
    assert [ready for _, _, ready in pods_of(snap, "t/web")] == [True, False]
    c.advance(59.0)
    assert state(c).ready_replicas == 1
    c.advance(1.0)
    assert state(c).ready_replicas == 2


def test_scale_down_removes_starting_pods_first_then_the_newest() -> None:
    c = SimulatedCluster(world(deployment("web", replicas=3, slice_pct=20)))
    c.apply(scale("web", 5, 20))
    assert len(pods_of(c.snapshot(), "t/web")) == 5
    c.apply(scale("web", 3, 20))
    assert [ready for _, _, ready in pods_of(c.snapshot(), "t/web")] == [True] * 3
    names = [p for p, _, _ in pods_of(c.snapshot(), "t/web")]
    c.apply(scale("web", 2, 20))
    assert [p for p, _, _ in pods_of(c.snapshot(), "t/web")] == names[:2]


def test_scale_down_removes_the_pods_the_controller_named_first() -> None:
    # controller.kubernetes.io/pod-deletion-cost: among ready pods the marked ones go first
    c = SimulatedCluster(world(deployment("web", replicas=3, slice_pct=20)))
    names = [p for p, _, _ in pods_of(c.snapshot(), "t/web")]
    (action,) = scale("web", 2, 20).scale
    c.apply(Plan(scale=(replace(action, remove_pods=(names[0],)),)))
    assert [p for p, _, _ in pods_of(c.snapshot(), "t/web")] == names[1:]


def test_resize_with_room_surges_one_pod_and_never_drops_capacity() -> None:
    # 2 x 30 % on two empty cards: a 40 % pod fits, so the rollout surges (maxSurge 1)
    c = SimulatedCluster(world(deployment("web", replicas=2, slice_pct=30)))
    c.apply(scale("web", 2, 40))
    assert state(c).rollout_in_progress
    seen_pods, seen_ready = [], []
    for _ in range(20):
        c.advance(10.0)
        seen_pods.append(len(pods_of(c.snapshot(), "t/web")))
        seen_ready.append(state(c).ready_replicas)
    assert max(seen_pods) == 3  # 2 + maxSurge 1
    assert min(seen_ready) >= 2  # maxUnavailable 0
    s = state(c)
    assert not s.rollout_in_progress
    assert [share for _, share, _ in pods_of(c.snapshot(), "t/web")] == [40, 40]
    # two cold starts of 60 s, one after the other
    assert c.report().workload("t/web").resize_actions == 1


def test_resize_without_room_replaces_one_pod_at_a_time() -> None:
    # one card, 2 x 50 %: no room for a surge pod, so maxUnavailable 1
    c = SimulatedCluster(world(deployment("web", replicas=2, slice_pct=50), cards=1))
    c.apply(scale("web", 2, 40))
    snap = c.snapshot()
    assert sorted(share for _, share, _ in pods_of(snap, "t/web")) == [40, 50]
    assert state(c).ready_replicas == 1
    ready_seen = []
    for _ in range(13):
        c.advance(10.0)
        ready_seen.append(state(c).ready_replicas)
        assert len(pods_of(c.snapshot(), "t/web")) <= 2
    assert min(ready_seen) >= 1
    assert not state(c).rollout_in_progress
    assert [share for _, share, _ in pods_of(c.snapshot(), "t/web")] == [40, 40]


def test_pod_with_too_little_memory_never_becomes_ready() -> None:
    c = SimulatedCluster(world(deployment("web", replicas=1)))
    c.apply(scale("web", 1, 50, memory_mib=MODEL_MIB // 2))  # crash-loops
    c.advance(600.0)
    s = state(c)
    assert s.rollout_in_progress
    assert s.ready_replicas == 1  # the old pod keeps serving


def test_no_ready_replica_means_failed_requests() -> None:
    c = SimulatedCluster(world(deployment("web", replicas=1, rate_rps=10.0)))
    c.apply(scale("web", 0, 50))
    c.advance(60.0)
    r = c.report().workload("t/web")
    assert r.requests > 0
    assert r.failed_requests == r.requests
    assert r.good_requests == 0


def test_allocated_gpu_hours_count_every_placed_pod() -> None:
    # 2 x 50 % for an hour = 1.0 card-hour; a third pod starting for the last 30 min adds 0.25
    c = SimulatedCluster(world(deployment("web", replicas=2, rate_rps=1.0)))
    c.advance(1800.0)
    c.apply(scale("web", 3, 50))
    c.advance(1800.0)
    r = c.report()
    assert r.workload("t/web").allocated_gpu_h == pytest.approx(1.25)
    assert r.pool.total_gpu_h == pytest.approx(2.0)
    assert r.pool.free_for_jobs_gpu_h == pytest.approx(0.75)


def test_only_opted_in_deployments_are_listed_but_all_hold_slices() -> None:
    c = SimulatedCluster(world(deployment("web"), deployment("legacy", enabled=False)))
    snap = c.snapshot()
    assert [d.ref.name for d in snap.deployments] == ["web"]
    assert {a.owner for a in snap.inventory.allocations} == {"t/web", "t/legacy"}


# ---- Jobs ---------------------------------------------------------------------------------


def test_job_progresses_after_cold_start_and_finishes() -> None:
    # 1 pod x 50 %: 1800 card-seconds take 3600 s after a 60 s cold start
    c = SimulatedCluster(world(jobs=(job("train", share_pct=50, work_gpu_s=1800.0),)))
    c.advance(3659.0)
    assert c.snapshot().jobs[0].phase == JobPhase.RUNNING
    c.advance(2.0)
    snap = c.snapshot()
    assert snap.jobs[0].phase == JobPhase.SUCCEEDED
    assert snap.inventory.allocations == ()
    r = c.report().job("t/train")
    assert r.delivered_gpu_h == pytest.approx(0.5)
    assert r.finished_s == pytest.approx(3660.0)


def test_preemption_loses_the_work_since_the_last_checkpoint() -> None:
    # 1 pod x 100 %, checkpoint every 600 s of productive time; preempted at 60 + 1000 s
    c = SimulatedCluster(world(jobs=(job("train", work_gpu_s=10_000.0, checkpoint_s=600.0),)))
    c.advance(1060.0)
    c.apply(suspend("train"))
    snap = c.snapshot()
    assert snap.jobs[0].phase == JobPhase.SUSPENDED
    assert snap.inventory.allocations == ()
    r = c.report().job("t/train")
    assert r.lost_gpu_h == pytest.approx(400.0 / 3600)  # 1000 done, 600 checkpointed
    assert r.delivered_gpu_h == pytest.approx(600.0 / 3600)
    assert r.preemptions == 1
    c.advance(100.0)
    c.apply(suspend("train", suspend=False))
    snap = c.snapshot()
    assert snap.jobs[0].phase == JobPhase.RUNNING
    assert snap.jobs[0].started_at_s == pytest.approx(1160.0)
    c.advance(60.0 + 300.0)  # cold start, then 300 s of progress from the checkpoint
    r = c.report().job("t/train")
    assert r.delivered_gpu_h == pytest.approx(900.0 / 3600)
    assert r.resumes == 1


def test_job_gang_waits_until_every_pod_fits() -> None:
    # 2 pods x 60 % on 2 cards, one card half used by "web": neither pod is placed
    c = SimulatedCluster(
        world(deployment("web", slice_pct=50), jobs=(job("train", pods=2, share_pct=60),))
    )
    snap = c.snapshot()
    assert snap.jobs[0].phase == JobPhase.PENDING
    assert pods_of(snap, "t/train") == []
    c.apply(scale("web", 0, 50))
    snap = c.snapshot()
    assert snap.jobs[0].phase == JobPhase.RUNNING
    assert len(pods_of(snap, "t/train")) == 2


def test_job_appears_only_once_submitted() -> None:
    c = SimulatedCluster(world(jobs=(job("later", submit_s=300.0),)))
    assert c.snapshot().jobs == ()
    c.advance(300.0)
    assert [j.phase for j in c.snapshot().jobs] == [JobPhase.RUNNING]


# ---- apply --------------------------------------------------------------------------------


def test_dry_run_changes_nothing() -> None:
    c = SimulatedCluster(world(deployment("web"), jobs=(job("train", share_pct=50),)))
    before = c.snapshot()
    results = c.apply(scale("web", 3, 30), dry_run=True)
    results += c.apply(suspend("train"), dry_run=True)
    assert all(r.ok and r.message.startswith("dry-run") for r in results)
    assert c.snapshot() == before
    c.advance(120.0)
    assert state(c).replicas == 1
    assert c.report().workload("t/web").actions == ()
    assert c.report().job("t/train").preemptions == 0


INVALID = {
    "unknown deployment": (scale("nope", 1, 50), "unknown Deployment"),
    "slice not in 10 % units": (scale("web", 1, 35), "multiple of 10"),
    "slice above a card": (scale("web", 1, 110), "multiple of 10"),
    "memory above a card": (scale("web", 1, 50, memory_mib=100_000), "does not fit"),
    "negative replicas": (scale("web", -1, 50), ">= 0"),
    "suspend a deployment": (suspend("web"), "not a Job"),
}


@pytest.mark.parametrize(("plan", "message"), INVALID.values(), ids=INVALID)
def test_invalid_actions_fail_alone_with_a_message(plan: Plan, message: str) -> None:
    c = SimulatedCluster(world(deployment("web")))
    [result] = c.apply(plan)
    assert not result.ok
    assert message in result.message
    assert state(c).replicas == 1


def test_apply_is_idempotent() -> None:
    c = SimulatedCluster(world(deployment("web")))
    assert c.apply(scale("web", 2, 50))[0].ok
    second = c.apply(scale("web", 2, 50))[0]
    assert second.ok
    assert second.message == "no change"
    assert len(c.snapshot().inventory.allocations) == 2
    assert c.report().workload("t/web").scale_actions == 1


# ---- determinism and ground truth ---------------------------------------------------------


def run_with(plan_at_s: dict[float, Plan], seed: int = 0) -> SimulatedCluster:
    c = SimulatedCluster(
        world(deployment("web", replicas=1, rate_rps=8.0, slice_pct=30), seed=seed)
    )
    t = 0.0
    while t < 900.0:
        if t in plan_at_s:
            c.apply(plan_at_s[t])
        c.advance(15.0)
        t += 15.0
    return c


def test_same_seed_same_report() -> None:
    plans = {300.0: scale("web", 2, 40)}
    assert run_with(plans).report() == run_with(plans).report()
    assert run_with(plans, seed=1).report() != run_with(plans).report()


def test_arrivals_are_identical_whatever_the_controller_does() -> None:
    idle = run_with({}).report().workload("t/web")
    busy = run_with({60.0: scale("web", 3, 20), 300.0: scale("web", 1, 80)}).report()
    busy_web = busy.workload("t/web")
    assert [m.requests for m in idle.timeline] == [m.requests for m in busy_web.timeline]
    assert idle.requests == busy_web.requests
    assert idle.good_requests != busy_web.good_requests or idle.timeline != busy_web.timeline


def test_mm1_through_the_cluster_matches_theory() -> None:
    # lambda = 6, mu = 10 (exponential service on a whole card): P(T <= 0.5 s) = 1 - e^-2
    w = world(
        deployment(
            "web",
            replicas=1,
            slice_pct=100,
            rate_rps=6.0,
            t0_s=0.1,
            s_sat_pct=100,
            service_cv=1.0,
            target_ms=500.0,
        ),
        seed=5,
    )
    c = SimulatedCluster(w)
    c.advance(6 * 3600.0)  # ~130 000 requests
    r = c.report().workload("t/web")
    assert r.attainment == pytest.approx(1 - math.exp(-2.0), abs=0.01)
    # utilisation: busy 60 % of the time on a whole card
    assert r.used_gpu_h / r.allocated_gpu_h == pytest.approx(0.6, abs=0.02)
    # per-minute p99 rows exist for every minute and are plausible (theory 1.15 s)
    assert len(r.timeline) == 360
    median_p99 = sorted(m.latency_ms or 0.0 for m in r.timeline)[180]
    assert 700.0 < median_p99 < 1600.0
