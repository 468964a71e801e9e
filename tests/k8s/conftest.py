"""Fixtures for the Kubernetes adapter tests: a fake API server, a client, object builders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration

from actuators.kubernetes import KubeApi, KubernetesCluster, KubernetesOptions
from tests.k8s.fakeapi import FakeApiServer
from tests.support.kube import kube  # noqa: F401  (the real control plane, session-scoped)

JsonObj = dict[str, Any]


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer(bookmark_interval_s=0.2) as s:
        yield s


def make_api(server: FakeApiServer, identity: str = "sloscale") -> KubeApi:
    configuration = Configuration(host=server.url)
    client = ApiClient(configuration)
    client.user_agent = f"sloscale/{identity}"
    return KubeApi(client)


@pytest.fixture
def api(server: FakeApiServer) -> Iterator[KubeApi]:
    a = make_api(server)
    yield a
    a.close()


def make_cluster(server: FakeApiServer, **options: Any) -> KubernetesCluster:
    opts = KubernetesOptions(watch_timeout_s=5, sync_timeout_s=5, **options)
    cluster = KubernetesCluster(make_api(server), opts, sleep=lambda _s: None)
    cluster.start()
    assert cluster.wait_synced(5)
    return cluster


@pytest.fixture
def cluster(server: FakeApiServer) -> Iterator[KubernetesCluster]:
    c = make_cluster(server)
    yield c
    c.close()


# ---- object builders ------------------------------------------------------------------------


def gpu_node(name: str, cards: int = 2, memory_mib: int = 81920, *, hami: bool = True) -> JsonObj:
    annotations = {}
    if hami:
        annotations["hami.io/node-nvidia-register"] = (
            "["
            + ",".join(
                f'{{"id":"GPU-{name}-{i}","index":{i},"count":10,"devmem":{memory_mib},'
                f'"devcore":100,"type":"NVIDIA-H100","numa":0,"mode":"hami-core","health":true}}'
                for i in range(cards)
            )
            + "]"
        )
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": annotations,
            "labels": {
                "nvidia.com/gpu.memory": str(memory_mib),
                "nvidia.com/gpu.count": str(cards),
            },
        },
        "status": {"allocatable": {"nvidia.com/gpu": str(cards * 10 if hami else cards)}},
    }


def hami_resources(pct: int, mib: int) -> JsonObj:
    return {
        "limits": {
            "nvidia.com/gpu": "1",
            "nvidia.com/gpucores": str(pct),
            "nvidia.com/gpumem": str(mib),
        }
    }


def deployment(
    name: str,
    namespace: str = "ml",
    *,
    replicas: int = 2,
    resources: JsonObj | None = None,
    template_annotations: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    settled: bool = True,
) -> JsonObj:
    ann = {"sloscale.io/enabled": "true", "sloscale.io/latency-target-ms": "200"}
    ann.update(annotations or {})
    status = (
        {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }
        if settled
        else {}
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": ann,
            "labels": labels or {"app": name},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": template_annotations or {}},
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "envoy"},
                        {
                            "name": "server",
                            "image": "vllm/vllm-openai",
                            "resources": resources
                            if resources is not None
                            else hami_resources(50, 20480),
                        },
                    ]
                },
            },
        },
        "status": status,
    }


def pod(
    name: str,
    namespace: str = "ml",
    *,
    node: str | None = "gpu-1",
    resources: JsonObj | None = None,
    owner: tuple[str, str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    ready: bool = True,
    phase: str = "Running",
) -> JsonObj:
    meta: JsonObj = {
        "name": name,
        "namespace": namespace,
        "labels": labels or {},
        "annotations": annotations or {},
    }
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": "x",
                "controller": True,
            }
        ]
    spec: JsonObj = {
        "containers": [
            {"name": "main", "image": "x", "resources": resources or hami_resources(50, 20480)}
        ]
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {
            "phase": phase,
            "startTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def job(
    name: str,
    namespace: str = "ml",
    *,
    suspend: bool = False,
    parallelism: int = 2,
    annotations: dict[str, str] | None = None,
) -> JsonObj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": annotations
            if annotations is not None
            else {"sloscale.io/preemptible": "true", "sloscale.io/priority": "low"},
        },
        "spec": {
            "suspend": suspend,
            "parallelism": parallelism,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "train", "image": "x", "resources": hami_resources(30, 10240)}
                    ],
                }
            },
        },
        "status": {"active": 0 if suspend else parallelism, "startTime": "2026-01-01T00:00:00Z"},
    }


def pdb(name: str, namespace: str, labels: dict[str, str], allowed: int) -> JsonObj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": labels}, "minAvailable": 1},
        "status": {
            "disruptionsAllowed": allowed,
            "currentHealthy": 1,
            "desiredHealthy": 1,
            "expectedPods": 1,
        },
    }
