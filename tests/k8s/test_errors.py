"""Errors: 409 retried, 403 names the RBAC gap, 404 is a no-op, 422 carries the API message;
none stops the other actions."""

from __future__ import annotations

from actuators.kubernetes import ApiCall, ApiError
from controller.domain import Allocation, Plan, Reason, ScaleAction, WorkloadRef
from tests.k8s.conftest import deployment, make_cluster
from tests.k8s.fakeapi import FakeApiServer, Request, Rule


def _act(name: str, replicas: int, pct: int = 50) -> ScaleAction:
    return ScaleAction(WorkloadRef("ml", name), Allocation(replicas, pct), 20480, Reason.SCALE_UP)


def test_conflict_rereads_and_retries(server: FakeApiServer) -> None:
    server.put(deployment("web", replicas=2))
    c = make_cluster(server)
    raced: list[object] = []

    def someone_else_writes_first(req: Request) -> None:
        if req.resource == "deployments/scale" and not raced:
            raced.append(req)
            dep = server.obj("Deployment", "ml", "web")
            assert dep is not None
            dep["metadata"]["labels"]["touched"] = "yes"
            server.put(dep)  # a new resourceVersion: our write is now stale

    server.before_write = someone_else_writes_first
    try:
        (r,) = c.apply(Plan(scale=(_act("web", 5),)))
        assert r.ok, r.message
        scale_writes = [w for w in server.writes() if w.resource == "deployments/scale"]
        assert len(scale_writes) == 2  # 409, then re-read and retried
        assert any(q.verb == "get" and q.resource == "deployments" for q in server.requests)
        dep = server.obj("Deployment", "ml", "web")
        assert dep is not None and dep["spec"]["replicas"] == 5
        assert dep["metadata"]["labels"]["touched"] == "yes"  # the other write survived
    finally:
        c.close()


def test_forbidden_names_verb_and_resource(server: FakeApiServer) -> None:
    server.put(deployment("web", replicas=2))
    server.rules = [
        Rule(("apps",), ("deployments",), ("get", "list", "watch", "patch")),
        Rule(("",), ("pods", "nodes"), ("list", "watch")),
        Rule(("batch",), ("jobs",), ("list", "watch")),
    ]
    c = make_cluster(server)
    try:
        (r,) = c.apply(Plan(scale=(_act("web", 3),)))
        assert not r.ok
        assert "verb 'patch'" in r.message and "'deployments/scale'" in r.message
        assert "API group 'apps'" in r.message
    finally:
        c.close()


def test_deleted_mid_tick_is_a_no_op_and_others_still_apply(server: FakeApiServer) -> None:
    server.put(deployment("gone", replicas=2))
    server.put(deployment("web", replicas=2))
    c = make_cluster(server)
    server.remove("Deployment", "ml", "gone")
    c.deployments.parts[0]._store.pop("ml/gone", None)
    try:
        gone, web = c.apply(Plan(scale=(_act("gone", 3), _act("web", 3))))
        assert gone.ok and "deleted" in gone.message
        assert web.ok and "replicas 2->3" in web.message
    finally:
        c.close()


def test_invalid_is_reported_with_the_api_message(server: FakeApiServer) -> None:
    server.put(deployment("bad", replicas=2))
    server.put(deployment("web", replicas=2))
    c = make_cluster(server)
    try:
        bad, web = c.apply(Plan(scale=(_act("bad", -1), _act("web", 4))))
        assert not bad.ok and "422 Invalid" in bad.message
        assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in bad.message
        assert web.ok
    finally:
        c.close()


def test_injected_server_error_does_not_stop_others(server: FakeApiServer) -> None:
    server.put(deployment("a", replicas=1))
    server.put(deployment("b", replicas=1))
    server.fail_next("PATCH", "deployments/scale", 500, "InternalError", "etcd is sad")
    c = make_cluster(server)
    try:
        a, b = c.apply(Plan(scale=(_act("a", 2), _act("b", 2))))
        assert not a.ok and "etcd is sad" in a.message
        assert b.ok
    finally:
        c.close()


def test_unreachable_server_is_an_api_error() -> None:
    err = ApiError(ApiCall("get", "apps", "deployments", "ml", "web"), 0, "Unreachable", "refused")
    assert "unreachable" in err.describe()
