"""Leader election of two ``sloscale run --leader-elect`` processes on a real control plane
(``tests.support.kube``), where ``test_leader.py`` runs the elector against the fake API server
(issue #27).

Two real CLI processes, each a replica of the controller (its own ``POD_NAME``: the Lease's
holder identity and its Events' ``reportingInstance``), run as sloscale's ServiceAccount with
exactly the RBAC of ``deploy/base``, reading a real Prometheus that has no data (``run`` offers
no other metrics source on Kubernetes): every workload is held, but suspended preemptible Jobs
that fit are resumed, which needs no metrics, so each replica always has a write to make while
such a Job waits. The test checks that

- exactly one leads: the ``coordination.k8s.io`` Lease names it, each replica's ``/metrics``
  says which one it is, and only the leader resumes a Job;
- after the leader is killed (SIGKILL: no release), the other takes the Lease over one lease
  duration after the last renewal (within two retry periods more: when it sees the renewal,
  when it tries again), and in the meantime, as the only replica running, writes nothing
  although it has a Job to resume (the Job, the managed Deployment and the state ConfigMap
  are as they were); then, leading, it resumes that Job;
- a replica stopped with SIGINT releases the Lease.

The CLI has no flag for the Lease's timing: these are its defaults (15 s lease, 2 s retry), so
this test takes about 25 s.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.conftest import deployment, hami_resources
from tests.support.gotool import REPO
from tests.support.kube import (
    CONTROLLER,
    ControlPlane,
    ControlPlaneError,
    LoggedProcess,
    eventually,
)
from tests.support.prometheus import PrometheusServer, require_prometheus

JsonObj = dict[str, Any]

NAMESPACE = "leader-election"
CONTROLLER_NAMESPACE = "sloscale"  # deploy/base: the Lease and the state ConfigMap live there
LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{CONTROLLER_NAMESPACE}/leases/sloscale-leader"
STATE = f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/configmaps/sloscale-state"
LEASE_DURATION_S, RETRY_PERIOD_S = 15.0, 2.0  # build_leader_elector's defaults
LOW = {"sloscale.io/preemptible": "true", "sloscale.io/priority": "low"}


def _written_by_sloscale(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What sloscale has written to an object: its spec generation, its annotations and its
    field manager's entries (with their times), which move with any write of sloscale's."""
    meta = obj["metadata"]
    entries = [
        (f.get("operation"), f.get("subresource"), f.get("time"))
        for f in meta.get("managedFields") or []
        if f.get("manager") == "sloscale"
    ]
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if "sloscale.io/" in k}
    return meta.get("generation"), sorted(notes.items()), sorted(map(str, entries))


class Replica(LoggedProcess):
    """One ``sloscale run --leader-elect`` process."""

    def port(self) -> int | None:
        found = re.search(rb"API on http://127\.0\.0\.1:(\d+)", self.log_path.read_bytes())
        return int(found.group(1)) if found else None

    def leading(self) -> bool | None:
        """What its ``/metrics`` say (``sloscale_leader``); ``None`` before it serves them."""
        port = self.port()
        if port is None:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        found = re.search(r"^sloscale_leader (\S+)$", text, re.MULTILINE)
        return None if found is None else float(found.group(1)) == 1.0


@pytest.fixture(scope="module")
def cluster_with_rbac(kube: ControlPlane) -> ControlPlane:
    """sloscale's namespace and RBAC from ``deploy/base``, unchanged, the namespace of the
    workloads, and no Lease or saved state left by anyone before."""
    base = REPO / "deploy" / "base"
    kube.kubectl("apply", "-f", str(base / "namespace.yaml"), "-f", str(base / "rbac.yaml"))
    kube.create_namespace(NAMESPACE)
    for path in (LEASE, STATE):
        _delete(kube, path)
    return kube


def _delete(kube: ControlPlane, path: str) -> None:
    try:
        kube.request("DELETE", path)
    except ControlPlaneError as e:
        if " 404 " not in str(e):
            raise


