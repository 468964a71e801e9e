"""The controller's memory in ConfigMaps (``actuators.kubernetes.snapshots``) against the fake
API server: compressed, in the head or cut into parts, a save all or nothing; written only when
it changed, guarded by resourceVersion, only by the leader, restored by the next controller;
an older save still read; never an exception."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, Configuration

from actuators.kubernetes import ConfigMapSnapshotStore, KubeApi
from actuators.kubernetes.snapshots import (
    BINARY_KEY,
    DATA_KEY,
    FORMAT,
    MAX_PARTS,
    object_names,
)
from controller.persist import decode
from sloscale.run import RunOptions, run
from tests.k8s.conftest import deployment, gpu_node, make_api
from tests.k8s.fakeapi import FakeApiServer
from tests.k8s.fakeapi.kinds import ApiFailureError
from tests.k8s.fakeapi.rbac import Request
from tests.k8s.test_run import kubeconfig
from tests.support.gotool import REPO

NS = "sloscale"
HEAD = "sloscale-state"
PART_BYTES = 1000  # per object, in the multi-part tests
LOGGER = "sloscale.kubernetes.state"


def doc(n: int) -> dict[str, Any]:
    return {"kind": "test", "version": 1, "n": n}


def big(n: int, parts: int = 4) -> dict[str, Any]:
    """A document that hardly compresses (random base64): ``parts`` objects of
    ``PART_BYTES`` compressed, the last about half full."""
    noise = base64.b64encode(os.urandom(int((parts - 0.5) * PART_BYTES))).decode()
    return {"kind": "test", "n": n, "noise": noise}


def state_writes(server: FakeApiServer) -> list[str]:
    return [r.verb for r in server.writes() if r.resource == "configmaps"]


def written(server: FakeApiServer) -> list[tuple[str, str | None]]:
    """Each ConfigMap write: (verb, name), a create's name from its body."""
    return [
        (r.verb, r.name or r.body["metadata"]["name"])
        for r in server.writes()
        if r.resource == "configmaps"
    ]


def configmaps(server: FakeApiServer) -> set[str]:
    return {o["metadata"]["name"] for o in server.objects("ConfigMap")}


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
        "ConfigMap", NS, HEAD, lambda cm: cm["data"].update({"by": "a former leader"})
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


def test_a_small_memory_is_one_compressed_head(server: FakeApiServer, api: KubeApi) -> None:
    """gzip into the head's binaryData, with its size and sha256: one object, one write."""
    store = ConfigMapSnapshotStore(api, NS)
    document = {"kind": "test", "rates": [[float(t), 1.5] for t in range(2000)]}
    assert store.save(document)
    assert written(server) == [("create", HEAD)] and configmaps(server) == {HEAD}
    head = server.obj("ConfigMap", NS, HEAD)
    assert head is not None
    packed = base64.b64decode(head["binaryData"][BINARY_KEY])
    assert json.loads(gzip.decompress(packed)) == document
    assert head["data"]["format"] == FORMAT and head["data"]["parts"] == "0"
    assert int(head["data"]["bytes"]) == len(packed) < len(json.dumps(document)) / 5
    assert DATA_KEY not in head["data"] and "set" not in head["data"]
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == document


def test_a_large_memory_is_cut_into_parts_of_the_set_the_head_does_not_name(
    server: FakeApiServer, api: KubeApi
) -> None:
    """Each save writes its parts to the other set (a, b, a...), then the head last; each
    successor loads the whole of the last save; a part left over from a larger save is not
    read."""
    store = ConfigMapSnapshotStore(api, NS, max_bytes=PART_BYTES)
    first, second, third = big(1), big(2), big(3, parts=3)
    parts_a = [f"{HEAD}-a-{i}" for i in range(4)]
    parts_b = [f"{HEAD}-b-{i}" for i in range(4)]
    assert store.save(first)
    # the first save into a set finds no part there: update (404), then create
    assert [w for w in written(server) if w[0] == "create"] == [
        *(("create", n) for n in parts_a),
        ("create", HEAD),
    ]
    head = server.obj("ConfigMap", NS, HEAD)
    assert head is not None and "binaryData" not in head
    assert (head["data"]["set"], head["data"]["parts"]) == ("a", "4")
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == first

    before = len(server.requests)
    assert store.save(second)
    order = [r.name or r.body["metadata"]["name"] for r in server.requests[before:] if r.is_write]
    assert order[-1] == HEAD  # the head last: until then it names set a, untouched
    assert set(order[:-1]) == set(parts_b)
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == second

    before = len(server.requests)
    assert store.save(third)
    order = [r.name for r in server.requests[before:] if r.is_write]
    assert order == [*parts_a[:3], HEAD]  # updates now: the parts are there
    successor = ConfigMapSnapshotStore(make_api(server), NS)
    assert successor.load() == third  # a-3, of the first save, is not read
    assert configmaps(server) == {HEAD, *parts_a, *parts_b}
    before = len(server.requests)
    assert successor.save(third)  # what it read is what it holds: no write
    assert server.requests[before:] == []


