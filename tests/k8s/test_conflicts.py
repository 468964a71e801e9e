"""Other autoscalers read by the Kubernetes adapter, against the fake API server (#24).

HPAs and KEDA ScaledObjects are listed and watched in the scope; Knative's class annotation is
read from the Deployments. A cluster without KEDA has none and says it once; a list that fails
is said each tick and never read as "no conflict"; a watch that fails keeps what it knew.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from actuators.kubernetes import KubernetesCluster, KubernetesOptions, Scope
from actuators.kubernetes.autoscalers import others
from controller.domain import Reason
from controller.loop import Controller, LoopConfig
from tests.fakes import FakeClock, FakeMetrics
from tests.k8s.conftest import deployment, gpu_node, make_api, make_cluster, pod
from tests.k8s.fakeapi import FakeApiServer
from tests.scenario.test_tick import busy

JsonObj = dict[str, Any]


def hpa(name: str, target: str, namespace: str = "ml", kind: str = "Deployment") -> JsonObj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
            "minReplicas": 1,
            "maxReplicas": 10,
        },
    }


def scaled_object(name: str, target: str, namespace: str = "ml") -> JsonObj:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"scaleTargetRef": {"name": target}, "triggers": []},  # kind: Deployment
    }


def _eventually(ok: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_hpas_scaled_objects_and_knative_classes_are_found(server: FakeApiServer) -> None:
    server.put(gpu_node("gpu-1"))
    for name in ("a", "b", "c", "d"):
        server.put(deployment(name))
    server.put(hpa("a-hpa", "a"))
    server.put(hpa("sts-hpa", "a", kind="StatefulSet"))  # not the Deployment a
    server.put(scaled_object("b-so", "b"))
    keda_hpa = hpa("keda-hpa-b-so", "b")  # the HPA KEDA makes for it: named as the SO
    keda_hpa["metadata"]["ownerReferences"] = [{"kind": "ScaledObject", "name": "b-so"}]
    server.put(keda_hpa)
    server.put(
        deployment(
            "c",
            template_annotations={"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev"},
        )
    )
    c = make_cluster(server)
    try:
        _eventually(lambda: len(c.snapshot().autoscalers) == 4)
        snap = c.snapshot()
        assert snap.autoscaler_errors == ()
        knative = next(o for o in snap.autoscalers if o.target.key == "ml/c")
        assert knative.describe() == (
            "autoscaling.knative.dev/class kpa.autoscaling.knative.dev on pod template ml/c"
        )
        kinds = {(o.target.key, o.target.kind, o.kind) for o in snap.autoscalers}
        assert kinds == {
            ("ml/a", "Deployment", "HorizontalPodAutoscaler"),
            ("ml/a", "StatefulSet", "HorizontalPodAutoscaler"),
            ("ml/b", "Deployment", "ScaledObject"),
            ("ml/c", "Deployment", "autoscaling.knative.dev/class"),
        }
        server.remove("HorizontalPodAutoscaler", "ml", "a-hpa")  # the watch sees it go
        _eventually(lambda: len(c.snapshot().autoscalers) == 3)
    finally:
        c.close()


def test_without_keda_there_are_no_scaled_objects_and_no_noise(
    server: FakeApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.absent_groups = {"keda.sh"}
    asked: list[str] = []
    route = server._route
    server._route = lambda path: (asked.append(path) if "keda.sh" in path else None, route(path))[1]  # type: ignore[method-assign]
    server.put(gpu_node("gpu-1"))
    server.put(deployment("web"))
    server.put(hpa("web-hpa", "web"))
    with caplog.at_level(logging.INFO, logger="sloscale"):
        c = make_cluster(server)
        try:
            for _ in range(3):
                snap = c.snapshot()
                time.sleep(0.2)
            assert snap.autoscaler_errors == ()  # not installed is not an error
            assert [o.kind for o in snap.autoscalers] == ["HorizontalPodAutoscaler"]
        finally:
            c.close()
    keda = [r for r in caplog.records if "scaledobjects" in r.getMessage()]
    assert len(keda) == 1 and keda[0].levelno == logging.INFO, [r.getMessage() for r in keda]
    assert len(asked) == 1  # asked again only after minutes, not each tick


def test_a_list_that_fails_is_said_each_tick_and_never_holds_discovery(
    server: FakeApiServer,
) -> None:
    """RBAC without the HPA grant (an upgrade that kept the old ClusterRole): the tick runs,
    and says that conflicts are unknown."""
    server.put(gpu_node("gpu-1"))
    server.put(deployment("web"))
    server.fail_next("GET", "horizontalpodautoscalers", 403, "Forbidden", "no", 10**6)
    c = make_cluster(server)
    try:
        snap = c.snapshot()
        assert [d.ref.key for d in snap.deployments] == ["ml/web"]
        (error,) = snap.autoscaler_errors
        assert "other autoscalers unknown" in error and "horizontalpodautoscalers" in error
        assert "forbidden" in error.lower()
    finally:
        c.close()


def test_a_failing_watch_keeps_the_last_known_conflicts(server: FakeApiServer) -> None:
    server.put(gpu_node("gpu-1"))
    server.put(deployment("web"))
    server.put(hpa("web-hpa", "web"))
    options = KubernetesOptions(watch_timeout_s=1, sync_timeout_s=1.0)
    c = KubernetesCluster(make_api(server), options, sleep=lambda _s: None)
    c.start()
    try:
        assert c.wait_synced(5)
        _eventually(lambda: len(c.snapshot().autoscalers) == 1)
        server.fail_next(
            "GET", "horizontalpodautoscalers", 500, "InternalError", "etcd", 10**6, verb="watch"
        )
        _eventually(lambda: c.autoscalers.hpas.last_error is not None)
        server.remove("HorizontalPodAutoscaler", "ml", "web-hpa")  # unseen: the watch is down
        _eventually(lambda: bool(c.snapshot().autoscaler_errors), 10)
        snap = c.snapshot()
        assert [o.describe() for o in snap.autoscalers] == ["HorizontalPodAutoscaler ml/web-hpa"]
        assert "last known other autoscalers are kept" in snap.autoscaler_errors[0]
    finally:
        c.close()


def test_namespaced_mode_reads_them_only_in_its_namespaces(server: FakeApiServer) -> None:
    server.put(gpu_node("gpu-1"))
    for ns in ("team-a", "other"):
        server.put(deployment("web", ns))
        server.put(hpa("web-hpa", "web", ns))
        server.put(scaled_object("web-so", "web", ns))
    c = make_cluster(server, scope=Scope.of("team-a"))
    try:
        _eventually(lambda: len(c.snapshot().autoscalers) == 2)
        assert {o.target.namespace for o in c.snapshot().autoscalers} == {"team-a"}
    finally:
        c.close()
    reads = [
        r for r in server.requests if r.resource in ("horizontalpodautoscalers", "scaledobjects")
    ]
    assert reads and all(r.namespace == "team-a" for r in reads)


def test_the_loop_holds_the_fought_deployment_and_warns_once_in_an_event(
    server: FakeApiServer,
) -> None:
    """Through the loop: the HPA's Deployment is held (reason ConflictingAutoscaler), one
    Warning Event names the HPA, and its neighbour is scaled on the same tick."""
    server.put(gpu_node("gpu-1", cards=4))
    for name in ("fought", "free"):
        server.put(deployment(name, replicas=1))
        server.put(pod(f"{name}-0", owner=("ReplicaSet", f"{name}-1")))
    server.put(hpa("fought-hpa", "fought"))
    c = make_cluster(server)
    clock = FakeClock(1000.0)
    metrics = FakeMetrics({f"ml/{n}": busy(40.0, 1, 50) for n in ("fought", "free")})
    ctl = Controller(c, metrics, clock, LoopConfig(interval_s=15.0))
    try:
        _eventually(lambda: len(c.snapshot().autoscalers) == 1)
        for _ in range(2):
            clock.advance(15.0)
            report = ctl.tick()
        reasons = {d.target: d.reason for d in report.decisions}
        assert reasons["ml/fought"] is Reason.CONFLICTING_AUTOSCALER
        assert reasons["ml/free"] is not Reason.CONFLICTING_AUTOSCALER
        fought, free = (server.obj("Deployment", "ml", n) for n in ("fought", "free"))
        assert fought is not None and fought["spec"]["replicas"] == 1
        assert free is not None and free["spec"]["replicas"] > 1
        warnings = [
            e
            for e in server.objects("Event")
            if e["reason"] == "ConflictingAutoscaler" and e["involvedObject"]["name"] == "fought"
        ]
        assert len(warnings) == 1 and warnings[0]["type"] == "Warning"
        assert "HorizontalPodAutoscaler ml/fought-hpa" in warnings[0]["message"]
    finally:
        c.close()


def test_others_is_pure_and_skips_what_names_no_target() -> None:
    bad = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"}, "spec": {}}
    assert others([bad], [], [deployment("web")]) == ()
