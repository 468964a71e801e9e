"""The Kubernetes adapter against a real control plane (``tests.support.kube``: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kwok's fake GPU nodes), where the
fake API server (``tests/k8s/fakeapi``) stands in everywhere else (issue #27).

What only a real cluster says: that the adapter, as the user of sloscale's ServiceAccount with
exactly the RBAC of ``deploy/base``, can discover and scale; that the scale subresource is what
the API server records the write under; and that the controllers act on it (the ReplicaSet
controller makes the pods, the scheduler binds them to GPU nodes by their extended resources,
kwok runs them), which the adapter then reads back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actuators.kubernetes import KubernetesCluster, KubernetesOptions, Scope, load_api
from controller.domain import Allocation, Plan, Reason, ScaleAction, WorkloadRef
from tests.k8s.conftest import deployment, hami_resources
from tests.support.gotool import REPO
from tests.support.kube import CONTROLLER, ControlPlane
from tests.support.kube import eventually as _eventually


def eventually(what: str, check: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    return _eventually(what, check, timeout_s, poll_s=0.2)


NAMESPACE = "ml"
WEB = WorkloadRef(NAMESPACE, "web")


@pytest.fixture(scope="module")
def cluster_with_rbac(kube: ControlPlane) -> ControlPlane:
    """The cluster with sloscale's namespace and RBAC from ``deploy/base``, applied unchanged,
    and the namespace of the workloads."""
    base = REPO / "deploy" / "base"
    kube.kubectl("apply", "-f", str(base / "namespace.yaml"), "-f", str(base / "rbac.yaml"))
    kube.create_namespace(NAMESPACE)
    return kube


@pytest.fixture
def adapter(cluster_with_rbac: ControlPlane) -> Iterator[KubernetesCluster]:
    """The adapter as sloscale runs in the cluster: its ServiceAccount's identity."""
    api = load_api(str(cluster_with_rbac.kubeconfig(CONTROLLER)))
    options = KubernetesOptions(scope=Scope.of(NAMESPACE), watch_timeout_s=30, sync_timeout_s=30)
    cluster = KubernetesCluster(api, options).start()
    try:
        assert cluster.wait_synced(30)
        yield cluster
    finally:
        cluster.close()


def _deployment(kube: ControlPlane, name: str) -> dict[str, Any]:
    return kube.request("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}")


def _running_pods(kube: ControlPlane, app: str) -> list[dict[str, Any]]:
    pods = kube.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3D{app}")
    return [p for p in pods["items"] if p["status"].get("phase") == "Running"]


def test_the_adapter_lists_and_scales_a_deployment_through_the_scale_subresource(
    cluster_with_rbac: ControlPlane, adapter: KubernetesCluster
) -> None:
    kube = cluster_with_rbac
    manifest = deployment("web", NAMESPACE, replicas=2, resources=hami_resources(50, 20480))
    del manifest["status"]  # the Deployment controller's to write
    kube.request("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", manifest)
    eventually(
        "2 ready replicas (ReplicaSet controller, scheduler, kwok)",
        lambda: _deployment(kube, "web")["status"].get("readyReplicas") == 2,
    )

    dep = eventually(
        "the adapter sees both replicas ready",
        lambda: next((d for d in adapter.snapshot().deployments if d.ready_replicas == 2), None),
    )
    assert (dep.ref, dep.replicas, dep.slice_pct, dep.memory_mib) == (WEB, 2, 50, 20480)

    plan = Plan(scale=(ScaleAction(WEB, Allocation(4, 50), 20480, Reason.SCALE_UP),))
    (result,) = adapter.apply(plan)
    assert result.ok and "replicas 2->4" in result.message, result.message

    live = _deployment(kube, "web")
    assert live["spec"]["replicas"] == 4
    scale_writes = [f for f in live["metadata"]["managedFields"] if f.get("subresource") == "scale"]
    assert [f["manager"] for f in scale_writes] == ["sloscale"], live["metadata"]["managedFields"]
    eventually(
        "4 pods Running on the fake GPU nodes",
        lambda: len(_running_pods(kube, "web")) == 4,
    )
    nodes = {p["spec"]["nodeName"] for p in _running_pods(kube, "web")}
    assert nodes <= {n.name for n in kube.nodes}, nodes
    dep = eventually(
        "the adapter sees four replicas ready",
        lambda: next((d for d in adapter.snapshot().deployments if d.ready_replicas == 4), None),
    )
    assert dep.replicas == 4 and not dep.rollout_in_progress
    events = kube.request("GET", f"/api/v1/namespaces/{NAMESPACE}/events")["items"]
    assert any(e["reason"] == "ScaleUp" and e["involvedObject"]["name"] == "web" for e in events), [
        e["reason"] for e in events
    ]