def _get(kube: ControlPlane, path: str) -> JsonObj | None:
    try:
        return kube.request("GET", path)
    except ControlPlaneError as e:
        if " 404 " in str(e):
            return None
        raise


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    with PrometheusServer(require_prometheus(), tmp_path / "prometheus") as prom:
        yield prom


def start_replica(
    kube: ControlPlane, prometheus: PrometheusServer, name: str, workdir: Path
) -> Replica:
    """``sloscale run --leader-elect`` as sloscale's ServiceAccount, this worktree's code."""
    log_path = workdir / f"{name}.log"
    log = log_path.open("ab")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "POD_NAME": name,
        "POD_NAMESPACE": CONTROLLER_NAMESPACE,
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    popen = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sloscale.cli",
            "run",
            "--cluster=kubernetes",
            f"--kubeconfig={kube.kubeconfig(CONTROLLER)}",
            f"--namespaces={NAMESPACE}",
            f"--prometheus-url={prometheus.url}",
            "--leader-elect",
            "--interval=0.5",
            "--query-timeout=1",
            "--port=0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        env=env,
    )
    return Replica(name, popen, log_path, log)


def suspended_job(name: str) -> JsonObj:
    """A preemptible Job held suspended (as after a preemption): a replica that leads resumes
    it, since it fits; its pods then run and complete at once (kwok)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE, "annotations": dict(LOW)},
        "spec": {
            "suspend": True,
            "parallelism": 1,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "train", "image": "x", "resources": hami_resources(20, 8192)}
                    ],
                }
            },
        },
    }


def _job(kube: ControlPlane, name: str) -> JsonObj:
    return kube.request("GET", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{name}")


def _sloscale_events(kube: ControlPlane) -> list[JsonObj]:
    items = kube.request("GET", f"/api/v1/namespaces/{NAMESPACE}/events")["items"]
    return [e for e in items if e.get("reportingComponent") == "sloscale.io/controller"]


def _events_of(kube: ControlPlane, name: str) -> list[tuple[str, str]]:
    """sloscale's Events on ``name``: reason and the replica that wrote it."""
    return [
        (e["reason"], e["reportingInstance"])
        for e in _sloscale_events(kube)
        if e["involvedObject"]["name"] == name
    ]


