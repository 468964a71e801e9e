"""RBAC audit, per deployment mode: every request the adapter makes in a representative tick
is allowed by the roles that mode's kustomization renders (bound to sloscale's
ServiceAccount), and those roles grant nothing the tick does not use.

The modes (README, "Deploy"):

| mode | overlay | may write |
| --- | --- | --- |
| cluster-wide | ``base`` | workloads in every namespace; its Lease and state ConfigMap |
| namespaced | ``overlays/namespaced`` | workloads in ``--namespaces``; its Lease and ConfigMap |
| shadow | ``overlays/shadow`` | nothing |

Each mode's flags are read from its rendered controller Deployment with the real CLI parser,
so the tick runs as that Deployment would: leader election only with ``--leader-elect``,
the state ConfigMap only when ``RunOptions.keeps_state``, ``--dry-run`` and ``--namespaces``
passed to the adapter. The API server is the repository's fake (``tests/k8s/fakeapi``), which
authorises every request by verb, group, resource and namespace; the real kube-apiserver
replaces it once the control plane lands in the tests (issue #27).
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from actuators.kubernetes import (
    ConfigMapSnapshotStore,
    KubernetesCluster,
    KubernetesOptions,
    LeaderElector,
    LeaseConfig,
    Scope,
)
from actuators.kubernetes.api import APPLY_PATCH, FIELD_MANAGER
from controller.domain import (
    Allocation,
    ApplyResult,
    JobAction,
    Plan,
    Reason,
    RetrainAction,
    ScaleAction,
    WorkloadRef,
)
from sloscale.cli import build_parser, run_options
from sloscale.run import RunOptions
from tests.k8s.conftest import deployment, gpu_node, job, make_api, make_cluster, pod
from tests.k8s.fakeapi import FakeApiServer, Request, Rule, rules_from_role
from tests.k8s.test_deploy import build

OWN_NAMESPACE = "sloscale"  # the controller's (deploy/base/kustomization.yaml)
SERVICE_ACCOUNT = {"kind": "ServiceAccount", "name": "sloscale", "namespace": OWN_NAMESPACE}
OUTSIDE = "not-ours"  # a namespace the namespaced mode must neither read nor write
READS = {"get", "list", "watch"}
CLUSTER_SCOPED = {("", "nodes")}
OWN_RESOURCES = {("coordination.k8s.io", "leases"), ("", "configmaps")}


@dataclass(frozen=True)
class Mode:
    name: str
    overlay: str


MODES = [
    Mode("cluster-wide", "base"),
    Mode("namespaced", "overlays/namespaced"),
    Mode("shadow", "overlays/shadow"),
]
BY_MODE = pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])


@functools.cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(build(overlay))


def controller_options(overlay: str) -> RunOptions:
    """The controller Deployment's arguments, parsed as ``sloscale run`` parses them."""
    dep = next(
        d
        for d in rendered(overlay)
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "sloscale"
    )
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return run_options(build_parser().parse_args(container["args"]))


def bound_rules(overlay: str) -> list[Rule]:
    """The rules bound to sloscale's ServiceAccount: a ClusterRoleBinding's cluster-wide, a
    RoleBinding's in its namespace (of a Role there, or of a ClusterRole)."""
    docs = rendered(overlay)
    roles = {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
    }
    rules: list[Rule] = []
    for b in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if SERVICE_ACCOUNT not in b.get("subjects", []):
            continue
        ns = b["metadata"].get("namespace")
        ref = b["roleRef"]
        role = roles[(ref["kind"], ns if ref["kind"] == "Role" else None, ref["name"])]
        found = rules_from_role(role)
        rules += [replace(r, namespace=ns) for r in found] if b["kind"] == "RoleBinding" else found
    return rules


def grants(rules: list[Rule]) -> Iterator[Rule]:
    """Each rule split into one (group, resource, verb) each."""
    for r in rules:
        for g, res, v in itertools.product(r.api_groups, r.resources, r.verbs):
            yield Rule((g,), (res,), (v,), r.namespace, r.resource_names)


