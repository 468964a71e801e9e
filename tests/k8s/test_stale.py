"""A cache that cannot be confirmed current is refused, and a write raced by another writer is
not re-sent over the other writer's change: both end in a hold, re-planned on fresh data."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from actuators.kubernetes import KubernetesCluster, KubernetesOptions
from controller.domain import Allocation, Plan, Reason, ScaleAction, WorkloadRef
from controller.loop import Controller, LoopConfig
from tests.fakes import FakeClock, FakeMetrics
from tests.k8s.conftest import deployment, gpu_node, make_api, make_cluster, pod
from tests.k8s.fakeapi import FakeApiServer, Request
from tests.scenario.test_tick import busy

WEB = "ml/web"


def _eventually(ok: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _replicas(server: FakeApiServer) -> int:
    dep = server.obj("Deployment", "ml", "web")
    assert dep is not None
    return int(dep["spec"]["replicas"])


def test_a_failing_watch_holds_the_loop_instead_of_serving_stale_replicas(
    server: FakeApiServer,
) -> None:
    server.put(gpu_node("gpu-1"))
    server.put(deployment("web", replicas=2))
    for i in range(2):
        server.put(pod(f"web-{i}", owner=("ReplicaSet", "web-abc")))
    # short watches and a one-second bound: the fault shows within seconds
    options = KubernetesOptions(watch_timeout_s=1, sync_timeout_s=1.0)
    cluster = KubernetesCluster(make_api(server), options, sleep=lambda _s: None)
    cluster.start()
    assert cluster.wait_synced(5)
    clock = FakeClock(1000.0)
    metrics = FakeMetrics({WEB: busy(400.0, 2, 50)})  # heavy load: the planner wants more
    controller = Controller(cluster, metrics, clock, LoopConfig(interval_s=15.0, dry_run=True))
    try:
        first = controller.tick()
        assert any(d.target == WEB for d in first.decisions), first.errors

        # every Deployments watch now fails (not 410), and another writer scales web to 8
        server.fail_next(
            "GET", "deployments", 500, "InternalError", "etcd unavailable", 10**6, verb="watch"
        )
        _eventually(lambda: cluster.deployments.last_error is not None, 10)
        server.mutate("Deployment", "ml", "web", lambda d: d["spec"].update(replicas=8))
        time.sleep(1.5)  # longer than the bound, without a confirmed watch

        with pytest.raises(RuntimeError, match="deployments"):
            cluster.snapshot()  # not the cached 2 replicas, served as if current
        clock.advance(15.0)
        report = controller.tick()
        assert report.snapshot is None  # discovery failed: nothing planned, nothing applied
        assert not [d for d in report.decisions if d.target == WEB]
        assert any("discover" in e and "deployments" in e for e in report.errors), report.errors
        assert server.writes() == []

        server.clear_faults()  # the watch recovers: the other writer's 8 is seen
        _eventually(lambda: _try_replicas(cluster) == 8, 15)
    finally:
        cluster.close()


def _try_replicas(cluster: KubernetesCluster) -> int | None:
    try:
        snap = cluster.snapshot()
    except RuntimeError:
        return None
    return next(d.replicas for d in snap.deployments if d.ref.key == WEB)


def test_a_conflict_over_a_changed_replica_count_is_not_overwritten(
    server: FakeApiServer,
) -> None:
    server.put(deployment("web", replicas=2))
    cluster = make_cluster(server)
    try:
        snap = cluster.snapshot()
        assert next(d.replicas for d in snap.deployments if d.ref.key == WEB) == 2
        raced: list[Request] = []

        def another_writer_scales_to_8(req: Request) -> None:
            if req.resource == "deployments/scale" and not raced:
                raced.append(req)
                dep = server.obj("Deployment", "ml", "web")
                assert dep is not None
                dep["spec"]["replicas"] = 8
                server.put(dep)  # our write, planned 2 -> 3, is now stale: 409

        server.before_write = another_writer_scales_to_8
        action = ScaleAction(WorkloadRef("ml", "web"), Allocation(3, 50), 20480, Reason.SCALE_UP)
        (result,) = cluster.apply(Plan(scale=(action,)))
        assert raced, "the race did not happen"
        assert not result.ok, result.message
        assert "8" in result.message and "conflict" in result.message.lower()
        assert _replicas(server) == 8  # the other writer's change stands
        scale_writes = [w for w in server.writes() if w.resource == "deployments/scale"]
        assert len(scale_writes) == 1  # the 409'd one; nothing re-sent
    finally:
        cluster.close()


def test_a_resize_that_conflicts_after_its_own_scale_write_is_carried_on(
    server: FakeApiServer,
) -> None:
    """A scale and a resize in one action: the replicas go first, then the resize, made
    conditional on the resourceVersion the scale answered. On a real cluster the Deployment
    controller updates the status in between (``tests/k8s/test_real_workloads.py``), so the
    resize meets a 409; the retry must not take sloscale's own replicas for another writer's
    change, nor wait for the rollout the scale began."""
    server.put(deployment("web", replicas=2))
    cluster = make_cluster(server)
    try:
        cluster.snapshot()
        scaled: list[Request] = []

        def the_deployment_controller_answers_the_scale(req: Request) -> None:
            if req.resource == "deployments/scale":
                scaled.append(req)
            elif req.resource == "deployments" and len(scaled) == 1 and req.method == "PATCH":
                scaled.append(req)
                server.mutate(
                    "Deployment",
                    "ml",
                    "web",
                    lambda d: d["status"].update(
                        observedGeneration=2, replicas=3, updatedReplicas=2
                    ),
                )

        server.before_write = the_deployment_controller_answers_the_scale
        action = ScaleAction(WorkloadRef("ml", "web"), Allocation(3, 30), 16384, Reason.SCALE_UP)
        (result,) = cluster.apply(Plan(scale=(action,)))
        assert len(scaled) == 2, "the race did not happen"
        assert result.ok, result.message
        assert result.message.startswith("set replicas 2->3, slice 50 %/20480 MiB->30 %"), result
        dep = server.obj("Deployment", "ml", "web")
        assert dep is not None and dep["spec"]["replicas"] == 3
        limits = dep["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"]
        assert limits["nvidia.com/gpucores"] == "30"
        scale_writes = [w for w in server.writes() if w.resource == "deployments/scale"]
        assert len(scale_writes) == 1  # the replicas were not written twice
    finally:
        cluster.close()
