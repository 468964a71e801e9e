"""sloscale's loop over 1,000 annotated Deployments on a real API server (issue #27): what a
tick asks of the API server, counted by the API server itself (its audit log), and how long
the tick takes.

The control plane is this module's own (``tests.support.kube.ControlPlane`` with an audit
policy that logs every request of sloscale's ServiceAccount and nothing else), so that the
1,000 Deployments neither slow down nor are seen by the other tests. sloscale runs as
``sloscale run --cluster kubernetes`` composes it (``sloscale.run._run_kubernetes``: the
adapter of ``build_cluster`` over every namespace, as deploy/base grants, behind a
``SnapshotTap``; its memory in the state ConfigMap of ``build_snapshot_store``; no election),
as sloscale's ServiceAccount with exactly deploy/base's RBAC. Only the metrics are a test
double (``FakeMetrics``): this test is about the API server's side.

The 1,000 Deployments, in four namespaces, all at a fixed 10 % HAMi slice (replicas only):

- 25 (one in 40) are loaded, their latency twice the target: before the capacity model is
  learnt the planner scales on the latency ratio, 0 -> 1 -> 2 -> 4 (``max-replicas``) over
  the first three ticks, then holds ``AtMax``. Their pods are made (ReplicaSet controller)
  but stay Pending (a node selector no node matches): with every replica ready the capacity
  model would be learnt after a tick or two, depending on when kwok ran each pod, and the
  steps would differ from run to run;
- 10 carry Knative's autoscaler class: another autoscaler's, held ``ConflictingAutoscaler``;
- the other 965 are idle (rate 0) at ``replicas: 0`` with ``min-replicas: 0``: they hold
  (``Learning``) every tick. They have no pods: 1,000 pods would need some 100 fake cards
  and 10 kwok nodes, and the scheduler's, kwok's and the ReplicaSet controller's work on a
  small CI machine would dominate the runtime without changing what sloscale asks of the API
  server (it reads pods, like everything else, from its watch caches).

What it shows: after the initial list + watch, a tick lists nothing, watches nothing and
GETs no Deployment; its writes are a few per workload that changes (scale, decision
annotation, Event) and at most one for the state ConfigMap; a workload that holds writes
nothing and gets no Event, however many ticks (an Event per change, and one Warning when a
conflict hold starts); and a tick of 1,000 workloads takes well under its 15 s interval.
``pytest -s`` prints each tick's requests by verb and resource and its duration.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from actuators.kubernetes import ApiCall, build_cluster, build_snapshot_store, load_api
from actuators.kubernetes.api import DEPLOYMENTS
from actuators.kubernetes.snapshots import BINARY_KEY, FORMAT, MAX_BYTES, part_name
from actuators.prometheus import SnapshotTap
from controller.domain import Reason, SliceDialect, WorkloadMetrics
from controller.loop import Controller, LoopConfig
from controller.persist import decode
from controller.report import TickReport
from tests.fakes import FakeClock, FakeMetrics
from tests.k8s.conftest import deployment, hami_resources
from tests.scenario.test_tick import busy
from tests.support.gotool import REPO
from tests.support.kube import (
    ADMIN,
    CONTROLLER,
    ControlPlane,
    ControlPlaneError,
    eventually,
    require_kube,
)

JsonObj = dict[str, Any]
Key = tuple[str, str]  # (verb, resource[/subresource])

NAMESPACES = tuple(f"scale-{i}" for i in range(4))
PER_NAMESPACE = 250
LOADED_EVERY = 40  # 25 loaded workloads
CONFLICTED_EVERY = 100  # 10 with another autoscaler (offset by one from the loaded)
MAX_REPLICAS = 4
SCALE_UPS = 3  # 0 -> 1 -> 2 -> 4
TICKS = 8
INTERVAL_S = 15.0
STATE_NAMESPACE = "sloscale"  # deploy/base's; the state ConfigMap is its sloscale-state
STATE_NAME = "sloscale-state"
STATE = f"/api/v1/namespaces/{STATE_NAMESPACE}/configmaps/{STATE_NAME}"
AGENT = "sloscale/sloscale"  # the User-Agent of load_api's client

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "users": [CONTROLLER]}, {"level": "None"}],
}
MARKER_AGENT = "Python-urllib"  # ControlPlane.request's User-Agent; sloscale's is sloscale/...


class AuditedControlPlane(ControlPlane):
    """A control plane whose API server logs every request of sloscale's ServiceAccount
    (``AUDIT_POLICY``), each written before its answer is sent (``blocking``), and whose
    controller manager keeps up with 1,000 Deployments."""

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    def _spawn(self, name: str, *args: str) -> None:
        if name == "kube-apiserver":
            policy = self.workdir / "audit-policy.json"
            policy.write_text(json.dumps(AUDIT_POLICY))
            args = (
                *args,
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
            )
        if name == "kube-controller-manager":
            # its client's default, 20 requests/s, would take 100 s to give 1,000 new
            # Deployments their ReplicaSet and status
            args = (*args, "--kube-api-qps=1000", "--kube-api-burst=1000")
        super()._spawn(name, *args)


@dataclass(frozen=True, slots=True)
class Request:
    """One request of sloscale's ServiceAccount, as the API server's audit log has it."""

    verb: str
    resource: str  # "deployments/scale"
    namespace: str
    name: str
    code: int
    agent: str
    server_s: float = field(default=0.0, compare=False)  # received to answered, on the server

    @property
    def key(self) -> Key:
        return (self.verb, self.resource)


class AuditLog:
    """The audit log, read on from where it was last read."""

    def __init__(self, kube: AuditedControlPlane) -> None:
        self.kube = kube
        self.offset = 0

    def _read(self) -> list[Request]:
        path = self.kube.audit_log
        if not path.exists():
            return []
        with path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line being written is read the next time
        self.offset += end
        out = []
        for line in data[:end].splitlines():
            event = json.loads(line)
            # each request once: when it was answered, or a watch when it began streaming
            if event["stage"] != (
                "ResponseStarted" if event["verb"] == "watch" else "ResponseComplete"
            ):
                continue
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "")
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            status = event.get("responseStatus") or {}
            out.append(
                Request(
                    event["verb"],
                    resource,
                    ref.get("namespace", ""),
                    ref.get("name", ""),
                    int(status.get("code", 0)),
                    event.get("userAgent", ""),
                    _seconds(event["stageTimestamp"]) - _seconds(event["requestReceivedTimestamp"]),
                )
            )
        return out

    def since_last(self, at_least: int = 0) -> list[Request]:
        """sloscale's requests since the last call: those answered before this call, as a
        request in sloscale's name made now comes after them in the log (a marker, left
        out), and at least ``at_least`` of them (as many as sloscale's client made: an
        answer may reach the client a moment before its line is written)."""
        with contextlib.suppress(ControlPlaneError):  # 404 before the first save: logged too
            self.kube.request("GET", STATE, user=CONTROLLER)
        seen: list[Request] = []

        def logged() -> bool:
            seen.extend(self._read())
            marked = [r for r in seen if r.agent.startswith(MARKER_AGENT)]
            return bool(marked) and len(seen) - len(marked) >= at_least

        eventually("the marker request in the audit log", logged, 10)
        return [r for r in seen if not r.agent.startswith(MARKER_AGENT)]


def _seconds(rfc3339: str) -> float:
    """Seconds since the epoch of an audit timestamp (``2026-01-02T03:04:05.678901Z``)."""
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class SavedState:
    """The saved memory as the API server holds it (the head and its parts, read as the
    admin)."""

    text: str  # the document, JSON
    gzip_bytes: int  # as saved, compressed
    parts: int  # the ConfigMaps beside the head it takes (0: in the head)


def saved_state(kube: ControlPlane) -> SavedState:
    data = kube.request("GET", STATE)
    head = data["data"]
    assert head["format"] == FORMAT, head
    parts = int(head["parts"])
    if parts:
        path = STATE.rsplit("/", 1)[0]
        chunks = [
            kube.request("GET", f"{path}/{part_name(STATE_NAME, head['set'], i)}")
            for i in range(parts)
        ]
    else:
        chunks = [data]
    packed = b"".join(base64.b64decode(c["binaryData"][BINARY_KEY]) for c in chunks)
    assert hashlib.sha256(packed).hexdigest() == head["sha256"]
    return SavedState(gzip.decompress(packed).decode(), len(packed), parts)


@dataclass
class Tick:
    report: TickReport
    seconds: float
    requests: list[Request]
    calls: list[ApiCall]  # the same, as sloscale's KubeApi recorded them
    state: SavedState  # the state ConfigMaps after the tick

    @property
    def by_key(self) -> Counter[Key]:
        return Counter(r.key for r in self.requests)

    @property
    def scaled(self) -> int:
        return sum(1 for r in self.report.results if r.ok and r.message.startswith("set "))


@dataclass
class Run:
    kube: AuditedControlPlane
    loaded: frozenset[str]
    conflicted: frozenset[str]
    sync: list[Request]
    ticks: list[Tick] = field(default_factory=list)
    created_s: float = 0.0
    settled_s: float = 0.0
    total_s: float = 0.0


def workload(name: str, namespace: str, *, conflicted: bool) -> JsonObj:
    """At a fixed 10 % slice (``slice-min`` = ``slice-max``: replicas only), none yet."""
    annotations = {
        "sloscale.io/latency-target-ms": "200",
        "sloscale.io/min-replicas": "0",
        "sloscale.io/max-replicas": str(MAX_REPLICAS),
        "sloscale.io/slice-min": "10",
        "sloscale.io/slice-max": "10",
    }
    if conflicted:
        annotations["autoscaling.knative.dev/class"] = "kpa.autoscaling.knative.dev"
    manifest = deployment(
        name, namespace, replicas=0, resources=hami_resources(10, 8192), annotations=annotations
    )
    del manifest["status"]  # the Deployment controller's to write
    # no node has this label: the pods stay Pending, so the capacity model (learnt only
    # when every replica is ready) is never learnt and the loaded workloads scale on the
    # latency ratio, the same steps on every run, whenever kwok would have run their pods
    manifest["spec"]["template"]["spec"]["nodeSelector"] = {"sloscale.io/test-pool": "none"}
    return manifest


def metrics(loaded: bool) -> WorkloadMetrics:
    if loaded:  # latency twice the 200 ms target: scale on the ratio
        return busy(60.0, 1, 10, latency_ms=400.0)
    return WorkloadMetrics(request_rate_rps=0.0, gpu_util=0.0, gpu_busy=0.0)  # idle


def settled(kube: ControlPlane, namespace: str) -> bool:
    """Every Deployment of ``namespace`` seen by the Deployment controller."""
    items = kube.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments")["items"]
    return len(items) == PER_NAMESPACE and all(
        d.get("status", {}).get("observedGeneration") == d["metadata"]["generation"] for d in items
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """1,000 Deployments, then ``TICKS`` ticks of the loop, each one's requests counted."""
    started = time.monotonic()
    workdir = tmp_path_factory.mktemp("kube-scale")
    with AuditedControlPlane(require_kube(), workdir) as kube:
        yield _run(kube, started)