def _micro(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_one_replica_leads_the_other_takes_over_when_it_is_killed_and_never_writes_before(
    cluster_with_rbac: ControlPlane, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    kube = cluster_with_rbac
    web = deployment("web", NAMESPACE, replicas=1, resources=hami_resources(50, 20480))
    del web["status"]
    kube.request("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", web)
    web_path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/web"
    eventually("web ready", lambda: kube.request("GET", web_path)["status"].get("readyReplicas"))

    replicas = {
        n: start_replica(kube, prometheus, n, tmp_path) for n in ("sloscale-a", "sloscale-b")
    }
    try:
        _check(kube, replicas, web_path)
    except BaseException:
        print("\n".join(r.tail() for r in replicas.values()))
        raise
    finally:
        for r in replicas.values():
            r.stop(signal.SIGKILL)
        for path in (LEASE, STATE):
            _delete(kube, path)


def _check(kube: ControlPlane, replicas: dict[str, Replica], web_path: str) -> None:
    # exactly one leads: the Lease names it, and each replica knows which it is
    lease = eventually(
        "a Lease held", lambda: (x := _get(kube, LEASE)) and x["spec"].get("holderIdentity") and x
    )
    leader = replicas[lease["spec"]["holderIdentity"]]
    (follower,) = [r for r in replicas.values() if r is not leader]
    eventually(
        "each replica's /metrics say whether it leads",
        lambda: (leader.leading(), follower.leading()) == (True, False),
    )
    assert leader.alive() and follower.alive()

    # the leader resumes a suspended Job; the follower, seeing it too, writes nothing
    kube.request("POST", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs", suspended_job("first"))
    eventually(
        "the leader resumes Job first", lambda: _job(kube, "first")["spec"]["suspend"] is False
    )
    # its Event comes right after the write
    resumed = eventually("the leader's Event", lambda: _events_of(kube, "first"))
    assert resumed == [("Resumed", leader.name)]
    eventually("the leader saved its memory", lambda: _get(kube, STATE))

    # kill the leader (no release); from now on only the follower runs, and a Job waits
    leader.popen.send_signal(signal.SIGKILL)
    leader.popen.wait(timeout=10)
    killed_at = time.time()
    lease = kube.request("GET", LEASE)  # its last renewal
    web_written = _written_by_sloscale(kube.request("GET", web_path))
    state = kube.request("GET", STATE)
    kube.request("POST", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs", suspended_job("second"))
    polls = 0
    while True:
        second = _job(kube, "second")  # read first: the Lease read after still names the
        holder = kube.request("GET", LEASE)["spec"]["holderIdentity"]  # old leader, so this
        if holder != leader.name:  # was before the follower could take over
            break
        polls += 1
        assert second["spec"]["suspend"] is True, "the follower resumed a Job before it led"
        managers = {f["manager"] for f in second["metadata"].get("managedFields") or []}
        assert "sloscale" not in managers, second["metadata"]["managedFields"]
        # not its resourceVersion: the Deployment controller may still write its status
        assert _written_by_sloscale(kube.request("GET", web_path)) == web_written
        assert (
            kube.request("GET", STATE)["metadata"]["resourceVersion"]
            == (state["metadata"]["resourceVersion"])
        )
        assert time.time() - killed_at < LEASE_DURATION_S + 2 * RETRY_PERIOD_S + 30, "no takeover"
        assert follower.alive(), follower.tail()
        time.sleep(0.2)
    took_over_s = time.time() - killed_at
    assert polls > 10  # the follower-only stretch was watched, not skipped

    # the follower took over a lease duration after the last renewal it saw: it sees a
    # renewal at its next retry at the latest, and takes over at the retry after the duration
    taken = kube.request("GET", LEASE)["spec"]
    assert taken["holderIdentity"] == follower.name
    assert taken["leaseTransitions"] == lease["spec"]["leaseTransitions"] + 1
    since_renewal_s = _micro(taken["acquireTime"]) - _micro(lease["spec"]["renewTime"])
    # never before the lease expired (the safety); the upper bound has room for a loaded CI
    # machine, whose processes answer late (a tick there can take seconds)
    latest_s = LEASE_DURATION_S + 2 * RETRY_PERIOD_S + 10.0
    assert LEASE_DURATION_S <= since_renewal_s <= latest_s, since_renewal_s
    assert took_over_s <= latest_s, took_over_s
    eventually("the new leader's /metrics say it leads", follower.leading)

    # leading, it makes the write it had waited for
    eventually(
        "the new leader resumes Job second",
        lambda: _job(kube, "second")["spec"]["suspend"] is False,
    )
    second = _job(kube, "second")
    decided = json.loads(second["metadata"]["annotations"]["sloscale.io/last-decision"])
    assert decided["reason"] == "Resumed" and _micro(decided["time"]) >= _micro(
        taken["acquireTime"]
    )
    assert eventually("its Event", lambda: _events_of(kube, "second")) == [
        ("Resumed", follower.name)
    ]
    by = [(e["involvedObject"]["name"], e["reportingInstance"]) for e in _sloscale_events(kube)]
    assert sorted(by) == [("first", leader.name), ("second", follower.name)], by  # no other

    # stopped gracefully, it gives the Lease up for the next one
    follower.stop(signal.SIGINT)
    assert follower.popen.returncode == 0, follower.tail()
    assert kube.request("GET", LEASE)["spec"].get("holderIdentity") in ("", None)
