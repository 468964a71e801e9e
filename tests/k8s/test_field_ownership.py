"""Which fields sloscale owns (issue #24): its writes name the field manager ``sloscale``, a
resize is a server-side apply of only the fields it owns, replicas go through ``scale``.

The Deployment is first applied by ``argocd`` (a GitOps sync with server-side apply), so the
fake API server (``tests/k8s/fakeapi/fields.py``) records who owns what, as
``metadata.managedFields`` does.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from actuators.kubernetes.api import APPLY_PATCH, FIELD_MANAGER
from controller.domain import Allocation, Plan, Reason, ScaleAction, WorkloadRef
from tests.k8s.conftest import deployment, gpu_node, make_cluster
from tests.k8s.fakeapi import FakeApiServer, Request
from tests.k8s.fakeapi.fields import describe, entries_of, owned_by, owners
from tests.k8s.fakeapi.kinds import ApiFailureError

JsonObj = dict[str, Any]
WEB = WorkloadRef("ml", "web")
GITOPS = "argocd"
SERVER = 'k:{"name":"server"}'
CONTAINERS = ("f:spec", "f:template", "f:spec", "f:containers")
LIMITS = (*CONTAINERS, SERVER, "f:resources", "f:limits")
IMAGE = (*CONTAINERS, SERVER, "f:image")
REPLICAS = ("f:spec", "f:replicas")
DECISION = ("f:metadata", "f:annotations", "f:sloscale.io/last-decision")
SURGE = ("f:spec", "f:strategy", "f:rollingUpdate", "f:maxSurge")
UNAVAILABLE = ("f:spec", "f:strategy", "f:rollingUpdate", "f:maxUnavailable")
SCHEDULER = ("f:spec", "f:template", "f:spec", "f:schedulerName")
FRACTION = ("f:spec", "f:template", "f:metadata", "f:annotations", "f:gpu-fraction")


def plan(replicas: int, pct: int, mib: int, reason: Reason = Reason.RESIZE) -> Plan:
    return Plan(scale=(ScaleAction(WEB, Allocation(replicas, pct), mib, reason),))


def synced(server: FakeApiServer, **kw: Any) -> JsonObj:
    """The manifest as Git holds it, applied by the GitOps tool; the Deployment settled."""
    manifest = deployment("web", **kw)
    status = manifest.pop("status")
    server.apply(manifest, GITOPS)
    server.mutate("Deployment", "ml", "web", lambda d: d.update(status=status))
    return manifest


def live(server: FakeApiServer) -> JsonObj:
    dep = server.obj("Deployment", "ml", "web")
    assert dep is not None
    return dep


def test_a_resize_owns_exactly_the_fields_sloscale_wrote(server: FakeApiServer) -> None:
    server.put(gpu_node("gpu-1"))
    synced(server, replicas=2)
    c = make_cluster(server)
    try:
        (r,) = c.apply(plan(3, 30, 16384))
        assert r.ok, r.message
    finally:
        c.close()
    dep = live(server)
    server_limits = dep["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"]
    assert server_limits["nvidia.com/gpucores"] == "30" and dep["spec"]["replicas"] == 3
    item = (*CONTAINERS, SERVER)
    assert owned_by(dep, FIELD_MANAGER) == {
        REPLICAS,
        DECISION,
        SURGE,
        UNAVAILABLE,
        (*item, "."),  # the container, named by its merge key
        (*item, "f:name"),
        (*LIMITS, "f:nvidia.com/gpu"),
        (*LIMITS, "f:nvidia.com/gpucores"),
        (*LIMITS, "f:nvidia.com/gpumem"),
    }
    entries = entries_of(dep)
    assert entries[(FIELD_MANAGER, "Update", "scale")] == {REPLICAS}
    assert REPLICAS not in entries[(FIELD_MANAGER, "Apply", "")]
    # the GitOps tool's other fields are its own still, and as it set them
    assert owners(dep, IMAGE) == [GITOPS]
    assert dep["spec"]["template"]["spec"]["containers"][1]["image"] == "vllm/vllm-openai"
    sidecar = (*CONTAINERS, 'k:{"name":"sidecar"}', "f:image")
    assert owners(dep, sidecar) == [GITOPS]
    assert owners(dep, ("f:metadata", "f:annotations", "f:sloscale.io/enabled")) == [GITOPS]
    # the values sloscale changed are no longer the GitOps tool's; the one it set to the
    # value it had is shared
    assert owners(dep, REPLICAS) == [FIELD_MANAGER]
    assert owners(dep, (*LIMITS, "f:nvidia.com/gpucores")) == [FIELD_MANAGER]
    assert owners(dep, (*LIMITS, "f:nvidia.com/gpu")) == sorted([FIELD_MANAGER, GITOPS])


def test_the_resize_is_an_apply_of_the_owned_fields_with_force(server: FakeApiServer) -> None:
    server.put(gpu_node("gpu-1"))
    synced(server, replicas=2)
    c = make_cluster(server)
    try:
        assert c.apply(plan(2, 30, 16384))[0].ok
    finally:
        c.close()
    (applied,) = [w for w in server.writes() if w.resource == "deployments"]
    assert applied.content_type == APPLY_PATCH
    assert applied.query["fieldManager"] == FIELD_MANAGER and applied.query["force"] == "true"
    body = applied.body
    assert body["apiVersion"] == "apps/v1" and body["kind"] == "Deployment"
    assert body["metadata"]["name"] == "web" and body["metadata"]["resourceVersion"]
    assert set(body["metadata"]["annotations"]) == {"sloscale.io/last-decision"}
    assert "replicas" not in body["spec"]
    (container,) = body["spec"]["template"]["spec"]["containers"]
    assert container == {
        "name": "server",
        "resources": {
            "limits": {
                "nvidia.com/gpu": "1",
                "nvidia.com/gpucores": "30",
                "nvidia.com/gpumem": "16384",
            }
        },
    }


def test_without_force_the_gitops_tools_values_would_refuse_the_resize(
    server: FakeApiServer,
) -> None:
    """Why the resize forces: the manifest's manager owns the slice until sloscale takes it."""
    manifest = synced(server, replicas=2)
    mine = copy.deepcopy(manifest)
    mine["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"][
        "nvidia.com/gpucores"
    ] = "30"
    with pytest.raises(ApiFailureError) as refused:
        server.apply(mine, FIELD_MANAGER)
    assert refused.value.code == 409
    (cause,) = refused.value.details["causes"]  # type: ignore[index]
    assert cause["message"] == f'conflict with "{GITOPS}"'
    assert cause["field"] == describe((*LIMITS, "f:nvidia.com/gpucores"))