def _run(kube: AuditedControlPlane, started: float) -> Run:
    base = REPO / "deploy" / "base"
    kube.kubectl("apply", "-f", str(base / "namespace.yaml"), "-f", str(base / "rbac.yaml"))
    for ns in NAMESPACES:
        kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    names = [(ns, f"w-{i:03d}") for ns in NAMESPACES for i in range(PER_NAMESPACE)]
    keys = [f"{ns}/{n}" for ns, n in names]
    run = Run(
        kube,
        loaded=frozenset(k for i, k in enumerate(keys) if i % LOADED_EVERY == 0),
        conflicted=frozenset(k for i, k in enumerate(keys) if i % CONFLICTED_EVERY == 1),
        sync=[],
    )
    admin = load_api(str(kube.kubeconfig(ADMIN)))
    try:
        with ThreadPoolExecutor(8) as pool:
            manifests = [
                workload(n, ns, conflicted=f"{ns}/{n}" in run.conflicted) for ns, n in names
            ]
            list(
                pool.map(
                    lambda m: admin.create(DEPLOYMENTS, m, m["metadata"]["namespace"]), manifests
                )
            )
    finally:
        admin.close()
    run.created_s = time.monotonic() - started
    for ns in NAMESPACES:
        eventually(
            f"the Deployment controller's status on {ns}'s", partial(settled, kube, ns), 60, 0.5
        )
    run.settled_s = time.monotonic() - started

    audit = AuditLog(kube)
    calls: list[ApiCall] = []
    api = load_api(str(kube.kubeconfig(CONTROLLER)), recorder=calls.append)
    cluster = build_cluster(None, None, None, False, api=api)  # every namespace
    try:
        assert cluster.wait_synced(60)
        watched = {"deployments", "jobs", "pods", "nodes", "horizontalpodautoscalers"}

        def watching() -> bool:
            run.sync += audit.since_last()
            return {r.resource for r in run.sync if r.verb == "watch"} >= watched

        eventually("every discovery watch open", watching, 30, 0.2)
        store = build_snapshot_store(api, namespace=STATE_NAMESPACE)
        clock = FakeClock(time.time())
        loop = LoopConfig(
            interval_s=INTERVAL_S,
            default_dialect=SliceDialect.HAMI,
            critical_namespaces=frozenset(),
        )
        fake = FakeMetrics({k: metrics(k in run.loaded) for k in keys})
        controller = Controller(SnapshotTap(cluster), fake, clock, loop, snapshots=store)
        for _ in range(TICKS):
            clock.advance(INTERVAL_S)
            calls.clear()
            start = time.monotonic()
            report = controller.tick()
            seconds = time.monotonic() - start
            requests = audit.since_last(len(calls))
            saved = saved_state(kube)
            run.ticks.append(Tick(report, seconds, requests, list(calls), saved))
    finally:
        cluster.close()
    run.total_s = time.monotonic() - started
    _print(run)
    return run