def describe(r: Rule) -> str:
    where = f"namespace {r.namespace}" if r.namespace else "cluster-wide"
    names = f" {list(r.resource_names)}" if r.resource_names else ""
    return f"{r.verbs[0]} {r.resources[0]}.{r.api_groups[0] or 'core'}{names} ({where})"


# ---- the representative tick ----------------------------------------------------------------


def cronjob(name: str, namespace: str) -> dict[str, Any]:
    pod_spec = {"containers": [{"name": "t", "image": "x"}], "restartPolicy": "Never"}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": pod_spec}}}},
    }


def world(server: FakeApiServer, namespace: str) -> None:
    """What one team namespace holds: a model server, a preemptible Job and bare pod, the
    model's retraining CronJob, and a Deployment and Job about to be deleted."""
    server.put(deployment("web", namespace, replicas=2))
    server.put(pod("web-x", namespace, owner=("ReplicaSet", "web-1")))
    server.put(job("train", namespace))
    server.put(pod("batch", namespace, annotations={"sloscale.io/preemptible": "true"}))
    server.put(cronjob("retrain", namespace))
    server.put(deployment("gone", namespace, replicas=1))
    server.put(job("gone-job", namespace))


def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def act(server: FakeApiServer, c: KubernetesCluster, ns: str) -> list[ApplyResult]:
    """The act phase in ``ns``: scale with a resize (a 409 re-read on the way), preempt a Job
    and a bare pod, retrain, suspend the new Job (another 409), scale in marking the pods to
    remove, resume, and two actions on objects deleted since the snapshot (get: 404)."""
    web, train = WorkloadRef(ns, "web"), WorkloadRef(ns, "train", "Job")
    raced: list[Request] = []

    def conflict_once(kind: str, name: str) -> Callable[[Request], None]:
        def hook(req: Request) -> None:
            if not raced and req.namespace == ns:
                raced.append(req)
                server.mutate(kind, ns, name, lambda o: o["metadata"].update(labels={"x": "y"}))

        return hook

    server.before_write = conflict_once("Deployment", "web")
    results = c.apply(
        Plan(
            scale=(ScaleAction(web, Allocation(3, 30), 16384, Reason.SCALE_UP),),
            jobs=(
                JobAction(train, True, Reason.PREEMPTED),
                JobAction(WorkloadRef(ns, "batch", "Pod"), True, Reason.PREEMPTED),
            ),
            retrain=(
                RetrainAction(
                    web,
                    "1000",
                    Reason.RETRAIN_TRIGGERED,
                    "1000 new samples",
                    job_name="retrain-1",
                    template="cronjob/retrain",
                ),
            ),
        )
    )
    raced.clear()
    server.before_write = conflict_once("Job", "retrain-1")
    results += c.apply(
        Plan(jobs=(JobAction(WorkloadRef(ns, "retrain-1", "Job"), True, Reason.PREEMPTED),))
    )
    server.before_write = None
    if not c.options.dry_run:  # scale in from what the cache has seen scaled out
        eventually(lambda: (c.deployments.get(ns, "web") or {}).get("spec", {})["replicas"] == 3)
    results += c.apply(
        Plan(scale=(ScaleAction(web, Allocation(2, 30), 16384, Reason.SCALE_DOWN, ("web-x",)),))
    )
    if not c.options.dry_run:  # resume what the cache has seen suspended
        eventually(lambda: (c.jobs.get(ns, "train") or {}).get("spec", {}).get("suspend") is True)
    results += c.apply(Plan(jobs=(JobAction(train, False, Reason.RESUMED),)))
    server.remove("Deployment", ns, "gone")
    server.remove("Job", ns, "gone-job")
    eventually(lambda: c.deployments.get(ns, "gone") is None and c.jobs.get(ns, "gone-job") is None)
    results += c.apply(
        Plan(
            scale=(ScaleAction(WorkloadRef(ns, "gone"), Allocation(2, 30), 0, Reason.SCALE_UP),),
            jobs=(JobAction(WorkloadRef(ns, "gone-job", "Job"), True, Reason.PREEMPTED),),
        )
    )
    return results


