"""The Kubernetes adapter's discovery and writes against a real control plane (issue #27):
what the fake API server (``tests/k8s/fakeapi``) can only assume, the real kube-apiserver,
Deployment and ReplicaSet controllers, scheduler and kwok's fake GPU nodes decide here.

- Discovery: one list, then the watch, carries every change to annotated Deployments, Jobs
  and Nodes; a watch the server ends (``timeoutSeconds``) resumes from its resourceVersion
  with nothing lost and no relist; a resourceVersion etcd has compacted is answered 410 Gone,
  and only then does the cache list again.
- A resize in each dialect is admitted and rolls the pods: ``hami`` and ``mig`` pods go where
  the scheduler finds their extended resources, and stay Pending where none does; ``volcano``
  and ``kai`` pods carry their scheduler's name and queue (no such scheduler runs here).
- A scale-in removes exactly the pods sloscale marked with ``pod-deletion-cost``.
- ``--dry-run`` (the controller loop over the adapter, as ``sloscale run`` composes it)
  changes no object at all.

Each test has a namespace of its own, and where pods must run, nodes of its own ("a pool":
labelled and tainted, so that nothing else lands there and its pods go nowhere else).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from actuators.kubernetes import (
    KubeApi,
    KubernetesCluster,
    KubernetesOptions,
    Scope,
    build_cluster,
    load_api,
)
from actuators.kubernetes.api import DEPLOYMENTS, JOBS, ApiCall, Resource, WatchStream
from actuators.kubernetes.cache import Reflector
from actuators.prometheus import SnapshotTap
from controller.domain import (
    Allocation,
    JobPhase,
    Plan,
    Reason,
    RolloutFailureReason,
    ScaleAction,
    WorkloadRef,
)
from controller.loop import Controller, LoopConfig
from controller.report import TickReport
from tests.fakes import FakeClock, FakeMetrics
from tests.k8s.conftest import deployment, hami_resources, job
from tests.scenario.test_tick import busy
from tests.support.gotool import REPO
from tests.support.kube import ADMIN, CONTROLLER, ControlPlane, FakeNode, eventually, require_kube

JsonObj = dict[str, Any]
POOL = "test.sloscale.io/pool"
"""The label (and taint key) of a test's own nodes."""
DIALECT = "sloscale.io/slice-dialect"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


# ---- the cluster, its namespaces and nodes ---------------------------------------------------


def apply_rbac(kube: ControlPlane) -> None:
    """sloscale's namespace and RBAC from ``deploy/base``, unchanged."""
    base = REPO / "deploy" / "base"
    kube.kubectl("apply", "-f", str(base / "namespace.yaml"), "-f", str(base / "rbac.yaml"))


@pytest.fixture(scope="module")
def cluster(kube: ControlPlane) -> ControlPlane:
    apply_rbac(kube)
    return kube


def admin_api(kube: ControlPlane) -> KubeApi:
    """Requests as the cluster's administrator, whose writes name the field manager ``test``
    (not ``sloscale``, which ``metadata.managedFields`` must show only for the adapter)."""
    return KubeApi(
        load_api(str(kube.kubeconfig(ADMIN)), identity="test").client, field_manager="test"
    )


class Namespaces:
    """Namespaces a test creates; deleted (with everything in them) at its end."""

    def __init__(self, kube: ControlPlane) -> None:
        self.kube = kube
        self.made: list[str] = []

    def __call__(self, name: str) -> str:
        self.kube.create_namespace(name)
        self.made.append(name)
        return name

    def delete_all(self) -> None:
        for name in self.made:
            self.kube.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture
def namespaces(cluster: ControlPlane) -> Iterator[Namespaces]:
    made = Namespaces(cluster)
    yield made
    made.delete_all()


HAMI_SPLIT = 10
"""HAMi's default ``deviceSplitCount``: its device plugin registers ``nvidia.com/gpu`` as ten
per card, so that ten pods may share one (``FakeNode`` has one per card)."""


def pool_node(pool: str, name: str, *, gpus: int = 1, card_mib: int = 81920) -> JsonObj:
    """A kwok GPU node in ``pool`` (labelled with it and tainted, so only the pool's pods
    land there) as HAMi registers one: ``FakeNode``'s resources with ``HAMI_SPLIT`` shares of
    each card, and the cards in ``hami.io/node-nvidia-register``, where the adapter reads
    them (``nvidia.com/gpu`` counts shares, not cards)."""
    cards = [
        {"id": f"GPU-{name}-{i}", "index": i, "count": HAMI_SPLIT, "devmem": card_mib}
        | {"devcore": 100, "type": "NVIDIA-H100", "numa": 0, "mode": "hami-core", "health": True}
        for i in range(gpus)
    ]
    register = {"hami.io/node-nvidia-register": json.dumps(cards)}
    node = FakeNode(name, gpus, card_mib, labels={POOL: pool}, annotations=register)
    manifest = node.manifest()
    manifest["spec"] = {"taints": [{"key": POOL, "value": pool, "effect": "NoSchedule"}]}
    for key in ("capacity", "allocatable"):
        manifest["status"][key]["nvidia.com/gpu"] = str(HAMI_SPLIT * gpus)
    return manifest


