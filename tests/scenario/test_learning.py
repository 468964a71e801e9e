"""Capacity learning waits out rollouts: a window that mixes two slice sizes is not learnt."""

from dataclasses import replace

from controller.domain import WorkloadMetrics
from controller.loop import Controller, LoopConfig
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, slo_annotations

INTERVAL_S = 15.0


def metrics(util: float) -> WorkloadMetrics:
    return WorkloadMetrics(
        request_rate_rps=10.0, latency_ms=100.0, good_ratio=1.0, gpu_util=util, gpu_busy=util
    )


def test_no_capacity_learning_during_a_rollout_and_one_window_after() -> None:
    clock = FakeClock(1000.0)
    cluster = FakeCluster(clock)
    source = FakeMetrics()
    # dry run: the fake cluster must keep the state this test sets, not the plan's
    ctl = Controller(cluster, source, clock, LoopConfig(interval_s=INTERVAL_S, dry_run=True))
    ref = cluster.add("chat", slo_annotations(), replicas=2, slice_pct=50)
    dep = cluster.deployments[ref.key]
    cluster.deployments[ref.key] = replace(dep, rollout_in_progress=True)
    source.values[ref.key] = metrics(0.4)
    for _ in range(8):
        clock.advance(INTERVAL_S)
        ctl.tick()
    assert ctl._tracked[ref.key].capacity.cost_card_s is None  # nothing learnt mid-rollout
    cluster.deployments[ref.key] = replace(dep, rollout_in_progress=False)
    for _ in range(3):  # 45 s: the 60 s metrics window still holds rollout samples
        clock.advance(INTERVAL_S)
        ctl.tick()
    assert ctl._tracked[ref.key].capacity.cost_card_s is None
    for _ in range(2):
        clock.advance(INTERVAL_S)
        ctl.tick()
    learnt = ctl._tracked[ref.key].capacity.cost_card_s
    assert learnt is not None and abs(learnt - 0.4 * 0.5 / 5.0) < 1e-9