def tick(server: FakeApiServer, options: RunOptions) -> list[ApplyResult]:
    """Lease, memory, discover and act as ``options`` would in one tick; the results."""
    scope = Scope.of(options.namespaces)
    namespaces = scope.namespaces or ("ml", "other")
    server.put(gpu_node("gpu-1"))
    for ns in (*namespaces, OUTSIDE):
        world(server, ns)
    api = make_api(server)
    lease = LeaseConfig(OWN_NAMESPACE, lease_duration_s=1, renew_deadline_s=0.7, retry_period_s=0.1)
    elector = LeaderElector(api, lease, "a") if options.leader_elect else None
    c = make_cluster(
        server,
        scope=scope,
        selector=options.selector,
        node_selector=options.node_selector,
        dry_run=options.dry_run,
    )
    try:
        if elector is not None:
            assert elector.step()  # create
            assert elector.step()  # get + update
        if options.keeps_state:
            state = ConfigMapSnapshotStore(api, OWN_NAMESPACE, options.state_configmap)
            assert state.load() is None  # get (not there yet)
            assert state.save({"n": 1}) and state.save({"n": 2})  # create, then update
        seen = {d.ref.namespace for d in c.snapshot().deployments}
        assert seen == ({*namespaces, OUTSIDE} if scope.cluster_wide else set(namespaces))
        results = [r for ns in namespaces for r in act(server, c, ns)]
        if not scope.cluster_wide:  # refused before any request
            outside = WorkloadRef(OUTSIDE, "web")
            before = len(server.requests)
            (refused,) = c.apply(
                Plan(scale=(ScaleAction(outside, Allocation(3, 30), 0, Reason.SCALE_UP),))
            )
            assert not refused.ok and "outside --namespaces" in refused.message
            assert len(server.requests) == before
        time.sleep(0.1)
        return results
    finally:
        c.close()
        if elector is not None:
            elector.stop(release=False)
        api.close()


# ---- the audit --------------------------------------------------------------------------------


@BY_MODE
def test_every_call_is_allowed_and_every_grant_is_used(mode: Mode) -> None:
    options = controller_options(mode.overlay)
    rules = bound_rules(mode.overlay)
    with FakeApiServer(bookmark_interval_s=0.2) as server:
        server.rules = rules
        results = tick(server, options)
        requests = list(server.requests)
    assert all(r.ok for r in results), results
    writes = [r for r in requests if r.is_write]
    unnamed = [
        f"{r.method} {r.path}" for r in writes if r.query.get("fieldManager") != FIELD_MANAGER
    ]
    assert not unnamed, f"{mode.name}: writes without fieldManager={FIELD_MANAGER}: {unnamed}"
    if not options.dry_run:  # the resize in the tick is a server-side apply: a patch
        assert any(r.content_type == APPLY_PATCH for r in writes)
    forbidden = {
        f"{r.verb} {r.resource} in {r.namespace}"
        for r in requests
        if not any(rule.allows(r) for rule in rules)
    }
    assert not forbidden, f"{mode.name}: refused (events are best effort): {sorted(forbidden)}"
    unused = [describe(g) for g in grants(rules) if not any(g.allows(r) for r in requests)]
    assert not unused, f"{mode.name}: granted but never used: {unused}"