def mig_node(pool: str, name: str, profiles: dict[str, int]) -> JsonObj:
    """A kwok node of one 80 GB card partitioned into MIG ``profiles`` (``{"3g.40gb": 2}``),
    as the GPU operator's ``mixed`` strategy exposes them: one extended resource per profile
    and no ``nvidia.com/gpu``."""
    manifest = pool_node(pool, name)
    del manifest["metadata"]["annotations"]["hami.io/node-nvidia-register"]
    for key in ("capacity", "allocatable"):
        resources = manifest["status"][key]
        for hami in ("nvidia.com/gpu", "nvidia.com/gpucores", "nvidia.com/gpumem"):
            del resources[hami]
        resources.update({f"nvidia.com/mig-{p}": str(n) for p, n in profiles.items()})
    return manifest


class Nodes:
    """Nodes a test creates (Ready once kwok has taken them); deleted at its end."""

    def __init__(self, kube: ControlPlane) -> None:
        self.kube = kube
        self.made: list[str] = []

    def create(self, *manifests: JsonObj) -> None:
        for m in manifests:
            self.kube.request("POST", "/api/v1/nodes", m)
            self.made.append(m["metadata"]["name"])
        names = {m["metadata"]["name"] for m in manifests}
        self.kube.wait_for(f"nodes {sorted(names)} Ready", lambda: names <= self.ready())

    def ready(self) -> set[str]:
        return {
            n["metadata"]["name"]
            for n in self.kube.request("GET", "/api/v1/nodes")["items"]
            for c in n.get("status", {}).get("conditions", [])
            if c["type"] == "Ready" and c["status"] == "True"
        }

    def delete(self, name: str) -> None:
        self.kube.request("DELETE", f"/api/v1/nodes/{name}")
        self.made.remove(name)

    def delete_all(self) -> None:
        for name in list(self.made):
            self.delete(name)


@pytest.fixture
def nodes(cluster: ControlPlane) -> Iterator[Nodes]:
    made = Nodes(cluster)
    yield made
    made.delete_all()


class Adapters:
    """Adapters a test starts, as sloscale's ServiceAccount (``deploy/base`` RBAC); closed at
    its end."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.started: list[KubernetesCluster] = []
        self.gates: list[WatchGate] = []

    def start(
        self,
        kube: ControlPlane,
        namespace: str,
        *,
        pool: str | None = None,
        watch_timeout_s: int = 30,
    ) -> KubernetesCluster:
        options = KubernetesOptions(
            scope=Scope.of(namespace),
            node_selector=f"{POOL}={pool}" if pool else None,
            watch_timeout_s=watch_timeout_s,
            sync_timeout_s=30,
        )
        adapter = KubernetesCluster(load_api(str(kube.kubeconfig(CONTROLLER))), options)
        self.started.append(adapter.start())
        assert adapter.wait_synced(30)
        return adapter

    def gate(self, adapter: KubernetesCluster, plural: str) -> WatchGate:
        """A ``WatchGate`` on ``adapter``'s watches of ``plural``, released at the end."""
        g = WatchGate(adapter.api, plural)
        self.monkeypatch.setattr(adapter.api, "watch", g.watch)
        self.gates.append(g)
        return g

    def close_all(self) -> None:
        for g in self.gates:
            g.release()
        for adapter in self.started:
            adapter.close()


@pytest.fixture
def adapters(monkeypatch: pytest.MonkeyPatch) -> Iterator[Adapters]:
    made = Adapters(monkeypatch)
    yield made
    made.close_all()


class WatchGate:
    """Holds the adapter's next watch of one resource until ``release()``: a network partition
    on the client side, while the server goes on. The watch is then sent as the adapter asked
    for it (``resource_version``) to the real server."""

    def __init__(self, api: KubeApi, plural: str) -> None:
        self._watch = api.watch
        self.plural = plural
        self.held = threading.Event()
        self.versions: list[str] = []  # what each held watch asked to resume from
        self._open = threading.Event()
        self._open.set()

    def watch(self, res: Resource, namespace: str | None, **kwargs: Any) -> WatchStream:
        if res.plural == self.plural and not self._open.is_set():
            self.versions.append(str(kwargs["resource_version"]))
            self.held.set()
            self._open.wait(60)
        return self._watch(res, namespace, **kwargs)

    def hold(self) -> None:
        self.held.clear()
        self._open.clear()

    def release(self) -> None:
        self._open.set()


# ---- objects ---------------------------------------------------------------------------------


def workload(
    name: str,
    namespace: str,
    *,
    replicas: int,
    resources: JsonObj,
    pool: str | None = None,
    dialect: str | None = None,
    pod_labels: dict[str, str] | None = None,
    pod_annotations: dict[str, str] | None = None,
) -> JsonObj:
    """An opted-in Deployment (``conftest.deployment``: a sidecar and the GPU container
    ``server``) for the real server: no status, on ``pool``'s nodes."""
    manifest = deployment(
        name,
        namespace,
        replicas=replicas,
        resources=resources,
        template_annotations=pod_annotations,
    )
    del manifest["status"]  # the Deployment controller's to write
    if dialect is not None:
        manifest["metadata"]["annotations"][DIALECT] = dialect
    template = manifest["spec"]["template"]
    template["metadata"]["labels"].update(pod_labels or {})
    if pool is not None:
        template["spec"]["nodeSelector"] = {POOL: pool}
        template["spec"]["tolerations"] = [
            {"key": POOL, "operator": "Equal", "value": pool, "effect": "NoSchedule"}
        ]
    return manifest


