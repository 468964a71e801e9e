"""Shadow mode (--dry-run): reads everything, writes nothing, says what it would have done."""

from __future__ import annotations

from actuators.kubernetes import KubernetesCluster
from controller.domain import Allocation, JobAction, Plan, Reason, ScaleAction, WorkloadRef
from tests.k8s.conftest import deployment, gpu_node, job, make_cluster, pod
from tests.k8s.fakeapi import FakeApiServer

PLAN = Plan(
    scale=(ScaleAction(WorkloadRef("ml", "web"), Allocation(4, 30), 16384, Reason.SCALE_UP),),
    jobs=(
        JobAction(WorkloadRef("ml", "train", "Job"), True, Reason.PREEMPTED),
        JobAction(WorkloadRef("ml", "batch", "Pod"), True, Reason.PREEMPTED),
    ),
)


def _world(server: FakeApiServer) -> None:
    server.put(gpu_node("gpu-1"))
    server.put(deployment("web", replicas=2))
    server.put(job("train"))
    server.put(pod("batch", annotations={"sloscale.io/preemptible": "true"}))


def _check_shadow(server: FakeApiServer, c: KubernetesCluster, results: list) -> None:  # type: ignore[type-arg]
    assert server.writes() == []  # the API server saw no write request at all
    assert all(r.ok and r.message.startswith("dry-run: would") for r in results)
    assert [s.action for s in c.shadow_log] == ["scale", "suspend", "evict"]
    assert "replicas 2->4" in c.shadow_log[0].detail and "slice" in c.shadow_log[0].detail


def test_dry_run_option_writes_nothing(server: FakeApiServer) -> None:
    _world(server)
    c = make_cluster(server, dry_run=True)
    try:
        snap = c.snapshot()
        assert snap.deployments and snap.jobs  # it reads everything
        results = c.apply(PLAN)  # even when the caller forgets dry_run
        _check_shadow(server, c, results)
        c.create_job_from_cronjob("ml", "missing-is-read-only", "j")
        assert server.writes() == []
    finally:
        c.close()


def test_dry_run_argument_writes_nothing(server: FakeApiServer) -> None:
    _world(server)
    c = make_cluster(server)
    try:
        _check_shadow(server, c, c.apply(PLAN, dry_run=True))
    finally:
        c.close()
