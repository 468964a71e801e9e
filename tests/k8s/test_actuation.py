"""Actuation: replicas via scale, slice per dialect, suspend/resume, eviction, CronJob->Job."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import pytest

from actuators.kubernetes.cluster import EVENT_MESSAGE_LIMIT, event_message
from controller.domain import (
    Allocation,
    Condition,
    ConditionType,
    JobAction,
    Plan,
    Reason,
    ScaleAction,
    WorkloadRef,
)
from tests.k8s.conftest import deployment, gpu_node, job, make_cluster, pdb, pod
from tests.k8s.fakeapi import FakeApiServer

WEB = WorkloadRef("ml", "web")


def scale(replicas: int, pct: int = 50, mib: int = 20480, reason: Reason = Reason.SCALE_UP) -> Plan:
    return Plan(scale=(ScaleAction(WEB, Allocation(replicas, pct), mib, reason),))


def _server_container(server: FakeApiServer) -> dict[str, Any]:
    dep = server.obj("Deployment", "ml", "web")
    assert dep is not None
    container: dict[str, Any] = dep["spec"]["template"]["spec"]["containers"][1]
    return container


def _settle(server: FakeApiServer) -> None:
    """What the Deployment controller does once a rollout has finished."""

    def done(d: dict) -> None:  # type: ignore[type-arg]
        n = d["spec"]["replicas"]
        d["status"] = {
            "observedGeneration": d["metadata"]["generation"],
            "replicas": n,
            "updatedReplicas": n,
            "readyReplicas": n,
            "availableReplicas": n,
        }

    server.mutate("Deployment", "ml", "web", done)


def test_replicas_go_through_the_scale_subresource(server: FakeApiServer) -> None:
    server.put(deployment("web", replicas=2))
    c = make_cluster(server)
    try:
        (r,) = c.apply(scale(4))
        assert r.ok and "replicas 2->4" in r.message
        paths = [(w.method, w.resource) for w in server.writes()]
        assert paths == [
            ("PATCH", "deployments/scale"),
            ("PATCH", "deployments"),
            ("POST", "events"),
        ]
        dep = server.obj("Deployment", "ml", "web")
        assert dep is not None and dep["spec"]["replicas"] == 4
        decision = json.loads(dep["metadata"]["annotations"]["sloscale.io/last-decision"])
        assert (
            decision["action"] == "scale" and decision["reason"] == "ScaleUp" and decision["time"]
        )
        (event,) = server.objects("Event")
        assert event["reason"] == "ScaleUp" and event["involvedObject"]["name"] == "web"
        assert event["involvedObject"]["kind"] == "Deployment"
    finally:
        c.close()


SIZED = Condition(ConditionType.SCALING_ACTIVE, True, Reason.SCALE_UP, "sized for 80.0 rps")
LIMITED = Condition(
    ConditionType.SCALING_LIMITED, True, Reason.SCALE_UP_LIMITED, "limited to 4 replicas"
)


def test_the_event_and_the_annotation_carry_every_condition(server: FakeApiServer) -> None:
    server.put(deployment("web", replicas=2))
    c = make_cluster(server)
    try:
        action = ScaleAction(WEB, Allocation(4, 50), 20480, Reason.SCALE_UP_LIMITED)
        (r,) = c.apply(Plan(scale=(replace(action, conditions=(SIZED, LIMITED)),)))
        assert r.ok
        dep = server.obj("Deployment", "ml", "web")
        assert dep is not None
        decision = json.loads(dep["metadata"]["annotations"]["sloscale.io/last-decision"])
        assert decision["conditions"] == [SIZED.as_dict(), LIMITED.as_dict()]
        (event,) = server.objects("Event")
        assert event["message"] == (
            "replicas 2->4; ScalingActive=True ScaleUp: sized for 80.0 rps; "
            "ScalingLimited=True ScaleUpLimited: limited to 4 replicas"
        )
    finally:
        c.close()


def test_an_event_summarises_a_condition_set_past_its_limit() -> None:
    long = replace(LIMITED, message="x" * EVENT_MESSAGE_LIMIT)
    message = event_message("replicas 2->4", (SIZED, long))
    assert len(message) <= EVENT_MESSAGE_LIMIT
    assert "ScalingActive=True ScaleUp" in message
    assert "ScalingLimited=True ScaleUpLimited" in message
    assert "sloscale.io/last-decision" in message  # where the whole set is


def test_the_same_decision_is_not_written_twice(server: FakeApiServer) -> None:
    server.put(deployment("web", replicas=2))
    c = make_cluster(server)
    try:
        plan = Plan(scale=(replace(scale(4).scale[0], conditions=(SIZED,)),))
        assert c.apply(plan)[0].ok
        server.mutate("Deployment", "ml", "web", lambda d: d["spec"].update(replicas=2))
        deadline = time.monotonic() + 5.0
        while c.snapshot().deployments[0].replicas != 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # the watch brings the other writer's change to the cache
        before = len(server.writes())
        assert c.apply(plan)[0].ok  # replicas change again, the decision is the same
        paths = [(w.method, w.resource) for w in server.writes()[before:]]
        assert paths == [("PATCH", "deployments/scale"), ("POST", "events")]
    finally:
        c.close()


def test_apply_is_idempotent(server: FakeApiServer) -> None:
    server.put(deployment("web", replicas=2))
    c = make_cluster(server)
    try:
        (r,) = c.apply(scale(2))
        assert r.ok and r.message == "no change"
        assert server.writes() == []
    finally:
        c.close()


EXPECTED_LIMITS = {
    "hami": (
        {"nvidia.com/gpu": "1", "nvidia.com/gpucores": "30", "nvidia.com/gpumem": "16384"},
        None,
    ),
    "volcano": (
        {
            "volcano.sh/vgpu-number": "1",
            "volcano.sh/vgpu-cores": "30",
            "volcano.sh/vgpu-memory": "16384",
        },
        None,
    ),
    "kai": ({}, "0.3"),
    "mig": ({"nvidia.com/mig-3g.40gb": "1"}, None),  # 30 % and 16 GiB: smallest holding both
}


@pytest.mark.parametrize("dialect", sorted(EXPECTED_LIMITS))
def test_resize_patches_the_template_in_each_dialect(server: FakeApiServer, dialect: str) -> None:
    server.put(gpu_node("gpu-1"))
    server.put(deployment("web", annotations={"sloscale.io/slice-dialect": dialect}))
    c = make_cluster(server)
    try:
        (r,) = c.apply(scale(2, pct=30, mib=16384, reason=Reason.RESIZE))
        assert r.ok, r.message
        patch = next(w for w in server.writes() if w.resource == "deployments")
        # the template starts in HAMi: another dialect must remove HAMi's keys, which only a
        # patch can (test_field_ownership.py); HAMi itself is resized by a server-side apply
        assert patch.content_type == (
            "application/apply-patch+yaml"
            if dialect == "hami"
            else "application/strategic-merge-patch+json"
        )
        container = _server_container(server)
        limits, fraction = EXPECTED_LIMITS[dialect]
        assert container["resources"].get("limits", {}) == limits
        dep = server.obj("Deployment", "ml", "web")
        assert dep is not None
        tmeta = dep["spec"]["template"]["metadata"]
        assert tmeta["annotations"].get("gpu-fraction") == fraction
        assert dep["spec"]["template"]["spec"]["containers"][0]["name"] == "sidecar"  # untouched
        assert dep["metadata"]["generation"] == 2  # the template changed: a rollout starts
    finally:
        c.close()


SCHEDULER_NAMES = {"hami": None, "mig": None, "volcano": "volcano", "kai": "kai-scheduler"}


@pytest.mark.parametrize("dialect", sorted(SCHEDULER_NAMES))
def test_a_resize_names_the_scheduler_its_dialect_needs(
    server: FakeApiServer, dialect: str
) -> None:
    """Only Volcano binds vGPUs and only KAI honours gpu-fraction: their dialects write the
    scheduler's name with the slice; the queue the team set stays as it is."""
    queue = {"kai.scheduler/queue": "team-a"}
    obj = deployment("web", annotations={"sloscale.io/slice-dialect": dialect})
    obj["spec"]["template"]["metadata"]["labels"].update(queue)
    server.put(obj)
    c = make_cluster(server)
    try:
        (r,) = c.apply(scale(2, pct=30, mib=16384, reason=Reason.RESIZE))
        assert r.ok, r.message
        dep = server.obj("Deployment", "ml", "web")
        assert dep is not None
        pod_spec = dep["spec"]["template"]["spec"]
        assert pod_spec.get("schedulerName") == SCHEDULER_NAMES[dialect]
        assert queue.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
        (again,) = c.apply(scale(2, pct=30, mib=16384, reason=Reason.RESIZE))
        assert again.ok and "slice" not in again.message  # idempotent: nothing left to write
    finally:
        c.close()