def create(kube: ControlPlane, manifest: JsonObj) -> JsonObj:
    ns = manifest["metadata"]["namespace"]
    group = "apps/v1/" if manifest["kind"] == "Deployment" else "batch/v1/"
    plural = manifest["kind"].lower() + "s"
    return kube.request("POST", f"/apis/{group}namespaces/{ns}/{plural}", manifest)


def get_deployment(kube: ControlPlane, ns: str, name: str) -> JsonObj:
    return kube.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")


def pods_of(kube: ControlPlane, ns: str, app: str) -> list[JsonObj]:
    """The pods of ``app`` not being deleted."""
    listed = kube.request("GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{app}")
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


def gpu_limits(pod_or_template: JsonObj) -> dict[str, str]:
    """The limits of the GPU container ``server`` (``conftest.deployment``)."""
    containers = pod_or_template["spec"]["containers"]
    server = next(c for c in containers if c["name"] == "server")
    limits: dict[str, str] = server.get("resources", {}).get("limits", {})
    return limits


def rolled_out(kube: ControlPlane, ns: str, name: str) -> JsonObj | None:
    """The Deployment once its controller has rolled every replica to the current template
    and each is available (``kubectl rollout status``), else ``None``."""
    dep = get_deployment(kube, ns, name)
    status, want = dep.get("status", {}), dep["spec"]["replicas"]
    done = (
        status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
        and all(status.get(k, 0) == want for k in ("replicas", "updatedReplicas"))
        and all(status.get(k, 0) == want for k in ("readyReplicas", "availableReplicas"))
    )
    return dep if done else None


def settled_in(adapter: KubernetesCluster, ref: WorkloadRef) -> bool:
    """Whether the adapter's caches say ``ref`` is rolled out and ready (before a resize,
    which it defers while a rollout is unfinished)."""
    found = [d for d in adapter.snapshot().deployments if d.ref == ref]
    return bool(found) and found[0].settled


def managed_by_sloscale(obj: JsonObj) -> dict[str, str]:
    """``metadata.managedFields`` entries of the manager ``sloscale``: operation by
    subresource (``""`` for the object itself)."""
    return {
        f.get("subresource", ""): f["operation"]
        for f in obj["metadata"].get("managedFields", [])
        if f["manager"] == "sloscale"
    }


def owned_fields(obj: JsonObj, manager: str, operation: str) -> str:
    """The fieldsV1 of ``manager``'s ``operation`` on the object itself, as text to search."""
    return " ".join(
        json.dumps(f.get("fieldsV1", {}))
        for f in obj["metadata"].get("managedFields", [])
        if f["manager"] == manager and f["operation"] == operation and not f.get("subresource")
    )


def resize(
    adapter: KubernetesCluster,
    ref: WorkloadRef,
    replicas: int,
    pct: int,
    mib: int,
    reason: Reason = Reason.RESIZE,
) -> str:
    """Apply one scale action through the adapter; its message (the action must succeed)."""
    plan = Plan(scale=(ScaleAction(ref, Allocation(replicas, pct), mib, reason),))
    (result,) = adapter.apply(plan)
    assert result.ok, result.message
    return result.message


# ---- discovery -------------------------------------------------------------------------------


def reflectors(adapter: KubernetesCluster) -> list[Reflector]:
    caches = (adapter.deployments, adapter.jobs, adapter.pods)
    return [r for c in caches for r in c.parts] + [adapter.nodes]


def names(items: Any) -> list[str]:
    return sorted(i.ref.name for i in items)