def test_a_sync_that_leaves_sloscales_fields_out_keeps_them(server: FakeApiServer) -> None:
    """The GitOps guidance (docs/gitops.md): once sloscale owns replicas, the slice and the
    surge bounds, a manifest without them no longer touches them; one with other values
    conflicts (an apply without force), or takes them back (with force, as Flux does)."""
    server.put(gpu_node("gpu-1"))
    manifest = synced(server, replicas=2)
    c = make_cluster(server)
    try:
        assert c.apply(plan(3, 30, 16384))[0].ok
    finally:
        c.close()
    old = copy.deepcopy(manifest)
    with pytest.raises(ApiFailureError) as refused:
        server.apply(old, GITOPS)
    fields = {cause["field"] for cause in refused.value.details["causes"]}  # type: ignore[index]
    assert describe((*LIMITS, "f:nvidia.com/gpucores")) in fields
    assert describe(REPLICAS) in fields and describe(SURGE) in fields
    lean = copy.deepcopy(manifest)
    del lean["spec"]["replicas"], lean["spec"]["strategy"]["rollingUpdate"]
    gpu = lean["spec"]["template"]["spec"]["containers"][1]
    del gpu["resources"]
    gpu["image"] = "vllm/vllm-openai:v2"  # a change Git still makes
    server.apply(lean, GITOPS)
    dep = live(server)
    gpu_live = dep["spec"]["template"]["spec"]["containers"][1]
    assert gpu_live["image"] == "vllm/vllm-openai:v2"
    assert gpu_live["resources"]["limits"] == {
        "nvidia.com/gpu": "1",  # shared until now: sloscale owns it still
        "nvidia.com/gpucores": "30",
        "nvidia.com/gpumem": "16384",
    }
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    server.apply(old, GITOPS, force=True)  # a forced sync takes the values back
    dep = live(server)
    assert dep["spec"]["replicas"] == 2
    assert owners(dep, (*LIMITS, "f:nvidia.com/gpucores")) == [GITOPS]


def test_a_decision_alone_keeps_the_applied_slice(server: FakeApiServer) -> None:
    """A later write of only replicas and the decision is a merge patch: an apply of the
    annotation alone would remove the slice sloscale applied before."""
    server.put(gpu_node("gpu-1"))
    synced(server, replicas=2)
    c = make_cluster(server)
    try:
        assert c.apply(plan(2, 30, 16384))[0].ok
        server.requests.clear()
        c.deployments.parts[0]._store["ml/web"] = live(server)
        (r,) = c.apply(plan(4, 30, 16384, Reason.SCALE_UP))
        assert r.ok and "slice" not in r.message, r.message
    finally:
        c.close()
    writes = [(w.resource, w.content_type) for w in server.writes() if w.resource != "events"]
    assert writes == [
        ("deployments/scale", "application/merge-patch+json"),
        ("deployments", "application/merge-patch+json"),
    ]
    dep = live(server)
    limits = dep["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"]
    assert limits["nvidia.com/gpucores"] == "30"
    assert owners(dep, (*LIMITS, "f:nvidia.com/gpucores")) == [FIELD_MANAGER]
    assert owners(dep, DECISION) == [FIELD_MANAGER]