def _print(run: Run) -> None:
    print(f"\n1,000 Deployments created {run.created_s:.1f} s after the start, settled (the")
    print(f"Deployment controller's status on each) after {run.settled_s:.1f} s")
    print("initial sync:", dict(Counter(r.key for r in run.sync)))
    keys = sorted({k for t in run.ticks for k in t.by_key})
    header = "".join(f"{i:>6}" for i in range(len(run.ticks)))
    print(f"{'tick':<30}{header}")
    for verb, resource in keys:
        counts = "".join(f"{t.by_key[(verb, resource)]:>6}" for t in run.ticks)
        print(f"{verb + ' ' + resource:<30}{counts}")
    print(f"{'scaled':<30}" + "".join(f"{t.scaled:>6}" for t in run.ticks))
    print(f"{'seconds':<30}" + "".join(f"{t.seconds:>6.2f}" for t in run.ticks))
    server = "".join(f"{sum(r.server_s for r in t.requests):>6.2f}" for t in run.ticks)
    print(f"{'  the requests, on the server':<30}{server}")
    for phase in ("discover", "plan", "act", "record"):
        cells = "".join(f"{t.report.phase_s[phase]:>6.2f}" for t in run.ticks)
        print(f"{'  of which ' + phase:<30}{cells}")
    state_kb = "".join(f"{len(t.state.text) / 1000:>6.0f}" for t in run.ticks)
    print(f"{'state, JSON KB':<30}{state_kb}")
    gzipped = "".join(f"{t.state.gzip_bytes / 1000:>6.0f}" for t in run.ticks)
    print(f"{'  saved gzipped, KB':<30}{gzipped}")
    print(f"{'  in parts beside the head':<30}" + "".join(f"{t.state.parts:>6}" for t in run.ticks))
    print(f"whole run: {run.total_s:.1f} s")