def test_annotations_new_objects_and_nodes_arrive_through_the_watch_without_a_relist(
    cluster: ControlPlane, namespaces: Namespaces, nodes: Nodes, adapters: Adapters
) -> None:
    """One list per cache at start, then only the watch: a Deployment opted in by an
    annotation, a new Deployment, a Job newly annotated, a node added and deleted are all
    seen, and no cache lists again. What the list finds is what sloscale addresses: opted-in
    Deployments, Jobs with ``sloscale.io/`` annotations, every node's cards."""
    kube = cluster
    ns = namespaces("wl-discovery")
    create(kube, workload("opted", ns, replicas=0, resources=hami_resources(50, 10240)))
    plain = workload("plain", ns, replicas=0, resources=hami_resources(50, 10240))
    plain["metadata"]["annotations"] = {}  # not sloscale's
    create(kube, plain)
    for name, keys in (("tracked", None), ("untracked", {})):
        j = job(name, ns, suspend=True, annotations=keys)
        del j["status"]
        create(kube, j)
    adapter = adapters.start(kube, ns)

    snap = adapter.snapshot()
    assert names(snap.deployments) == ["opted"]
    (tracked,) = snap.jobs
    assert (tracked.ref.name, tracked.pods, tracked.share_pct_per_pod) == ("tracked", 2, 30)
    assert tracked.phase is JobPhase.SUSPENDED
    assert {c.node for c in snap.inventory.cards} >= {n.name for n in kube.nodes}

    admin = admin_api(kube)
    try:
        opt_in = {"metadata": {"annotations": {"sloscale.io/enabled": "true"}}}
        admin.patch(DEPLOYMENTS, "plain", opt_in, ns)
        create(kube, workload("late", ns, replicas=0, resources=hami_resources(30, 8192)))
        eventually(
            "the opt-in and the new Deployment seen",
            lambda: names(adapter.snapshot().deployments) == ["late", "opted", "plain"],
        )
        tracking = {"metadata": {"annotations": {"sloscale.io/priority": "high"}}}
        admin.patch(JOBS, "untracked", tracking, ns)
        eventually(
            "the newly annotated Job seen",
            lambda: names(adapter.snapshot().jobs) == ["tracked", "untracked"],
        )
    finally:
        admin.close()

    nodes.create(pool_node("wl-discovery", "wl-discovery-node", gpus=2, card_mib=40960))

    def cards_on_new_node() -> list[int]:
        inv = adapter.snapshot().inventory
        return [c.memory_mib for c in inv.cards if c.node == "wl-discovery-node"]

    assert eventually("the new node's cards seen", cards_on_new_node) == [40960, 40960]
    nodes.delete("wl-discovery-node")
    eventually("the deleted node's cards gone", lambda: not cards_on_new_node())

    assert [r.lists for r in reflectors(adapter)] == [1] * len(reflectors(adapter))


def test_a_watch_the_server_ends_resumes_from_its_resource_version_without_a_relist(
    cluster: ControlPlane, namespaces: Namespaces, adapters: Adapters
) -> None:
    """The API server ends every watch after ``timeoutSeconds`` (1 s here); the adapter
    watches again from the last resourceVersion it saw. What changed while no watch was open
    (a partition, held here) arrives on the next one: nothing lost, nothing listed again."""
    kube = cluster
    ns = namespaces("wl-resume")
    for name in ("a", "b"):
        create(kube, workload(name, ns, replicas=0, resources=hami_resources(50, 10240)))
    adapter = adapters.start(kube, ns, watch_timeout_s=1)
    (deployments,) = adapter.deployments.parts
    assert names(adapter.snapshot().deployments) == ["a", "b"]
    g = adapters.gate(adapter, "deployments")
    eventually("a second watch (the server ended the first)", lambda: deployments.watches >= 2)

    g.hold()
    eventually("the adapter's next watch held", g.held.is_set, 10)
    create(kube, workload("c", ns, replicas=0, resources=hami_resources(50, 10240)))
    kube.request("DELETE", f"/apis/apps/v1/namespaces/{ns}/deployments/b")
    admin = admin_api(kube)
    try:
        target = {"metadata": {"annotations": {"sloscale.io/latency-target-ms": "300"}}}
        admin.patch(DEPLOYMENTS, "a", target, ns)
    finally:
        admin.close()
    assert names(adapter.snapshot().deployments) == ["a", "b"]  # not seen yet: partitioned
    g.release()

    def caught_up() -> bool:
        snap = adapter.snapshot()
        a = [d for d in snap.deployments if d.ref.name == "a"]
        return names(snap.deployments) == ["a", "c"] and (
            a[0].annotations.get("sloscale.io/latency-target-ms") == "300"
        )

    eventually("the changes made while partitioned", caught_up, 10)
    assert g.versions and all(v.isdigit() for v in g.versions), g.versions
    assert deployments.lists == 1 and deployments.last_error is None


# ---- 410 Gone, from a real etcd compaction ---------------------------------------------------


class CompactingControlPlane(ControlPlane):
    """A control plane whose API server compacts etcd every second and serves Deployments
    without its watch cache.

    With the watch cache (the default), a watch is served from the cache's window of recent
    events, which grows to hold at least the last 75 s of them whatever etcd compacts: a
    resourceVersion of seconds ago is not too old there (tried: still served 15 s after
    etcd had compacted past it, with a compaction every second). Without it, a
    watch reads etcd, and a revision the API server's own compactor (``--etcd-compaction-
    interval``) has compacted is answered 410 Gone, the documented way a resourceVersion
    expires."""

    def _spawn(self, name: str, *args: str) -> None:
        if name == "kube-apiserver":
            args = (
                *args,
                "--etcd-compaction-interval=1s",
                "--watch-cache-sizes=deployments.apps#0",
            )
        super()._spawn(name, *args)


@pytest.fixture(scope="module")
def compacting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    binaries = require_kube()
    workdir = tmp_path_factory.mktemp("kube-compacting")
    with CompactingControlPlane(binaries, workdir, nodes=()) as kube:
        apply_rbac(kube)
        yield kube
    shutil.rmtree(workdir, ignore_errors=True)


