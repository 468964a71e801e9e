"""A failing rollout as Kubernetes says it (``actuators.kubernetes.rollouts``), and the
rollback written while that rollout is unfinished."""

from __future__ import annotations

import time
from typing import Any

import pytest

from actuators.kubernetes.rollouts import rollout_failure
from controller.domain import Allocation, Plan, Reason, RolloutFailureReason, ScaleAction
from tests.k8s.conftest import deployment, gpu_node, hami_resources, make_cluster, pod
from tests.k8s.fakeapi import FakeApiServer
from tests.k8s.test_actuation import WEB, _settle, scale

JsonObj = dict[str, Any]
NEW = hami_resources(30, 8000)  # the template now: resized from 50 % / 20480 MiB


def _failing_deployment() -> JsonObj:
    dep = deployment("web", resources=NEW, settled=False)
    dep["metadata"]["generation"] = 2
    dep["status"] = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1}
    return dep


def _pod(name: str, resources: JsonObj, status: JsonObj, *, node: str | None = "gpu-1") -> JsonObj:
    out = pod(name, owner=("ReplicaSet", f"web-{name}"), resources=resources, node=node)
    out["metadata"]["labels"] = {"pod-template-hash": name}
    out["status"].update(status)
    return out


def _container(state: JsonObj, last: JsonObj | None = None) -> JsonObj:
    return {"containerStatuses": [{"name": "main", "state": state, "lastState": last or {}}]}


OOM = _container(
    {"waiting": {"reason": "CrashLoopBackOff"}}, {"terminated": {"reason": "OOMKilled"}}
)
LOOP = _container({"waiting": {"reason": "CrashLoopBackOff"}}, {"terminated": {"reason": "Error"}})
UNSCHEDULABLE = {
    "phase": "Pending",
    "conditions": [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpucores.",
        }
    ],
}
DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "lastTransitionTime": "2026-01-01T00:10:00Z",
    "message": 'ReplicaSet "web-7d9" has timed out progressing.',
}


@pytest.mark.parametrize(
    ("case", "new_pod", "expected", "named"),
    [
        ("OOMKilled, now crash-looping", _pod("new", NEW, OOM), "OOMKilled", "pod new"),
        ("crash-looping", _pod("new", NEW, LOOP), "CrashLoopBackOff", "CrashLoopBackOff"),
        (
            "pending with no fit",
            _pod("new", NEW, UNSCHEDULABLE, node=None),
            "Unschedulable",
            "Insufficient nvidia.com/gpucores",
        ),
        ("starting", _pod("new", NEW, {"conditions": []}), None, ""),
        # the old template's pod crashing is not this rollout's failure
        ("an old pod OOMKilled", _pod("old", hami_resources(50, 20480), OOM), None, ""),
    ],
)
def test_the_current_templates_pods_say_why_they_fail(
    case: str, new_pod: JsonObj, expected: str | None, named: str
) -> None:
    old = _pod("old-ok", hami_resources(50, 20480), {})
    failure = rollout_failure(_failing_deployment(), [old, new_pod], 81920)
    if expected is None:
        assert failure is None, case
        return
    assert failure is not None and failure.reason == expected, case
    assert named in failure.describe(), case


def test_the_progress_deadline_of_the_current_generation() -> None:
    dep = _failing_deployment()
    dep["status"]["conditions"] = [DEADLINE]
    failure = rollout_failure(dep, [], 81920)
    assert failure is not None and failure.reason is RolloutFailureReason.PROGRESS_DEADLINE
    assert failure.since_s == 1767226200.0  # 2026-01-01T00:10:00Z
    dep["metadata"]["generation"] = 3  # a newer template: the condition is about the last one
    assert rollout_failure(dep, [], 81920) is None


def test_discovery_puts_the_failure_on_the_snapshot(server: FakeApiServer) -> None:
    server.put(gpu_node("gpu-1"))
    server.put(_failing_deployment())
    server.put(_pod("old-ok", hami_resources(50, 20480), {}))
    server.put(_pod("new", NEW, OOM))
    c = make_cluster(server)
    try:
        deadline = time.monotonic() + 3.0
        while True:
            (dep,) = c.snapshot().deployments
            if dep.rollout_failure is not None or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert dep.rollout_failure is not None
        assert dep.rollout_failure.reason is RolloutFailureReason.OOM_KILLED
        assert (dep.slice_pct, dep.memory_mib) == (30, 8000)
    finally:
        c.close()


def test_a_rollback_is_written_while_the_failed_rollout_is_unfinished(
    server: FakeApiServer,
) -> None:
    server.put(deployment("web", replicas=2))
    c = make_cluster(server)
    try:
        (first,) = c.apply(scale(2, pct=30, mib=8000, reason=Reason.RESIZE))
        assert first.ok
        c.deployments.wait_synced(1)
        (part,) = c.deployments.parts  # the one cluster-wide reflector
        part._store["ml/web"] = c.api.get(c.deployments.resource, "web", "ml")
        (deferred,) = c.apply(scale(2, pct=60, reason=Reason.RESIZE))
        assert not deferred.ok and "rollout" in deferred.message  # no resize stacked on it
        back = ScaleAction(WEB, Allocation(2, 50), 20480, Reason.RESIZE_FAILED)
        (rolled,) = c.apply(Plan(scale=(back,)))
        assert rolled.ok, rolled.message
        dep = server.obj("Deployment", "ml", "web")
        assert dep is not None
        limits = dep["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"]
        assert (limits["nvidia.com/gpucores"], limits["nvidia.com/gpumem"]) == ("50", "20480")
        _settle(server)
    finally:
        c.close()