def test_resize_surges_only_when_the_inventory_holds_it(server: FakeApiServer) -> None:
    server.put(gpu_node("gpu-1", cards=1))
    for i in range(2):  # the card is full: 2 x 50 %
        server.put(
            pod(
                f"web-abc-{i}", owner=("ReplicaSet", "web-abc"), labels={"pod-template-hash": "abc"}
            )
        )
    server.put(deployment("web"))
    c = make_cluster(server)
    try:
        (r,) = c.apply(scale(2, pct=40, mib=16384, reason=Reason.RESIZE))
        assert r.ok and "maxUnavailable 1" in r.message
        dep = server.obj("Deployment", "ml", "web")
        assert dep is not None
        assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    finally:
        c.close()
    server.put(gpu_node("gpu-2", cards=1))  # room for one more pod now
    server.put(deployment("web"))
    _settle(server)
    c = make_cluster(server)
    try:
        (r,) = c.apply(scale(2, pct=40, mib=16384, reason=Reason.RESIZE))
        assert r.ok and "surge 1" in r.message
        dep = server.obj("Deployment", "ml", "web")
        assert dep is not None
        assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    finally:
        c.close()


def test_no_resize_stacked_on_an_unfinished_rollout(server: FakeApiServer) -> None:
    server.put(deployment("web", replicas=2))
    c = make_cluster(server)
    try:
        (first,) = c.apply(scale(2, pct=30, reason=Reason.RESIZE))
        assert first.ok
        c.deployments.wait_synced(1)
        server.requests.clear()
        dep = c.api.get(c.deployments.resource, "web", "ml")
        c.deployments.parts[0]._store["ml/web"] = dep  # the cache has seen the rollout start
        (second,) = c.apply(scale(2, pct=60, reason=Reason.RESIZE))
        assert not second.ok and "rollout" in second.message
        assert server.writes() == []
        _settle(server)
        c.deployments.parts[0]._store["ml/web"] = c.api.get(c.deployments.resource, "web", "ml")
        (third,) = c.apply(scale(2, pct=60, reason=Reason.RESIZE))
        assert third.ok, third.message
    finally:
        c.close()