def first_event(api: KubeApi, ns: str, resource_version: str) -> JsonObj | None:
    """The first event of a one-second watch of ``ns``'s Deployments from
    ``resource_version``; ``None`` when none came."""
    stream = api.watch(DEPLOYMENTS, ns, resource_version=resource_version, timeout_s=1)
    try:
        for event in stream:
            return event
    finally:
        stream.close()
    return None


def test_a_compacted_resource_version_is_answered_410_and_only_then_the_cache_relists(
    compacting: ControlPlane, adapters: Adapters
) -> None:
    kube = compacting
    ns = "wl-gone"
    kube.create_namespace(ns)
    create(kube, workload("x", ns, replicas=0, resources=hami_resources(50, 10240)))
    adapter = adapters.start(kube, ns, watch_timeout_s=1)
    (deployments,) = adapter.deployments.parts
    assert names(adapter.snapshot().deployments) == ["x"]
    g = adapters.gate(adapter, "deployments")
    g.hold()
    eventually("the adapter's next watch held", g.held.is_set, 10)
    resume_from = g.versions[-1]

    kube.request("DELETE", f"/apis/apps/v1/namespaces/{ns}/deployments/x")
    create(kube, workload("y", ns, replicas=0, resources=hami_resources(50, 10240)))
    admin = admin_api(kube)
    writes = iter(range(10**6))

    def expired() -> JsonObj | None:
        """The 410 once etcd has compacted past ``resume_from`` (each try writes, so that
        the revision moves on and the next compaction passes it)."""
        body = {"metadata": {"name": f"churn-{next(writes)}"}}
        kube.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body)
        event = first_event(admin, ns, resume_from)
        return event if event is not None and event["type"] == "ERROR" else None

    try:
        event = eventually(f"resourceVersion {resume_from} compacted", expired, 20)
    finally:
        admin.close()
    # the real server's form: an ERROR event in a 200 stream, not an HTTP 410
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired"), event
    assert deployments.lists == 1
    g.release()  # the adapter's watch from resume_from now gets the same answer

    eventually(
        "the list after 410 shows the deletion and the creation",
        lambda: names(adapter.snapshot().deployments) == ["y"],
        10,
    )
    assert deployments.lists == 2 and deployments.last_error is None


# ---- resizes, dialect by dialect -------------------------------------------------------------


def test_a_hami_resize_rolls_the_pods_onto_the_node_whose_resources_fit(
    cluster: ControlPlane, namespaces: Namespaces, nodes: Nodes, adapters: Adapters
) -> None:
    """HAMi's ``nvidia.com/gpucores``/``gpumem`` are extended resources to the default
    scheduler, which fits a pod against a node's *totals* (allocatable minus what its pods
    request), not against single cards: HAMi's own scheduler extender places on a card.
    Here every node has one card, so a node's totals are its card's.

    The adapter's resize is a server-side apply (manager ``sloscale``); the Deployment
    controller rolls new pods; the scheduler puts them where the new slice fits, surging
    only when the adapter saw room for one more pod (else one old pod goes first, which is
    the only way a pod that needs the whole card can start), and leaves a pod no node holds
    Pending, which the adapter reports as a failed rollout."""
    kube, pool = cluster, "wl-hami"
    ns = namespaces("wl-hami")
    small, big = "wl-hami-small", "wl-hami-big"
    nodes.create(pool_node(pool, small, card_mib=20480), pool_node(pool, big, card_mib=81920))
    create(kube, workload("llm", ns, replicas=1, resources=hami_resources(50, 10240), pool=pool))
    adapter = adapters.start(kube, ns, pool=pool)
    ref = WorkloadRef(ns, "llm")
    eventually("llm rolled out", lambda: rolled_out(kube, ns, "llm"))
    eventually("the adapter sees llm settled", lambda: settled_in(adapter, ref))

    # 1. 40000 MiB: only the big node holds it; there is room beside the old pod: surge
    said = resize(adapter, ref, 1, 50, 40000)
    assert "slice 50 %/10240 MiB->50 %/40000 MiB (hami)" in said and "surge 1" in said, said
    dep = get_deployment(kube, ns, "llm")
    # the API server keeps quantities in canonical form: the "40000" written reads "40k"
    want = {"nvidia.com/gpu": "1", "nvidia.com/gpucores": "50", "nvidia.com/gpumem": "40k"}
    assert gpu_limits(dep["spec"]["template"]) == want
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert managed_by_sloscale(dep) == {"": "Apply"}, dep["metadata"]["managedFields"]
    assert '"f:nvidia.com/gpumem"' in owned_fields(dep, "sloscale", "Apply")
    eventually("llm rolled out at 40000 MiB", lambda: rolled_out(kube, ns, "llm"), 60)
    (pod,) = pods_of(kube, ns, "llm")
    assert (pod["spec"]["nodeName"], gpu_limits(pod)) == (big, want)
    assert pod["spec"]["containers"][1]["resources"]["requests"] == want  # defaulted
    eventually("the adapter sees llm settled", lambda: settled_in(adapter, ref))
    (state,) = adapter.snapshot().deployments
    assert (state.slice_pct, state.memory_mib) == (50, 40000)  # "40k" read as 40000 MiB
    rv = get_deployment(kube, ns, "llm")["metadata"]["resourceVersion"]
    assert resize(adapter, ref, 1, 50, 40000) == "no change"  # the same slice: no write
    assert get_deployment(kube, ns, "llm")["metadata"]["resourceVersion"] == rv

    # 2. the whole 80 GiB card: no room to surge, so an old pod goes first
    eventually("the adapter sees llm settled", lambda: settled_in(adapter, ref))
    said = resize(adapter, ref, 1, 60, 81920)
    assert "no room to surge: maxUnavailable 1" in said, said
    dep = get_deployment(kube, ns, "llm")
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    eventually("llm rolled out at 80 GiB", lambda: rolled_out(kube, ns, "llm"), 60)
    (pod,) = pods_of(kube, ns, "llm")
    assert pod["spec"]["nodeName"] == big and gpu_limits(pod)["nvidia.com/gpumem"] == "81920"

    # 3. more memory than any node has: Pending, Unschedulable, a failed rollout
    eventually("the adapter sees llm settled", lambda: settled_in(adapter, ref))
    resize(adapter, ref, 1, 50, 100000)

    def unschedulable() -> JsonObj | None:
        for p in pods_of(kube, ns, "llm"):
            for c in p["status"].get("conditions", []):
                if (c["type"], c["status"], c.get("reason")) == (
                    "PodScheduled",
                    "False",
                    "Unschedulable",
                ):
                    return p
        return None

    pending = eventually("the 100000 MiB pod found unschedulable", unschedulable)
    assert gpu_limits(pending)["nvidia.com/gpumem"] == "100k"
    assert pending["status"]["phase"] == "Pending" and not pending["spec"].get("nodeName")

    def failure() -> Any:
        (state,) = [d for d in adapter.snapshot().deployments if d.ref == ref]
        return state.rollout_failure

    failed = eventually("the adapter reports the rollout failing", failure)
    assert failed.reason is RolloutFailureReason.UNSCHEDULABLE
    (state,) = adapter.snapshot().deployments
    assert (state.slice_pct, state.memory_mib) == (50, 100000)
    assert "nvidia.com/gpumem" in failed.detail, failed.detail


