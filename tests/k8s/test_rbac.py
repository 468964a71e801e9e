"""RBAC audit: every request the adapter makes is allowed by deploy/'s roles, and the roles
grant nothing the adapter does not use."""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

import pytest
import yaml

from actuators.kubernetes import ConfigMapSnapshotStore, LeaderElector, LeaseConfig
from controller.domain import Allocation, JobAction, Plan, Reason, ScaleAction, WorkloadRef
from tests.k8s.conftest import deployment, gpu_node, job, make_api, make_cluster, pod
from tests.k8s.fakeapi import FakeApiServer, rules_from_role

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "base" / "rbac.yaml"


def _roles() -> list[dict]:  # type: ignore[type-arg]
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d["kind"] in ("ClusterRole", "Role")]


def _granted() -> set[tuple[str, str, str]]:
    return {
        (g, r, v)
        for role in _roles()
        for rule in role["rules"]
        for g, r, v in itertools.product(rule["apiGroups"], rule["resources"], rule["verbs"])
    }


def test_every_call_is_allowed_and_every_grant_is_used(server: FakeApiServer) -> None:
    server.rules = [r for role in _roles() for r in rules_from_role(role)]
    server.put(gpu_node("gpu-1"))
    server.put(deployment("web", replicas=2))
    server.put(job("train"))
    server.put(pod("batch", annotations={"sloscale.io/preemptible": "true"}))
    server.put(pod("web-x", owner=("ReplicaSet", "web-1")))
    server.put(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "retrain", "namespace": "ml"},
            "spec": {
                "schedule": "@daily",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [{"name": "t", "image": "x"}],
                                "restartPolicy": "Never",
                            }
                        }
                    }
                },
            },
        }
    )
    api = make_api(server)
    elector = LeaderElector(
        api,
        LeaseConfig("sloscale", lease_duration_s=1, renew_deadline_s=0.7, retry_period_s=0.1),
        "a",
    )
    c = make_cluster(server)
    try:
        assert elector.step()  # create
        assert elector.step()  # get + update
        state = ConfigMapSnapshotStore(api, "sloscale")  # the controller's memory
        assert state.load() is None  # get (not there yet)
        assert state.save({"n": 1}) and state.save({"n": 2})  # create, then update
        assert ConfigMapSnapshotStore(api, "sloscale").load() == {"n": 2}
        c.snapshot()
        raced: list[object] = []

        def conflict_once(req: object) -> None:  # exercises the re-read (get) after a 409
            if not raced:
                raced.append(req)
                server.mutate(
                    "Deployment", "ml", "web", lambda d: d["metadata"]["labels"].update(x="y")
                )

        server.before_write = conflict_once
        results = c.apply(
            Plan(
                scale=(
                    ScaleAction(
                        WorkloadRef("ml", "web"), Allocation(3, 30), 16384, Reason.SCALE_UP
                    ),
                ),
                jobs=(
                    JobAction(WorkloadRef("ml", "train", "Job"), True, Reason.PREEMPTED),
                    JobAction(WorkloadRef("ml", "batch", "Pod"), True, Reason.PREEMPTED),
                ),
            )
        )
        server.before_write = None
        results.append(c.create_job_from_cronjob("ml", "retrain", "retrain-1"))
        raced.clear()

        def job_conflict_once(req: object) -> None:  # a Job re-read (get) after a 409
            if not raced:
                raced.append(req)
                server.mutate(
                    "Job", "ml", "retrain-1", lambda j: j["metadata"].update(labels={"x": "y"})
                )

        server.before_write = job_conflict_once
        results += c.apply(
            Plan(jobs=(JobAction(WorkloadRef("ml", "retrain-1", "Job"), True, Reason.PREEMPTED),))
        )
        server.before_write = None
        results += c.apply(  # a scale-in marks the pods to remove first (pods: patch)
            Plan(
                scale=(
                    ScaleAction(
                        WorkloadRef("ml", "web"),
                        Allocation(2, 30),
                        16384,
                        Reason.SCALE_DOWN,
                        ("web-x",),
                    ),
                )
            )
        )
        assert all(r.ok for r in results), results
        time.sleep(0.1)
    finally:
        c.close()
        elector.stop(release=False)
        api.close()
    used = {(r.group, r.resource, r.verb) for r in server.requests}
    granted = _granted()
    assert used <= granted, f"not granted: {sorted(used - granted)}"
    assert granted <= used, f"granted but never used: {sorted(granted - used)}"


def test_the_state_configmap_is_granted_by_name_only(caplog: pytest.LogCaptureFixture) -> None:
    """Another ConfigMap of the namespace cannot be read or changed (only created, which
    the API cannot limit to a name), nor one elsewhere."""
    with FakeApiServer() as server:
        server.rules = [r for role in _roles() for r in rules_from_role(role)]
        api = make_api(server)
        try:
            own = ConfigMapSnapshotStore(api, "sloscale")
            assert own.save({"n": 1}) and own.save({"n": 2}) and own.load() == {"n": 2}
            with caplog.at_level(logging.WARNING, logger="sloscale.kubernetes.state"):
                assert ConfigMapSnapshotStore(api, "sloscale", "someone-elses").load() is None
                assert not ConfigMapSnapshotStore(api, "ml").save({"n": 1})
        finally:
            api.close()
    refusals = [r.getMessage() for r in caplog.records]
    assert len(refusals) == 2 and all("forbidden" in m for m in refusals)