def head_refused(server: FakeApiServer) -> None:
    """The head's writes are refused from now on: its writer dies after the parts."""

    def refuse(r: Request) -> None:
        name = r.name or (r.body.get("metadata") or {}).get("name")
        if r.resource == "configmaps" and name == HEAD:
            raise ApiFailureError(500, "InternalError", "the writer died")

    server.before_write = refuse


def test_a_save_cut_short_before_the_head_leaves_the_previous_one_loadable(
    server: FakeApiServer, api: KubeApi
) -> None:
    """A crash (or a lost leadership, a refused request) after some or all of a save's
    parts and before its head: the head still names the previous save, whose parts were not
    touched, and it loads whole; the next save completes."""
    store = ConfigMapSnapshotStore(api, NS, max_bytes=PART_BYTES)
    first = big(1)
    assert store.save(first)
    head_refused(server)
    assert not store.save(big(2))  # every part of set b written, the head refused
    assert {f"{HEAD}-b-{i}" for i in range(4)} <= configmaps(server)
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == first
    server.before_write = None
    server.fail_next("PUT", "configmaps", 500, "InternalError", "etcd down")
    assert not store.save(big(3))  # its first part refused: nothing else written
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == first
    fourth = big(4)
    assert store.save(fourth)
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == fourth


def test_a_former_leaders_late_save_never_loads_as_a_mix(
    server: FakeApiServer, api: KubeApi, caplog: pytest.LogCaptureFixture
) -> None:
    """A former leader that has not noticed yet still thinks the head names set a: it writes
    set b, the new leader's live parts, and its head is refused (409). The head names one
    save and the parts hold the other's: the sha256 tells, a cold start with a warning naming
    the part, never one writer's head over the other's parts. The next save is whole."""
    assert ConfigMapSnapshotStore(make_api(server), NS, max_bytes=PART_BYTES).save(big(0))
    leader = ConfigMapSnapshotStore(make_api(server), NS, max_bytes=PART_BYTES)
    former = ConfigMapSnapshotStore(api, NS, max_bytes=PART_BYTES)
    assert leader.load() is not None and former.load() is not None  # both: set a
    assert leader.save(big(1))  # set b, the head
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert not former.save(big(2))  # set b again, its head refused
        assert "changed since it was read" in caplog.text
        assert ConfigMapSnapshotStore(make_api(server), NS).load() is None
    assert f"ConfigMap {NS}/{HEAD}-b-0 (part 1 of 4) belongs to another save" in caplog.text
    third = big(3)
    assert leader.save(third)  # set a, then the head: whole again
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == third