def test_a_mig_resize_swaps_the_profile_resource_and_moves_the_pod_to_that_partition(
    cluster: ControlPlane, namespaces: Namespaces, nodes: Nodes, adapters: Adapters
) -> None:
    """MIG slices are whole partitions, one extended resource per profile: the resize
    removes the old profile's key, which a server-side apply cannot do on a field the
    manifest set, so it is a strategic-merge patch (an update by ``sloscale``). The new pod
    can only go to the node that exposes the new profile."""
    kube, pool = cluster, "wl-mig"
    ns = namespaces("wl-mig")
    nodes.create(
        mig_node(pool, "wl-mig-small", {"1g.10gb": 7}),
        mig_node(pool, "wl-mig-large", {"3g.40gb": 2}),
    )
    one_g = {"limits": {"nvidia.com/mig-1g.10gb": "1"}}
    create(kube, workload("llm", ns, replicas=1, resources=one_g, pool=pool, dialect="mig"))
    adapter = adapters.start(kube, ns, pool=pool)
    ref = WorkloadRef(ns, "llm")
    eventually("llm rolled out", lambda: rolled_out(kube, ns, "llm"))
    (pod,) = pods_of(kube, ns, "llm")
    assert pod["spec"]["nodeName"] == "wl-mig-small"
    eventually("the adapter sees llm settled", lambda: settled_in(adapter, ref))
    (state,) = adapter.snapshot().deployments
    assert (state.slice_pct, state.memory_mib) == (10, 10240)

    said = resize(adapter, ref, 1, 40, 40960)
    assert "(mig)" in said, said
    dep = get_deployment(kube, ns, "llm")
    assert gpu_limits(dep["spec"]["template"]) == {"nvidia.com/mig-3g.40gb": "1"}
    assert managed_by_sloscale(dep) == {"": "Update"}, dep["metadata"]["managedFields"]
    assert '"f:nvidia.com/mig-3g.40gb"' in owned_fields(dep, "sloscale", "Update")
    eventually("llm rolled out on 3g.40gb", lambda: rolled_out(kube, ns, "llm"), 60)
    (pod,) = pods_of(kube, ns, "llm")
    assert pod["spec"]["nodeName"] == "wl-mig-large"
    assert gpu_limits(pod) == {"nvidia.com/mig-3g.40gb": "1"}
    eventually("the adapter sees llm settled", lambda: settled_in(adapter, ref))
    (state,) = adapter.snapshot().deployments
    assert (state.slice_pct, state.memory_mib) == (40, 40960)