def test_suspend_and_resume_a_job_gang(server: FakeApiServer) -> None:
    server.put(job("train"))
    c = make_cluster(server)
    ref = WorkloadRef("ml", "train", "Job")
    try:
        (r,) = c.apply(Plan(jobs=(JobAction(ref, True, Reason.PREEMPTED),)))
        assert r.ok and r.message == "suspended"
        j = server.obj("Job", "ml", "train")
        assert j is not None and j["spec"]["suspend"] is True
        assert (
            json.loads(j["metadata"]["annotations"]["sloscale.io/last-decision"])["reason"]
            == "Preempted"
        )
        c.jobs.parts[0]._store["ml/train"] = j
        (r,) = c.apply(Plan(jobs=(JobAction(ref, False, Reason.RESUMED),)))
        assert r.ok and r.message == "resumed"
        j = server.obj("Job", "ml", "train")
        assert j is not None and j["spec"]["suspend"] is False
        assert [e["reason"] for e in server.objects("Event")] == ["Preempted", "Resumed"]
    finally:
        c.close()


def test_bare_pod_is_evicted_and_pdb_429_is_reported(server: FakeApiServer) -> None:
    server.put(pod("free", labels={"app": "free"}, annotations={"sloscale.io/preemptible": "true"}))
    server.put(pod("guarded", labels={"app": "g"}, annotations={"sloscale.io/preemptible": "true"}))
    server.put(pdb("g-pdb", "ml", {"app": "g"}, allowed=0))
    c = make_cluster(server)
    try:
        plan = Plan(
            jobs=(
                JobAction(WorkloadRef("ml", "free", "Pod"), True, Reason.PREEMPTED),
                JobAction(WorkloadRef("ml", "guarded", "Pod"), True, Reason.PREEMPTED),
            )
        )
        free, guarded = c.apply(plan)
        assert free.ok and free.message == "evicted"
        assert server.obj("Pod", "ml", "free") is None
        assert not guarded.ok and "429" in guarded.message
        assert "disruption budget g-pdb needs 1 healthy pods" in guarded.message
        assert server.obj("Pod", "ml", "guarded") is not None
        evictions = [w for w in server.writes() if w.resource == "pods/eviction"]
        assert len(evictions) == 2
        assert {e["reason"] for e in server.objects("Event")} == {"Preempted", "EvictionBlocked"}
    finally:
        c.close()