@BY_MODE
def test_every_role_is_bound_to_the_controller(mode: Mode) -> None:
    """An unbound Role grants nothing; one bound to someone else is not ours to ship."""
    docs = rendered(mode.overlay)
    bound = {
        (b["roleRef"]["kind"], b["metadata"].get("namespace"), b["roleRef"]["name"])
        for b in docs
        if b["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and b.get("subjects") == [SERVICE_ACCOUNT]
    }
    roles = {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
    }
    assert roles == bound
    assert all(b.get("subjects") == [SERVICE_ACCOUNT] for b in docs if "Binding" in b["kind"])


def test_namespaced_mode_reads_and_writes_only_in_its_namespaces() -> None:
    """No cluster-scoped write, no cluster-wide request for a namespaced resource, nothing
    outside ``--namespaces`` but its own Lease and state ConfigMap; and its one cluster-wide
    grant is a read of Nodes."""
    overlay = "overlays/namespaced"
    options = controller_options(overlay)
    assert options.namespaces == {"team-a", "team-b"} and not options.dry_run
    cluster_wide = {
        (r.api_groups[0], r.resources[0], r.verbs[0])
        for r in grants(bound_rules(overlay))
        if r.namespace is None
    }
    assert cluster_wide == {("", "nodes", "list"), ("", "nodes", "watch")}
    with FakeApiServer(bookmark_interval_s=0.2) as server:
        tick(server, options)
        requests = list(server.requests)
    for r in requests:
        what = f"{r.method} {r.path}"
        if r.namespace is None:
            assert (r.group, r.resource) in CLUSTER_SCOPED and r.verb in READS, what
        elif r.namespace == OWN_NAMESPACE:
            assert (r.group, r.resource) in OWN_RESOURCES, what
        else:
            assert r.namespace in options.namespaces, what


def test_shadow_mode_writes_nothing_and_is_granted_only_reads() -> None:
    overlay = "overlays/shadow"
    options = controller_options(overlay)
    assert options.dry_run and not options.leader_elect and not options.keeps_state
    verbs = {r.verbs[0] for r in grants(bound_rules(overlay))}
    assert verbs <= READS, f"shadow grants writes: {sorted(verbs - READS)}"
    with FakeApiServer(bookmark_interval_s=0.2) as server:
        results = tick(server, options)
        writes = server.writes()
    assert writes == []  # no patch, no Event, no Job, no Lease, no ConfigMap
    assert any(r.message.startswith("dry-run: would") for r in results)


def test_namespaced_roles_are_the_cluster_roles_workload_rules() -> None:
    """Each namespace's Role grants what the cluster-wide mode grants on workloads, so the
    two modes cannot drift apart; Nodes move to the read-only ClusterRole."""
    base = {
        (r.api_groups[0], r.resources[0], r.verbs[0])
        for r in grants(bound_rules("base"))
        if r.namespace is None and (r.api_groups[0], r.resources[0]) not in CLUSTER_SCOPED
    }
    per_namespace: dict[str, set[tuple[str, str, str]]] = {}
    for r in grants(bound_rules("overlays/namespaced")):
        if r.namespace not in (None, OWN_NAMESPACE):
            per_namespace.setdefault(r.namespace, set()).add(
                (r.api_groups[0], r.resources[0], r.verbs[0])
            )
    assert set(per_namespace) == {"team-a", "team-b"}
    assert all(grants_here == base for grants_here in per_namespace.values())


def test_namespace_is_an_alias_of_namespaces() -> None:
    parse = build_parser().parse_args
    old = run_options(parse(["run", "--prometheus-url=http://p:9090", "--namespace", "ml"]))
    new = run_options(parse(["run", "--prometheus-url=http://p:9090", "--namespaces=a, b,"]))
    assert old.namespaces == {"ml"} and new.namespaces == {"a", "b"}
    assert run_options(parse(["run", "--prometheus-url=http://p:9090"])).namespaces == set()
    assert Scope.of(new.namespaces) == Scope(("a", "b")) and Scope.of(None).cluster_wide


def test_the_state_configmap_is_granted_by_name_only(caplog: pytest.LogCaptureFixture) -> None:
    """Another ConfigMap of the namespace cannot be read or changed (only created, which
    the API cannot limit to a name), nor one elsewhere."""
    with FakeApiServer() as server:
        server.rules = bound_rules("base")
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


def test_a_namespace_without_its_role_holds_discovery_and_is_named() -> None:
    """A listed namespace whose Role is missing: the snapshot fails (the loop holds, fail
    static) and says which namespace and what was refused."""
    overlay = "overlays/namespaced"
    with FakeApiServer(bookmark_interval_s=0.2) as server:
        server.rules = [r for r in bound_rules(overlay) if r.namespace != "team-b"]
        server.put(gpu_node("gpu-1"))
        c = KubernetesCluster(
            make_api(server),
            KubernetesOptions(scope=Scope.of("team-a,team-b"), sync_timeout_s=1),
        )
        c.start()
        try:
            with pytest.raises(RuntimeError, match=r"deployments.apps in team-b.*forbidden"):
                c.snapshot()
        finally:
            c.close()
