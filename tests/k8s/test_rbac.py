"""RBAC audit: every request the adapter makes is allowed by deploy/'s roles, and the roles
grant nothing the adapter does not use."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import yaml

from actuators.kubernetes import LeaderElector, LeaseConfig
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