@pytest.mark.parametrize(
    ("dialect", "scheduler"), [("kai", "kai-scheduler"), ("volcano", "volcano")]
)
def test_a_resize_in_the_same_dialect_reapplies_the_scheduler_it_needs(
    server: FakeApiServer, dialect: str, scheduler: str
) -> None:
    """The first resize leaves HAMi (a patch: it removes HAMi's keys); the next one is an
    apply that names the scheduler again although it is there: a field sloscale applied
    before and left out would be removed."""
    server.put(gpu_node("gpu-1"))
    manifest = synced(server, replicas=2, annotations={"sloscale.io/slice-dialect": dialect})
    del manifest
    c = make_cluster(server)
    try:
        assert c.apply(plan(2, 30, 16384))[0].ok
        dep = live(server)
        dep["status"]["observedGeneration"] = dep["metadata"]["generation"]  # rolled out
        server.put(dep)
        c.deployments.parts[0]._store["ml/web"] = live(server)
        server.requests.clear()
        assert c.apply(plan(2, 50, 20480))[0].ok
        again = live(server)
        c.deployments.parts[0]._store["ml/web"] = again
        (third,) = c.apply(plan(2, 50, 20480))
        assert third.ok and "slice" not in third.message, third.message
    finally:
        c.close()
    (applied,) = [w for w in server.writes() if w.resource == "deployments"]
    assert applied.content_type == APPLY_PATCH
    assert applied.body["spec"]["template"]["spec"]["schedulerName"] == scheduler
    assert again["spec"]["template"]["spec"]["schedulerName"] == scheduler
    assert FIELD_MANAGER in owners(again, SCHEDULER)
    if dialect == "kai":
        assert again["spec"]["template"]["metadata"]["annotations"]["gpu-fraction"] == "0.5"
        assert owners(again, FRACTION) == [FIELD_MANAGER]


def test_a_changed_object_refuses_the_apply_and_it_is_made_again(server: FakeApiServer) -> None:
    """The apply is conditional on the resourceVersion read: another write in between (here
    a label) is a 409, the Deployment is re-read and the resize applied on it."""
    server.put(gpu_node("gpu-1"))
    synced(server, replicas=2)
    raced: list[Request] = []

    def race(req: Request) -> None:
        if req.content_type == APPLY_PATCH and not raced:
            raced.append(req)
            server.mutate(
                "Deployment", "ml", "web", lambda d: d["metadata"]["labels"].update(x="y")
            )

    c = make_cluster(server)
    try:
        server.before_write = race
        (r,) = c.apply(plan(2, 30, 16384))
        assert r.ok, r.message
    finally:
        server.before_write = None
        c.close()
    applies = [w for w in server.writes() if w.content_type == APPLY_PATCH]
    assert len(applies) == 2
    assert (
        applies[0].body["metadata"]["resourceVersion"]
        != (applies[1].body["metadata"]["resourceVersion"])
    )
    dep = live(server)
    assert dep["metadata"]["labels"]["x"] == "y"
    limits = dep["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"]
    assert limits["nvidia.com/gpucores"] == "30"


def test_a_decision_recorded_already_is_applied_as_it_is(server: FakeApiServer) -> None:
    """The annotation is in every apply (sloscale owns it, and a field it leaves out is
    removed), with the recorded text when the decision is the same: its time stays."""
    server.put(gpu_node("gpu-1"))
    synced(server, replicas=2)
    c = make_cluster(server)
    try:
        assert c.apply(plan(2, 30, 16384))[0].ok
        first = live(server)["metadata"]["annotations"]["sloscale.io/last-decision"]

        def undo(d: JsonObj) -> None:  # another writer puts the old slice back; rolled out
            limits = d["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"]
            limits.update({"nvidia.com/gpucores": "50", "nvidia.com/gpumem": "20480"})
            d["status"]["observedGeneration"] = d["metadata"]["generation"] + 1

        server.mutate("Deployment", "ml", "web", undo)
        c.deployments.parts[0]._store["ml/web"] = live(server)
        c.clock = lambda: 2e9  # a later tick
        server.requests.clear()
        assert c.apply(plan(2, 30, 16384))[0].ok  # the same resize, the same decision
    finally:
        c.close()
    (applied,) = [w for w in server.writes() if w.content_type == APPLY_PATCH]
    assert applied.body["metadata"]["annotations"]["sloscale.io/last-decision"] == first
    assert live(server)["metadata"]["annotations"]["sloscale.io/last-decision"] == first