def test_volcano_and_kai_resizes_are_admitted_with_their_scheduler_and_queue(
    cluster: ControlPlane, namespaces: Namespaces, adapters: Adapters
) -> None:
    """Neither Volcano nor KAI runs here, so their pods stay Pending (the default scheduler
    leaves a pod naming another scheduler alone): what is checked is what the API server
    admitted and the ReplicaSet controller stamped on the pods. ``volcano``: a template
    already in the dialect, resized by a server-side apply that also writes
    ``schedulerName``; ``kai``: a HAMi template turned into a fraction, a strategic-merge
    patch that removes the HAMi limits. The team's queue is kept, never invented."""
    kube = cluster
    ns = namespaces("wl-schedulers")
    volcano_limits = {
        "limits": {
            "volcano.sh/vgpu-number": "1",
            "volcano.sh/vgpu-cores": "50",
            "volcano.sh/vgpu-memory": "10240",
        }
    }
    queue = {"scheduling.volcano.sh/queue-name": "research"}
    create(
        kube,
        workload(
            "vc", ns, replicas=0, resources=volcano_limits, dialect="volcano", pod_annotations=queue
        ),
    )
    kai_queue = {"kai.scheduler/queue": "team-a"}
    create(
        kube,
        workload(
            "kai",
            ns,
            replicas=0,
            resources=hami_resources(50, 10240),
            dialect="kai",
            pod_labels=kai_queue,
        ),
    )
    adapter = adapters.start(kube, ns)
    for name in ("vc", "kai"):
        eventually(f"{name} settled", partial(settled_in, adapter, WorkloadRef(ns, name)))

    said = resize(adapter, WorkloadRef(ns, "vc"), 2, 30, 8192, Reason.SCALE_UP)
    assert "replicas 0->2" in said and "(volcano)" in said, said
    said = resize(adapter, WorkloadRef(ns, "kai"), 2, 30, 8192, Reason.SCALE_UP)
    assert "replicas 0->2" in said and "(kai)" in said, said

    vc = get_deployment(kube, ns, "vc")
    template = vc["spec"]["template"]
    assert template["spec"]["schedulerName"] == "volcano"
    assert template["metadata"]["annotations"] == queue
    volcano_30 = {
        "volcano.sh/vgpu-number": "1",
        "volcano.sh/vgpu-cores": "30",
        "volcano.sh/vgpu-memory": "8192",
    }
    assert gpu_limits(template) == volcano_30
    assert managed_by_sloscale(vc) == {"": "Apply", "scale": "Update"}
    assert '"f:schedulerName"' in owned_fields(vc, "sloscale", "Apply")

    kai = get_deployment(kube, ns, "kai")
    template = kai["spec"]["template"]
    assert template["spec"]["schedulerName"] == "kai-scheduler"
    assert template["metadata"]["annotations"] == {"gpu-fraction": "0.3"}
    assert template["metadata"]["labels"]["kai.scheduler/queue"] == "team-a"
    assert gpu_limits(template) == {}  # the HAMi limits removed: the fraction is the slice
    assert managed_by_sloscale(kai) == {"": "Update", "scale": "Update"}

    def current_pods(name: str, scheduler: str) -> list[JsonObj]:
        """The pods of the resized template (the scale, written first, may also have made
        some of the old one, which the rollout replaces)."""
        return [p for p in pods_of(kube, ns, name) if p["spec"]["schedulerName"] == scheduler]

    for pod in eventually("volcano pods", lambda: current_pods("vc", "volcano")):
        assert gpu_limits(pod) == volcano_30
        assert pod["metadata"]["annotations"] == queue
        assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    for pod in eventually("kai pods", lambda: current_pods("kai", "kai-scheduler")):
        assert pod["metadata"]["annotations"] == {"gpu-fraction": "0.3"}
        assert pod["metadata"]["labels"]["kai.scheduler/queue"] == "team-a"
        assert gpu_limits(pod) == {}
        assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    (vc_state, kai_state) = sorted(adapter.snapshot().deployments, key=lambda d: d.ref.name)[::-1]
    assert (vc_state.slice_pct, vc_state.memory_mib) == (30, 8192)
    assert kai_state.slice_pct == 30


# ---- scale-in --------------------------------------------------------------------------------


def test_a_scale_in_removes_exactly_the_pods_sloscale_marked(
    cluster: ControlPlane, namespaces: Namespaces, nodes: Nodes, adapters: Adapters
) -> None:
    """The ReplicaSet controller picks which pods a scale-in deletes: among running, ready
    pods, the lowest ``pod-deletion-cost`` first, then those on the node with the most of
    their kind. Three whole-card pods on a three-card node and one on a one-card node: left
    to itself it would delete two of the three; marked, it deletes the lone pod and one of
    the three, as the adapter asked."""
    kube, pool = cluster, "wl-scale-in"
    ns = namespaces("wl-scale-in")
    crowded, lone = "wl-scale-in-3", "wl-scale-in-1"
    nodes.create(pool_node(pool, crowded, gpus=3), pool_node(pool, lone, gpus=1))
    whole_card = hami_resources(100, 10240)
    create(kube, workload("llm", ns, replicas=4, resources=whole_card, pool=pool))
    adapter = adapters.start(kube, ns, pool=pool)
    ref = WorkloadRef(ns, "llm")
    eventually("llm rolled out", lambda: rolled_out(kube, ns, "llm"))
    eventually("the adapter sees llm settled", lambda: settled_in(adapter, ref))
    by_node: dict[str, list[str]] = {}
    for pod in pods_of(kube, ns, "llm"):
        by_node.setdefault(pod["spec"]["nodeName"], []).append(pod["metadata"]["name"])
    assert sorted(len(v) for v in by_node.values()) == [1, 3], by_node
    (on_lone,), on_crowded = by_node[lone], sorted(by_node[crowded])
    remove = (on_lone, on_crowded[0])

    action = ScaleAction(ref, Allocation(2, 100), 10240, Reason.SCALE_DOWN, remove_pods=remove)
    (result,) = adapter.apply(Plan(scale=(action,)))
    assert result.ok and "replicas 4->2" in result.message, result.message

    def survivors() -> list[str]:
        left = sorted(p["metadata"]["name"] for p in pods_of(kube, ns, "llm"))
        return left if len(left) == 2 else []

    assert eventually("two pods left", survivors) == on_crowded[1:]
    for pod in pods_of(kube, ns, "llm"):
        assert DELETION_COST not in pod["metadata"].get("annotations", {})  # only the marked