def sloscale_events(kube: ControlPlane) -> list[JsonObj]:
    return [
        e
        for ns in NAMESPACES
        for e in kube.request("GET", f"/api/v1/namespaces/{ns}/events")["items"]
        if e.get("reportingComponent") == "sloscale.io/controller"
    ]


# ---- the tests -------------------------------------------------------------------------------

WRITES = {"create", "update", "patch", "delete"}


def test_the_scenario_is_what_it_says(run: Run) -> None:
    """The loaded workloads scale up three ticks running, then hold at their maximum; the
    conflicted and the idle ones hold all along."""
    for i, tick in enumerate(run.ticks):
        assert not tick.report.errors, tick.report.errors
        reasons = {d.target: d.reason for d in tick.report.decisions}
        assert len(reasons) == len(NAMESPACES) * PER_NAMESPACE
        loaded = Reason.SCALE_UP if i < SCALE_UPS else Reason.AT_MAX
        assert {reasons[k] for k in run.loaded} == {loaded}, i
        assert {reasons[k] for k in run.conflicted} == {Reason.CONFLICTING_AUTOSCALER}, i
        idle = set(reasons) - run.loaded - run.conflicted
        assert {reasons[k] for k in idle} == {Reason.LEARNING}, i
        assert tick.scaled == (len(run.loaded) if i < SCALE_UPS else 0), i
    live = run.kube.request("GET", f"/apis/apps/v1/namespaces/{NAMESPACES[0]}/deployments/w-000")
    assert live["spec"]["replicas"] == MAX_REPLICAS