def test_job_from_cronjob_is_idempotent(server: FakeApiServer) -> None:
    server.put(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "retrain", "namespace": "ml"},
            "spec": {
                "schedule": "0 3 * * *",
                "suspend": True,
                "jobTemplate": {
                    "metadata": {"labels": {"app": "retrain"}},
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [{"name": "t", "image": "x"}],
                            }
                        }
                    },
                },
            },
        }
    )
    c = make_cluster(server)
    try:
        first = c.create_job_from_cronjob(
            "ml", "retrain", "retrain-llama-1", labels={"sloscale.io/retrain-of": "web"}
        )
        again = c.create_job_from_cronjob("ml", "retrain", "retrain-llama-1")
        assert first.ok and again.ok and "already exists" in again.message
        created = server.obj("Job", "ml", "retrain-llama-1")
        assert created is not None
        assert created["metadata"]["labels"] == {"app": "retrain", "sloscale.io/retrain-of": "web"}
        assert created["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
        assert created["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    finally:
        c.close()


def test_other_dialect_keys_are_cleared_when_the_dialect_changes(server: FakeApiServer) -> None:
    server.put(deployment("web", annotations={"sloscale.io/slice-dialect": "volcano"}))
    c = make_cluster(server)
    try:
        (r,) = c.apply(scale(2, pct=50, mib=20480, reason=Reason.RESIZE))
        assert r.ok
        limits = _server_container(server)["resources"]["limits"]
        assert not any(k.startswith("nvidia.com/") for k in limits)
    finally:
        c.close()


def test_a_scale_in_marks_the_named_pods_with_a_deletion_cost_first(server: FakeApiServer) -> None:
    server.put(deployment("web", replicas=3))
    for name in ("web-a", "web-b", "web-c"):
        server.put(pod(name, owner=("ReplicaSet", "web-1")))
    c = make_cluster(server)
    try:
        action = ScaleAction(WEB, Allocation(1, 50), 20480, Reason.SCALE_DOWN, ("web-c", "web-a"))
        (r,) = c.apply(Plan(scale=(action,)))
        assert r.ok, r.message
        paths = [(w.method, w.resource) for w in server.writes()]
        assert paths[:3] == [("PATCH", "pods"), ("PATCH", "pods"), ("PATCH", "deployments/scale")]
        cost = "controller.kubernetes.io/pod-deletion-cost"
        marks = {}
        for name in ("web-a", "web-b", "web-c"):
            obj = server.obj("Pod", "ml", name)
            assert obj is not None
            marks[name] = obj["metadata"].get("annotations", {}).get(cost)
        assert marks == {"web-c": "-1000", "web-a": "-999", "web-b": None}
    finally:
        c.close()


def test_a_pod_gone_before_it_is_marked_does_not_stop_the_scale_in(server: FakeApiServer) -> None:
    server.put(deployment("web", replicas=2))
    c = make_cluster(server)
    try:
        action = ScaleAction(WEB, Allocation(1, 50), 20480, Reason.SCALE_DOWN, ("web-gone",))
        (r,) = c.apply(Plan(scale=(action,)))
        assert r.ok and "replicas 2->1" in r.message
        dep = server.obj("Deployment", "ml", "web")
        assert dep is not None and dep["spec"]["replicas"] == 1
    finally:
        c.close()
