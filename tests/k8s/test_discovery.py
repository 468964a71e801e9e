"""Discovery: Kubernetes objects -> domain snapshot, through list + watch caches."""

from __future__ import annotations

import time

import pytest

from actuators.kubernetes import KubernetesCluster, Scope
from actuators.kubernetes.api import DEPLOYMENTS
from actuators.kubernetes.objects import parse_hami_register
from controller.domain import JobPhase
from tests.k8s.conftest import (
    deployment,
    gpu_node,
    hami_resources,
    job,
    make_api,
    make_cluster,
    pod,
)
from tests.k8s.fakeapi import FakeApiServer


def _eventually(check: object, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


DIALECT_TEMPLATES = {
    "hami": (
        {
            "limits": {
                "nvidia.com/gpu": "1",
                "nvidia.com/gpucores": "30",
                "nvidia.com/gpumem": "8000",
            }
        },
        {},
        (30, 8000),
    ),
    "volcano": (
        {
            "limits": {
                "volcano.sh/vgpu-number": "1",
                "volcano.sh/vgpu-cores": "40",
                "volcano.sh/vgpu-memory": "9000",
            }
        },
        {},
        (40, 9000),
    ),
    "kai": ({}, {"gpu-fraction": "0.5"}, (50, 40960)),  # 0.5 x 81920 MiB card
    "mig": ({"limits": {"nvidia.com/mig-3g.40gb": "1"}}, {}, (40, 40960)),  # 3/7 = 42.9 % -> 40
}


@pytest.mark.parametrize("dialect", sorted(DIALECT_TEMPLATES))
def test_slice_is_read_in_every_dialect(server: FakeApiServer, dialect: str) -> None:
    resources, template_annotations, (pct, mib) = DIALECT_TEMPLATES[dialect]
    server.put(gpu_node("gpu-1"))
    server.put(deployment("web", resources=resources, template_annotations=template_annotations))
    c = make_cluster(server)
    try:
        (dep,) = c.snapshot().deployments
        assert (dep.slice_pct, dep.memory_mib) == (pct, mib)
    finally:
        c.close()


def test_only_opted_in_deployments_in_namespace_and_selector(server: FakeApiServer) -> None:
    server.put(deployment("a", labels={"team": "x", "app": "a"}))
    server.put(deployment("b", labels={"team": "y", "app": "b"}))
    server.put(
        deployment(
            "c", annotations={"sloscale.io/enabled": "false"}, labels={"team": "x", "app": "c"}
        )
    )
    server.put(deployment("d", namespace="other", labels={"team": "x", "app": "d"}))
    c = make_cluster(server, scope=Scope.of("ml"), selector="team=x")
    try:
        assert [d.ref.key for d in c.snapshot().deployments] == ["ml/a"]
    finally:
        c.close()


def test_a_deployment_with_an_unknown_key_is_listed_so_the_typo_is_reported(
    server: FakeApiServer,
) -> None:
    """``sloscale.io/enable`` (for ``enabled``) used to make the Deployment invisible."""
    typo = deployment("typo", annotations={"sloscale.io/enable": "true"})
    del typo["metadata"]["annotations"]["sloscale.io/enabled"]
    server.put(typo)
    server.put(deployment("off", annotations={"sloscale.io/enabled": "false"}))
    c = make_cluster(server)
    try:
        assert [d.ref.key for d in c.snapshot().deployments] == ["ml/typo"]
    finally:
        c.close()


def test_rollout_and_readiness(server: FakeApiServer) -> None:
    dep = deployment("web", replicas=3)
    dep["status"].update(readyReplicas=2, updatedReplicas=1)
    server.put(dep)
    c = make_cluster(server)
    try:
        (state,) = c.snapshot().deployments
        assert (state.replicas, state.ready_replicas, state.rollout_in_progress) == (3, 2, True)
    finally:
        c.close()


def test_inventory_from_hami_registration_and_pods(server: FakeApiServer) -> None:
    server.put(gpu_node("gpu-1", cards=2, memory_mib=81920))
    server.put(
        pod(
            "web-abc-1",
            owner=("ReplicaSet", "web-abc"),
            labels={"pod-template-hash": "abc"},
            annotations={"hami.io/vgpu-devices-allocated": "GPU-gpu-1-1,NVIDIA,20480,50:;"},
        )
    )
    server.put(pod("done", phase="Succeeded"))  # finished pods hold nothing
    server.put(pod("pending", node=None, phase="Pending"))  # unscheduled pods neither
    c = make_cluster(server)
    try:
        inv = c.snapshot().inventory
        assert [c.card_id for c in inv.cards] == ["gpu-1/0", "gpu-1/1"]
        (alloc,) = inv.allocations
        assert (alloc.owner, alloc.card_id, alloc.share_pct, alloc.memory_mib) == (
            "ml/web",
            "gpu-1/1",
            50,
            20480,
        )
    finally:
        c.close()


def test_hami_legacy_register_format() -> None:
    text = (
        "GPU-0,10,32768,100,NVIDIA-Tesla V100-PCIE-32GB,0,true:"
        "GPU-1,10,32768,100,NVIDIA-Tesla V100-PCIE-32GB,0,false:"
    )
    cards = parse_hami_register(text)
    assert [(c.uuid, c.index, c.memory_mib, c.healthy) for c in cards] == [
        ("GPU-0", 0, 32768, True),
        ("GPU-1", 1, 32768, False),
    ]


def test_mig_node_inventory(server: FakeApiServer) -> None:
    node = gpu_node("mig-1", cards=0, hami=False)
    node["metadata"]["labels"] = {}
    node["status"]["allocatable"] = {"nvidia.com/mig-3g.40gb": "2", "nvidia.com/mig-1g.10gb": "1"}
    server.put(node)
    c = make_cluster(server)
    try:
        cards = c.snapshot().inventory.cards
        assert len(cards) == 1  # 3 + 3 + 1 = 7 compute slices = one card
        assert cards[0].memory_mib == 40 * 1024 * 7 // 3
    finally:
        c.close()


def test_jobs_and_bare_pods(server: FakeApiServer) -> None:
    server.put(job("train", parallelism=4, suspend=True))
    server.put(job("untracked", annotations={}))
    server.put(
        pod(
            "batch-1",
            annotations={"sloscale.io/preemptible": "true"},
            resources=hami_resources(20, 4096),
        )
    )
    c = make_cluster(server)
    try:
        jobs = {j.ref.key: j for j in c.snapshot().jobs}
        assert set(jobs) == {"ml/train", "ml/batch-1"}
        train = jobs["ml/train"]
        assert (train.pods, train.share_pct_per_pod, train.phase) == (4, 30, JobPhase.SUSPENDED)
        assert jobs["ml/batch-1"].ref.kind == "Pod"
    finally:
        c.close()


def test_watch_keeps_cache_without_relisting(
    cluster: KubernetesCluster, server: FakeApiServer
) -> None:
    lists_before = cluster.deployments.lists
    server.put(deployment("late"))
    _eventually(lambda: [d.ref.name for d in cluster.snapshot().deployments] == ["late"])
    server.mutate("Deployment", "ml", "late", lambda d: d["spec"].update(replicas=5))
    _eventually(lambda: cluster.snapshot().deployments[0].replicas == 5)
    server.remove("Deployment", "ml", "late")
    _eventually(lambda: cluster.snapshot().deployments == ())
    for _ in range(5):
        cluster.snapshot()
    assert cluster.deployments.lists == lists_before == 1


def test_gone_resource_version_relists(cluster: KubernetesCluster, server: FakeApiServer) -> None:
    time.sleep(0.3)  # a bookmark moves the watch's resourceVersion
    (reflector,) = cluster.deployments.parts  # every namespace: one cluster-wide cache
    reflector.stop()  # drop the watch, as a network failure would
    server.put(deployment("while-away"))
    server.compact()  # the reflector's resourceVersion is now too old: 410
    reflector._stopping.clear()
    reflector.start()
    _eventually(lambda: [d.ref.name for d in cluster.snapshot().deployments] == ["while-away"])
    assert cluster.deployments.lists == 2


def test_a_watch_read_to_its_end_closes_quietly(server: FakeApiServer) -> None:
    """``Reflector.stop()`` closes the open stream from another thread, which may come just
    after the server ended it: urllib3 has then released the connection to its pool, and
    closing must not raise (it did: ``RuntimeError``, out of ``KubernetesCluster.close()``)."""
    api = make_api(server)
    try:
        rv = api.list(DEPLOYMENTS, "ml")["metadata"]["resourceVersion"]
        stream = api.watch(DEPLOYMENTS, "ml", resource_version=rv, timeout_s=1)
        assert all(e["type"] == "BOOKMARK" for e in stream)  # read until the server ends it
        stream.close()
    finally:
        api.close()