def test_after_the_initial_sync_no_tick_lists_watches_or_reads_a_deployment(run: Run) -> None:
    """Discovery is one list and one watch per resource, before the first tick; the ticks
    read the watch caches: no list, no watch, no GET of any Deployment (or pod), the first
    tick's read of the state ConfigMap (the memory of a predecessor) apart."""
    assert Counter(r.verb for r in run.sync) == {"list": 6, "watch": 5}, run.sync
    for i, tick in enumerate(run.ticks):
        reads = [r for r in tick.requests if r.verb not in WRITES]
        expected = [("get", "configmaps")] if i == 0 else []
        assert [r.key for r in reads] == expected, (i, reads)


def test_a_tick_writes_a_few_requests_per_workload_that_changes_and_none_per_hold(
    run: Run,
) -> None:
    """Per scale: the scale subresource, the decision annotation, an Event; per new
    conflict hold: one Warning Event; and the state ConfigMap when the memory changed. A
    workload that holds costs nothing, so a tick's writes are O(changes), not O(1,000)."""
    changed = len(run.loaded)
    first, steady = run.ticks[0], run.ticks[1]
    assert first.by_key == {
        ("get", "configmaps"): 1,  # the predecessor's memory: none
        ("patch", "deployments/scale"): changed,
        ("patch", "deployments"): changed,  # sloscale.io/last-decision
        ("create", "events"): changed + len(run.conflicted),
        ("create", "configmaps"): 1,
    }
    assert steady.by_key == {
        ("patch", "deployments/scale"): changed,
        ("patch", "deployments"): changed,
        ("create", "events"): changed,
        ("update", "configmaps"): 1,
    }
    for i, tick in enumerate(run.ticks[SCALE_UPS:], SCALE_UPS):  # every workload holds
        assert set(tick.by_key) <= {("update", "configmaps")}, (i, tick.by_key)
        assert tick.by_key[("update", "configmaps")] <= 1
    for tick in run.ticks:
        failed = [r for r in tick.requests if not 200 <= r.code < 300]
        assert failed in (
            [],
            [Request("get", "configmaps", STATE_NAMESPACE, STATE_NAME, 404, AGENT)],
        )
        writes = sum(1 for r in tick.requests if r.verb in WRITES)
        assert writes <= 3 * tick.scaled + len(run.conflicted) + 1


def test_the_api_server_saw_what_sloscale_recorded(run: Run) -> None:
    """The server's count of each tick is the client's (``KubeApi``'s recorder): nothing
    sloscale sends escapes the recorder the RBAC test relies on, and nothing else is sent
    in sloscale's name."""
    for i, tick in enumerate(run.ticks):
        assert tick.by_key == Counter((c.verb, c.resource) for c in tick.calls), i


