"""The controller's memory in a ConfigMap (``actuators.kubernetes.snapshots``) against the fake
API server: written only when it changed, guarded by resourceVersion, only by the leader,
restored by the next controller; never an exception."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration

from actuators.kubernetes import ConfigMapSnapshotStore, KubeApi
from actuators.kubernetes.snapshots import DATA_KEY
from controller.persist import decode
from sloscale.run import RunOptions, run
from tests.k8s.conftest import deployment, gpu_node, make_api
from tests.k8s.fakeapi import FakeApiServer
from tests.k8s.test_run import kubeconfig

NS = "sloscale"


def doc(n: int) -> dict[str, Any]:
    return {"kind": "test", "version": 1, "n": n}


def state_writes(server: FakeApiServer) -> list[str]:
    return [r.verb for r in server.writes() if r.resource == "configmaps"]


class Gate:
    leading = True

    def is_leader(self) -> bool:
        return self.leading


def test_written_only_when_it_changed(server: FakeApiServer, api: KubeApi) -> None:
    store = ConfigMapSnapshotStore(api, NS)
    assert store.load() is None  # nothing saved yet: a quiet cold start
    assert store.save(doc(1)) and store.save(doc(1)) and store.save(doc(1))
    assert state_writes(server) == ["create"]
    assert store.save(doc(2)) and store.save(doc(2))
    assert state_writes(server) == ["create", "update"]
    update = server.writes()[-1]
    assert update.body["metadata"]["resourceVersion"]  # guarded: the version it wrote last
    saved = server.obj("ConfigMap", NS, "sloscale-state")
    assert saved is not None and saved["metadata"]["labels"]["app.kubernetes.io/name"] == "sloscale"
    successor = ConfigMapSnapshotStore(make_api(server), NS)  # the next pod
    assert successor.load() == doc(2)
    assert successor.save(doc(2))  # what it read is what it holds: no write
    assert state_writes(server) == ["create", "update"]


def test_a_write_by_another_is_not_overwritten_unseen(
    server: FakeApiServer, api: KubeApi, caplog: pytest.LogCaptureFixture
) -> None:
    store = ConfigMapSnapshotStore(api, NS)
    assert store.save(doc(1))
    server.mutate(  # a former leader, not yet aware it lost the lease
        "ConfigMap", NS, "sloscale-state", lambda cm: cm["data"].update({DATA_KEY: '{"x":1}'})
    )
    with caplog.at_level(logging.WARNING, logger="sloscale.kubernetes.state"):
        assert not store.save(doc(2))
    assert "changed since it was read" in caplog.text
    assert store.save(doc(2))  # read again: now replaced knowingly
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == doc(2)


def test_a_replica_that_does_not_lead_writes_nothing(server: FakeApiServer, api: KubeApi) -> None:
    gate = Gate()
    gate.leading = False
    store = ConfigMapSnapshotStore(api, NS, leader=gate)
    assert not store.save(doc(1))
    assert state_writes(server) == []
    gate.leading = True
    assert store.save(doc(1))
    assert state_writes(server) == ["create"]


def test_created_by_another_replica_first_is_updated(server: FakeApiServer, api: KubeApi) -> None:
    ConfigMapSnapshotStore(make_api(server), NS).save(doc(1))
    late = ConfigMapSnapshotStore(api, NS)  # never read it: tries to create, gets 409
    assert late.save(doc(2))
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == doc(2)


def test_deleted_meanwhile_is_created_again(server: FakeApiServer, api: KubeApi) -> None:
    store = ConfigMapSnapshotStore(api, NS)
    assert store.save(doc(1))
    server.remove("ConfigMap", NS, "sloscale-state")
    assert not store.save(doc(2))
    assert store.save(doc(2))
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == doc(2)


@pytest.mark.parametrize("content", ["{not json", None])
def test_unreadable_content_is_a_cold_start(
    server: FakeApiServer, api: KubeApi, content: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    data = {} if content is None else {DATA_KEY: content}
    server.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "sloscale-state", "namespace": NS},
            "data": data,
        }
    )
    with caplog.at_level(logging.WARNING, logger="sloscale.kubernetes.state"):
        assert ConfigMapSnapshotStore(api, NS).load() is None
    assert caplog.records


def test_an_unreachable_or_forbidding_api_never_raises(server: FakeApiServer, api: KubeApi) -> None:
    store = ConfigMapSnapshotStore(api, NS)
    server.fail_next("GET", "configmaps", 403, "Forbidden", "no")
    assert store.load() is None
    server.fail_next("POST", "configmaps", 500, "InternalError", "etcd down")
    assert not store.save(doc(1))
    assert store.save(doc(1))  # tried again
    nowhere = KubeApi(ApiClient(Configuration(host="http://127.0.0.1:9")))  # nothing listens
    unreachable = ConfigMapSnapshotStore(nowhere, NS)
    assert unreachable.load() is None
    assert not unreachable.save(doc(3))


def test_a_document_too_large_for_a_configmap_is_not_written(
    server: FakeApiServer, api: KubeApi
) -> None:
    store = ConfigMapSnapshotStore(api, NS, max_bytes=100)
    assert not store.save({"kind": "x" * 200})
    assert state_writes(server) == []


def test_run_keeps_the_memory_in_the_configmap_for_the_next_controller(tmp_path: Path) -> None:
    """``sloscale run`` on Kubernetes (Prometheus unreachable: every tick holds) saves the
    memory of the Deployment it manages, and the next run restores it."""
    with FakeApiServer(bookmark_interval_s=0.2) as server:
        server.put(gpu_node("gpu-1"))
        server.put(deployment("web", replicas=2))
        options = RunOptions(
            prometheus_url="http://127.0.0.1:9",
            cluster="kubernetes",
            kubeconfig=str(kubeconfig(tmp_path, server.url)),
            interval_s=0.5,
            query_timeout_s=0.2,
            serve=False,
            duration_s=1.5,
        )
        assert run(options) == 0
        saved = server.obj("ConfigMap", NS, "sloscale-state")
        assert saved is not None
        snapshot = decode(ConfigMapSnapshotStore(make_api(server), NS).load())
        assert snapshot is not None and set(snapshot.workloads) == {"ml/web"}
        recommended = snapshot.workloads["ml/web"].memory.recommendations
        assert recommended and all(a.replicas == 2 for _, a in recommended)  # held, blind
        first = len(server.requests)
        assert run(options) == 0
        calls = [r.verb for r in server.requests[first:] if r.resource == "configmaps"]
        assert calls[0] == "get" and set(calls) == {"get", "update"}  # read first, then kept
        after = decode(ConfigMapSnapshotStore(make_api(server), NS).load())
        assert after is not None  # the window goes on from the first run's recommendations
        assert after.workloads["ml/web"].memory.recommendations[0] == recommended[0]