# ---- dry-run ---------------------------------------------------------------------------------

WATCHED = (
    "/apis/apps/v1/namespaces/{ns}/deployments",
    "/apis/apps/v1/namespaces/{ns}/replicasets",
    "/api/v1/namespaces/{ns}/pods",
    "/apis/batch/v1/namespaces/{ns}/jobs",
    "/api/v1/namespaces/{ns}/events",
    "/api/v1/namespaces/{ns}/configmaps",
    "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
)
"""What a controller could write in a namespace: its workloads' objects, Events, the state
ConfigMap and the leader Lease (the last two in its own namespace)."""


def resource_versions(kube: ControlPlane, *namespaces: str) -> dict[str, str]:
    """Every object of ``WATCHED`` in ``namespaces``: its path and resourceVersion."""
    out = {}
    for ns in namespaces:
        for collection in WATCHED:
            path = collection.format(ns=ns)
            for item in kube.request("GET", path)["items"]:
                out[f"{path}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return out


def test_dry_run_ticks_that_would_scale_change_no_object(
    cluster: ControlPlane, namespaces: Namespaces, nodes: Nodes
) -> None:
    """The loop over the adapter as ``sloscale run --cluster kubernetes --dry-run`` composes
    it (``sloscale.run._run_kubernetes``: ``build_cluster(dry_run=True)`` behind a
    ``SnapshotTap``, ``LoopConfig(dry_run=True)``, no state ConfigMap, no election), with
    sloscale's full RBAC, so that any write would go through: ticks on a load that calls
    for more capacity say what they would do, and no object changes, no Event included
    (``docs/kubernetes.md``: shadow mode writes nothing at all). Metrics are given
    (``FakeMetrics``) rather than read from a Prometheus."""
    kube, pool = cluster, "wl-dry-run"
    ns = namespaces("wl-dry-run")
    nodes.create(pool_node(pool, "wl-dry-run-node", gpus=4))
    create(kube, workload("chat", ns, replicas=2, resources=hami_resources(50, 10240), pool=pool))
    eventually("chat rolled out", lambda: rolled_out(kube, ns, "chat"))
    calls: list[ApiCall] = []
    api = load_api(str(kube.kubeconfig(CONTROLLER)), recorder=calls.append)
    shadow = build_cluster(None, ns, None, True, node_selector=f"{POOL}={pool}", api=api)
    try:
        assert shadow.wait_synced(30)
        eventually(
            "the adapter sees chat settled", lambda: settled_in(shadow, WorkloadRef(ns, "chat"))
        )
        before = resource_versions(kube, ns, "sloscale")
        clock = FakeClock(time.time())
        metrics = FakeMetrics({f"{ns}/chat": busy(400.0, 2, 50)})  # far over its capacity
        loop = LoopConfig(interval_s=15.0, dry_run=True, critical_namespaces=frozenset())
        controller = Controller(SnapshotTap(shadow), metrics, clock, loop)
        reports: list[TickReport] = []
        for _ in range(3):
            clock.advance(15.0)
            reports.append(controller.tick())
        would = [r for report in reports for r in report.results if r.target == f"{ns}/chat"]
        assert would and all(r.message.startswith("dry-run: would scale") for r in would), would
        assert [s.action for s in shadow.shadow_log] == ["scale"] * len(would)
        assert all(report.dry_run and not report.errors for report in reports), reports[-1].errors

        assert resource_versions(kube, ns, "sloscale") == before
        assert {c.verb for c in calls} <= {"get", "list", "watch"}, {c.verb for c in calls}
        plan = reports[-1].plan
    finally:
        shadow.close()

    # the same plan, not in dry-run: the check above would have seen it
    adapter = build_cluster(
        None, ns, None, False, node_selector=f"{POOL}={pool}",
        api=load_api(str(kube.kubeconfig(CONTROLLER))),
    )  # fmt: skip
    try:
        assert adapter.wait_synced(30)
        (result,) = adapter.apply(plan)
        assert result.ok, result.message
        assert resource_versions(kube, ns, "sloscale") != before
    finally:
        adapter.close()