@pytest.mark.parametrize(
    "damage",
    [
        "a part's bytes changed",
        "a part missing",
        "a part's tag changed",
        "the head's hash changed",
        "the head's bytes not gzip",
    ],
)
def test_a_damaged_save_is_a_cold_start_with_a_warning(
    server: FakeApiServer, api: KubeApi, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    ConfigMapSnapshotStore(make_api(server), NS, max_bytes=PART_BYTES).save(big(1))
    part = f"{HEAD}-a-1"
    if damage == "a part's bytes changed":
        flipped = base64.b64encode(os.urandom(PART_BYTES)).decode()
        server.mutate(
            "ConfigMap", NS, part, lambda cm: cm["binaryData"].update({BINARY_KEY: flipped})
        )
        expected = "whose sha256 is not the head's"
    elif damage == "a part missing":
        server.remove("ConfigMap", NS, part)
        expected = f"{part} (part 2 of 4) is missing"
    elif damage == "a part's tag changed":
        server.mutate("ConfigMap", NS, part, lambda cm: cm["data"].update({"sha256": "0" * 64}))
        expected = f"{part} (part 2 of 4) belongs to another save"
    elif damage == "the head's hash changed":
        server.mutate("ConfigMap", NS, HEAD, lambda cm: cm["data"].update({"sha256": "0" * 64}))
        expected = f"{HEAD}-a-0 (part 1 of 4) belongs to another save"
    else:
        ConfigMapSnapshotStore(make_api(server), NS).save(doc(1))  # in the head
        junk = b"not gzip"

        def not_gzip(cm: dict[str, Any]) -> None:
            cm["binaryData"][BINARY_KEY] = base64.b64encode(junk).decode()
            cm["data"].update({"bytes": str(len(junk)), "sha256": hashlib.sha256(junk).hexdigest()})

        server.mutate("ConfigMap", NS, HEAD, not_gzip)
        expected = "not gzip-compressed"
    store = ConfigMapSnapshotStore(api, NS, max_bytes=PART_BYTES)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.load() is None
    assert "the saved controller state is not loaded (a cold start)" in caplog.text
    assert expected in caplog.text, caplog.text
    assert store.save(doc(2))  # replaces it knowingly
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == doc(2)


def test_an_older_save_in_plain_json_is_read_and_rewritten(
    server: FakeApiServer, api: KubeApi
) -> None:
    """The upgrade: a head with the whole document as JSON in ``data["state.json"]`` loads;
    the first save writes the compressed format, the same document included."""
    server.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": HEAD, "namespace": NS},
            "data": {DATA_KEY: json.dumps(doc(1))},
        }
    )
    store = ConfigMapSnapshotStore(api, NS)
    assert store.load() == doc(1)
    assert store.save(doc(1))
    assert written(server) == [("update", HEAD)]
    head = server.obj("ConfigMap", NS, HEAD)
    assert head is not None and DATA_KEY not in head["data"] and head["data"]["format"] == FORMAT
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == doc(1)


def test_a_memory_over_the_parts_is_not_written_and_says_its_size(
    server: FakeApiServer, api: KubeApi, caplog: pytest.LogCaptureFixture
) -> None:
    store = ConfigMapSnapshotStore(api, NS, max_bytes=PART_BYTES, max_parts=3)
    document = big(1, parts=4)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert not store.save(document)
    assert state_writes(server) == []
    (error,) = caplog.records
    packed = len(
        gzip.compress(
            json.dumps(document, sort_keys=True, separators=(",", ":")).encode(), 6, mtime=0
        )
    )
    assert error.levelno == logging.ERROR
    assert error.getMessage().startswith(f"controller state not saved: {packed} bytes compressed")
    assert "over the 3000 that 3 ConfigMaps of 1000 bytes can hold" in error.getMessage()
    assert store.save(big(2, parts=3))  # at the limit: written


def test_rbac_names_exactly_the_head_and_the_parts() -> None:
    """deploy/base's Role grants get and update on the objects a store may touch, by name:
    the head and the 2 x 8 parts, and nothing else."""
    docs = list(yaml.safe_load_all((REPO / "deploy" / "base" / "rbac.yaml").read_text()))
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == HEAD]
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert [(r["verbs"], r["resourceNames"]) for r in named] == [
        (["get", "update"], list(object_names(HEAD)))
    ]
    assert len(object_names(HEAD)) == 1 + 2 * MAX_PARTS


def test_a_whole_memory_over_one_mib_passes_the_api_servers_limit(
    server: FakeApiServer, api: KubeApi
) -> None:
    """The default limits against the API server's 1 MiB per ConfigMap (the fake checks it
    as the real one does): 2.5 MiB compressed in 3 parts."""
    noise = base64.b64encode(os.urandom(int(2.5 * 1024 * 1024))).decode()
    store = ConfigMapSnapshotStore(api, NS)
    document = {"kind": "test", "noise": noise}
    assert store.save(document)
    head = server.obj("ConfigMap", NS, HEAD)
    assert head is not None and head["data"]["parts"] == "3"
    assert ConfigMapSnapshotStore(make_api(server), NS).load() == document


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