def test_a_workload_that_holds_gets_no_event_however_many_ticks(run: Run) -> None:
    """An Event per change (each scale-up of a loaded workload), one Warning when a
    conflict hold starts, and none for holding: after 8 ticks of 1,000 workloads, 85 Events,
    not 8,000."""
    events = sloscale_events(run.kube)
    per_workload = Counter(
        f"{e['involvedObject']['namespace']}/{e['involvedObject']['name']}" for e in events
    )
    assert {k: per_workload[k] for k in run.loaded} == {k: SCALE_UPS for k in run.loaded}
    assert {k: per_workload[k] for k in run.conflicted} == {k: 1 for k in run.conflicted}
    assert set(per_workload) == run.loaded | run.conflicted
    warnings = [e for e in events if e["type"] == "Warning"]
    assert {e["reason"] for e in warnings} == {"ConflictingAutoscaler"}
    assert len(events) == SCALE_UPS * len(run.loaded) + len(run.conflicted)
    assert all(e["count"] == 1 for e in events)


def test_a_tick_of_1000_workloads_takes_a_fraction_of_its_interval(run: Run) -> None:
    slowest = max(t.seconds for t in run.ticks)
    assert slowest < INTERVAL_S / 2, [round(t.seconds, 2) for t in run.ticks]


def test_the_memory_of_1000_workloads_is_kept(run: Run) -> None:
    """After each tick the saved state holds the memory of that tick: each workload's
    short-term rates, one per tick (none for those another autoscaler scales: sloscale does
    not observe them). As one ConfigMap of JSON it held 5 ticks: 669 KB after the first, 50 KB
    more each tick, over its 900 KiB by the 6th. Gzipped, it is one object, every tick."""
    for i, tick in enumerate(run.ticks, 1):
        saved = decode(json.loads(tick.state.text))
        assert saved is not None and len(saved.workloads) == len(NAMESPACES) * PER_NAMESPACE
        rates = {k: len(w.recent_rates) for k, w in saved.workloads.items()}
        assert {rates[k] for k in rates if k not in run.conflicted} == {i}, i
        assert {rates[k] for k in run.conflicted} == {0}, i
    last = run.ticks[-1].state
    assert len(last.text) > MAX_BYTES  # what one ConfigMap of JSON could not hold
    assert last.gzip_bytes < MAX_BYTES and last.parts == 0  # one write per tick
    api = load_api(str(run.kube.kubeconfig(CONTROLLER)))
    try:  # the next controller reads it whole
        assert build_snapshot_store(api, namespace=STATE_NAMESPACE).load() == json.loads(last.text)
    finally:
        api.close()


def test_a_memory_of_several_parts_passes_the_real_api_servers_limits(run: Run) -> None:
    """At the default sizes (900 KiB compressed per object, as base64 in binaryData), a
    memory of 2.5 MiB that does not compress is saved in 3 parts beside the head, within the
    real server's 1 MiB per ConfigMap and etcd's request size, as sloscale's ServiceAccount
    with deploy/base's RBAC; the next controller reads it whole, and the save after it goes
    to the other set."""
    noise = base64.b64encode(os.urandom(int(2.5 * 1024 * 1024))).decode()
    document = {"kind": "test", "noise": noise}
    api = load_api(str(run.kube.kubeconfig(CONTROLLER)))
    try:
        store = build_snapshot_store(api, namespace=STATE_NAMESPACE)
        assert store.load() is not None  # the run's: set none (in the head)
        assert store.save(document)
        head = run.kube.request("GET", STATE)["data"]
        assert (head["parts"], head["set"]) == ("3", "a")
        assert build_snapshot_store(api, namespace=STATE_NAMESPACE).load() == document
        again = {**document, "n": 2}
        assert store.save(again)
        assert run.kube.request("GET", STATE)["data"]["set"] == "b"
        assert build_snapshot_store(api, namespace=STATE_NAMESPACE).load() == again
    finally:
        api.close()
