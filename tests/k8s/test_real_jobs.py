"""Preemption and retraining through the Kubernetes adapter on a real control plane
(``tests.support.kube``), where ``test_actuation.py`` checks the same writes against the fake API
server (issue #27).

What only a real cluster says:

- that suspending a Job (``spec.suspend``) is what makes the Job controller delete its pods,
  and resuming it what makes it create new ones, which the scheduler binds and kwok runs;
- that the Eviction API deletes a bare pod, and refuses with 429 while a PodDisruptionBudget,
  whose status the disruption controller computes, allows no disruption;
- that the real loop (``Controller``, only its metrics source a double: the sample count)
  creates a retraining Job from a CronJob's template, as the real defaulting and validation
  take it, exactly once across controller restarts (one between the watermark write and the
  create, one after the create): the API answers a second create of the recorded name with
  409 ``AlreadyExists``, which the adapter takes as done; and that a replica whose ticks were
  in shadow mode (a follower) starts the retraining once it leads.

The adapter runs as sloscale's ServiceAccount with exactly the RBAC of ``deploy/base``.

kwok's Stages complete a Job's pods as soon as they run (``pod-complete``): every Job here would
finish before it could be preempted. So this module starts a second kwok for one node of its
own, ``train-1``, with the same Stages but that one: its pods run until deleted, as training
does. The node is tainted, so only the pods here, which tolerate it, land on it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import yaml

from actuators.kubernetes import KubernetesCluster, KubernetesOptions, Scope, load_api
from controller.domain import (
    ApplyResult,
    JobAction,
    JobPhase,
    Plan,
    Reason,
    RetrainAction,
    WorkloadMetrics,
    WorkloadRef,
)
from controller.loop import Controller, LoopConfig
from controller.report import TickReport
from controller.retrain import RetrainState, Watermark
from tests.fakes import FakeMetrics
from tests.k8s.conftest import deployment, hami_resources
from tests.support.gotool import REPO
from tests.support.kube import (
    CONTROLLER,
    STAGES,
    ControlPlane,
    ControlPlaneError,
    FakeNode,
    eventually,
    free_port,
)

JsonObj = dict[str, Any]

NAMESPACE = "jobs"
TRAINING_NODE = "train-1"
TRAINING_TAINT = {"key": "sloscale.io/test-training", "value": "true", "effect": "NoSchedule"}
LOW = {"sloscale.io/preemptible": "true", "sloscale.io/priority": "low"}
LAST_DECISION = "sloscale.io/last-decision"


# ---- the cluster ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_with_rbac(kube: ControlPlane) -> ControlPlane:
    """sloscale's namespace and RBAC from ``deploy/base``, unchanged, and the namespace here."""
    base = REPO / "deploy" / "base"
    kube.kubectl("apply", "-f", str(base / "namespace.yaml"), "-f", str(base / "rbac.yaml"))
    kube.create_namespace(NAMESPACE)
    return kube


@pytest.fixture(scope="module")
def training_node(
    cluster_with_rbac: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``train-1``, kept Ready by a kwok of its own whose pods run until they are deleted."""
    kube = cluster_with_rbac
    workdir = tmp_path_factory.mktemp("kwok-training")
    stages = [
        s
        for s in yaml.safe_load_all((kube.binaries / STAGES).read_text())
        if s and s["metadata"]["name"] != "pod-complete"
    ]
    assert {s["metadata"]["name"] for s in stages} >= {"pod-ready", "pod-delete"}
    config = workdir / "stages.yaml"
    config.write_text(yaml.safe_dump_all(stages))
    log = (workdir / "kwok.log").open("ab")
    kwok = subprocess.Popen(
        [
            str(kube.binaries / "kwok"),
            f"--kubeconfig={kube.kubeconfig('kwok')}",
            f"--config={config}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=training",
            f"--server-address=127.0.0.1:{free_port()}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=workdir,
    )
    node = FakeNode(TRAINING_NODE, annotations={"kwok.x-k8s.io/node": "training"}).manifest()
    node["spec"] = {"taints": [TRAINING_TAINT]}
    try:
        kube.request("POST", "/api/v1/nodes", node)
        eventually(
            f"node {TRAINING_NODE} Ready (its kwok: {workdir / 'kwok.log'})",
            lambda: _ready(kube.request("GET", f"/api/v1/nodes/{TRAINING_NODE}")),
        )
        yield TRAINING_NODE
    finally:
        # the pods here go first, while their kwok still deletes them, then the node
        kube.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}")
        try:
            eventually("no pod left on the training node", lambda: not _pods_on(kube), 20)
        finally:
            kube.request("DELETE", f"/api/v1/nodes/{TRAINING_NODE}")
            kwok.terminate()
            try:
                kwok.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kwok.kill()
                kwok.wait(timeout=10)
            log.close()


def _ready(obj: JsonObj) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _pods_on(kube: ControlPlane) -> list[JsonObj]:
    selector = f"spec.nodeName%3D{TRAINING_NODE}"
    items: list[JsonObj] = kube.request("GET", f"/api/v1/pods?fieldSelector={selector}")["items"]
    return items


def _adapter(kube: ControlPlane) -> KubernetesCluster:
    """The adapter as sloscale runs in the cluster (its ServiceAccount), synced."""
    api = load_api(str(kube.kubeconfig(CONTROLLER)))
    options = KubernetesOptions(scope=Scope.of(NAMESPACE), watch_timeout_s=30, sync_timeout_s=30)
    adapter = KubernetesCluster(api, options).start()
    assert adapter.wait_synced(30)
    return adapter


@pytest.fixture
def adapter(cluster_with_rbac: ControlPlane, training_node: str) -> Iterator[KubernetesCluster]:
    a = _adapter(cluster_with_rbac)
    try:
        yield a
    finally:
        a.close()


# ---- objects ----------------------------------------------------------------------------------


def training_pod_spec(pct: int = 30, mib: int = 10240) -> JsonObj:
    """A pod that runs on the training node (and only there) until it is deleted."""
    return {
        "restartPolicy": "Never",
        "nodeSelector": {"kubernetes.io/hostname": TRAINING_NODE},
        "tolerations": [{**TRAINING_TAINT, "operator": "Equal"}],
        "containers": [
            {"name": "train", "image": "trainer", "resources": hami_resources(pct, mib)}
        ],
    }


def training_job(name: str, parallelism: int) -> JsonObj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE, "annotations": dict(LOW)},
        "spec": {
            "parallelism": parallelism,
            "completions": parallelism,
            "template": {"spec": training_pod_spec()},
        },
    }


def bare_pod(name: str, app: str) -> JsonObj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app": app},
            "annotations": LOW,
        },
        "spec": {
            "containers": [{"name": "main", "image": "x", "resources": hami_resources(20, 8192)}]
        },
    }


def _get(kube: ControlPlane, path: str) -> JsonObj | None:
    """The object at ``path`` under the namespace's API, or ``None`` when it is gone."""
    try:
        return kube.request("GET", path)
    except ControlPlaneError as e:
        if " 404 " in str(e):
            return None
        raise


def _job(kube: ControlPlane, name: str) -> JsonObj:
    return kube.request("GET", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{name}")


def _job_pods(kube: ControlPlane, job: str) -> list[JsonObj]:
    selector = f"batch.kubernetes.io/job-name%3D{job}"
    path = f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={selector}"
    items: list[JsonObj] = kube.request("GET", path)["items"]
    return items


def _running(pods: list[JsonObj]) -> list[JsonObj]:
    return [
        p
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


def _condition(obj: JsonObj, kind: str) -> JsonObj | None:
    found = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind]
    return found[0] if found else None


def _events(kube: ControlPlane, name: str) -> list[JsonObj]:
    items = kube.request("GET", f"/api/v1/namespaces/{NAMESPACE}/events")["items"]
    return [
        e
        for e in items
        if e["involvedObject"].get("name") == name
        and e.get("reportingComponent") == "sloscale.io/controller"
    ]


def _seen(adapter: KubernetesCluster, ref: WorkloadRef, phase: JobPhase) -> Any:
    return next((j for j in adapter.snapshot().jobs if j.ref == ref and j.phase is phase), None)


# ---- preemption ---------------------------------------------------------------------------------


def test_a_preempted_job_is_suspended_and_the_job_controller_deletes_then_recreates_its_pods(
    cluster_with_rbac: ControlPlane, adapter: KubernetesCluster
) -> None:
    kube, ref = cluster_with_rbac, WorkloadRef(NAMESPACE, "train", "Job")
    kube.request("POST", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs", training_job("train", 2))
    before = eventually(
        "the Job's 2 pods Running on the training node (Job controller, scheduler, kwok)",
        lambda: len(pods := _running(_job_pods(kube, "train"))) == 2 and pods,
    )
    assert {p["spec"]["nodeName"] for p in before} == {TRAINING_NODE}
    seen = eventually(
        "the adapter sees the Job running", lambda: _seen(adapter, ref, JobPhase.RUNNING)
    )
    assert (seen.pods, seen.share_pct_per_pod, seen.memory_mib_per_pod) == (2, 30, 10240)
    assert seen.annotations == LOW

    (result,) = adapter.apply(Plan(jobs=(JobAction(ref, True, Reason.PREEMPTED),)))
    assert result.ok and result.message == "suspended", result.message
    job = _job(kube, "train")
    assert job["spec"]["suspend"] is True
    assert json.loads(job["metadata"]["annotations"][LAST_DECISION])["reason"] == "Preempted"
    owned = [f for f in job["metadata"]["managedFields"] if f["manager"] == "sloscale"]
    assert owned and all(f["operation"] == "Update" for f in owned), owned
    assert any("f:suspend" in f["fieldsV1"].get("f:spec", {}) for f in owned), owned
    eventually("the Job controller deletes both pods", lambda: not _job_pods(kube, "train"))
    suspended = eventually(
        "the Job's condition Suspended=True",
        lambda: (c := _condition(_job(kube, "train"), "Suspended")) and c["status"] == "True" and c,
    )
    assert suspended["reason"] == "JobSuspended"
    eventually("the adapter sees it suspended", lambda: _seen(adapter, ref, JobPhase.SUSPENDED))

    (result,) = adapter.apply(Plan(jobs=(JobAction(ref, False, Reason.RESUMED),)))
    assert result.ok and result.message == "resumed", result.message
    assert _job(kube, "train")["spec"]["suspend"] is False
    after = eventually(
        "2 new pods Running after the resume",
        lambda: len(pods := _running(_job_pods(kube, "train"))) == 2 and pods,
    )
    assert not {p["metadata"]["uid"] for p in after} & {p["metadata"]["uid"] for p in before}
    resumed = _condition(_job(kube, "train"), "Suspended")
    assert resumed is not None and (resumed["status"], resumed["reason"]) == ("False", "JobResumed")
    eventually("the adapter sees it running again", lambda: _seen(adapter, ref, JobPhase.RUNNING))
    assert [e["reason"] for e in _events(kube, "train")] == ["Preempted", "Resumed"]


def test_a_bare_pod_is_evicted_and_a_disruption_budget_that_allows_none_is_reported(
    cluster_with_rbac: ControlPlane, adapter: KubernetesCluster
) -> None:
    kube = cluster_with_rbac
    for pod in (bare_pod("free", "free"), bare_pod("guarded", "guarded")):
        kube.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod)
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "guarded-pdb", "namespace": NAMESPACE},
        "spec": {"selector": {"matchLabels": {"app": "guarded"}}, "minAvailable": 1},
    }
    kube.request("POST", f"/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets", budget)
    pod_path = f"/api/v1/namespaces/{NAMESPACE}/pods/"
    eventually(
        "both pods Running",
        lambda: all(_running([kube.request("GET", pod_path + n)]) for n in ("free", "guarded")),
    )

    def counted() -> bool:  # the disruption controller's status, for this generation
        pdb = kube.request(
            "GET", f"/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets/guarded-pdb"
        )
        status = pdb.get("status") or {}
        return (
            status.get("observedGeneration") == pdb["metadata"]["generation"]
            and status.get("currentHealthy") == 1
            and status.get("disruptionsAllowed") == 0
        )

    eventually("the budget counted: 1 healthy, no disruption allowed", counted)
    refs = [WorkloadRef(NAMESPACE, name, "Pod") for name in ("free", "guarded")]
    eventually(
        "the adapter sees both pods running",
        lambda: all(_seen(adapter, r, JobPhase.RUNNING) for r in refs),
    )

    free, guarded = adapter.apply(
        Plan(jobs=tuple(JobAction(r, True, Reason.PREEMPTED) for r in refs))
    )
    assert free.ok and free.message == "evicted", free.message
    eventually(
        "the evicted pod deleted (the API, then kwok)",
        lambda: _get(kube, pod_path + "free") is None,
    )
    assert not guarded.ok and "429" in guarded.message, guarded.message
    assert "retry later" in guarded.message
    # the reason is the cause the API gives beside its generic message
    assert "The disruption budget guarded-pdb needs 1 healthy pods and has 1 currently" in (
        guarded.message
    )
    live = kube.request("GET", pod_path + "guarded")
    assert not live["metadata"].get("deletionTimestamp") and _running([live])
    assert [(e["reason"], e["type"]) for e in _events(kube, "free")] == [("Preempted", "Normal")]
    assert [(e["reason"], e["type"]) for e in _events(kube, "guarded")] == [
        ("EvictionBlocked", "Warning")
    ]


# ---- retraining ---------------------------------------------------------------------------------

THRESHOLD, URGENT = 1000, 5000


def retraining_cronjob(name: str) -> JsonObj:
    """Suspended: the CronJob controller never runs it itself; sloscale starts Jobs from it."""
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "schedule": "0 3 * * *",
            "suspend": True,
            "jobTemplate": {
                "metadata": {"labels": {"app": name}, "annotations": dict(LOW)},
                "spec": {
                    "parallelism": 1,
                    "backoffLimit": 2,
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": training_pod_spec(50, 20480),
                    },
                },
            },
        },
    }


def create_model(kube: ControlPlane, model: WorkloadRef) -> JsonObj:
    """The model's Deployment, retrained from CronJob ``<model>-retrain``; that CronJob."""
    template = f"{model.name}-retrain"
    cronjob = kube.request(
        "POST", f"/apis/batch/v1/namespaces/{NAMESPACE}/cronjobs", retraining_cronjob(template)
    )
    dep = deployment(
        model.name,
        NAMESPACE,
        replicas=1,
        annotations={
            "sloscale.io/retrain-data-query": f"sum({model.name}_samples_total)",
            "sloscale.io/retrain-threshold": str(THRESHOLD),
            "sloscale.io/retrain-urgent-threshold": str(URGENT),  # now, whatever the window
            "sloscale.io/retrain-job-template": f"cronjob/{template}",
            "sloscale.io/retrain-cooldown": "1h",
        },
    )
    del dep["status"]
    kube.request("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", dep)
    return cronjob


class _Crash(BaseException):
    """The controller process dies here (nothing in it catches a ``BaseException``)."""


class _CrashBeforeTheJob(KubernetesCluster):
    """An adapter whose process dies after the watermark write, before the Job's create."""

    def _from_cronjob(self, *args: Any, **kwargs: Any) -> Any:
        raise _Crash


class _WallClock:
    def now(self) -> float:
        return time.time()


class _Controller:
    """One controller process: the real loop over its own adapter, fed a model's sample count
    (the metrics source is the only double here)."""

    def __init__(
        self,
        kube: ControlPlane,
        model: WorkloadRef,
        adapter: type[KubernetesCluster] = KubernetesCluster,
    ) -> None:
        api = load_api(str(kube.kubeconfig(CONTROLLER)))
        options = KubernetesOptions(
            scope=Scope.of(NAMESPACE), watch_timeout_s=30, sync_timeout_s=30
        )
        self.model = model
        self.adapter = adapter(api, options).start()
        assert self.adapter.wait_synced(30)
        self.metrics = FakeMetrics()
        self.loop = Controller(self.adapter, self.metrics, _WallClock(), LoopConfig())

    def tick(self, samples: float) -> TickReport:
        self.metrics.values = {self.model.key: WorkloadMetrics(data_samples=samples)}
        report = self.loop.tick()
        assert not report.errors, report.errors
        return report

    def leads(self, leading: bool) -> None:
        """What ``sloscale run --leader-elect`` does before each tick: a follower's ticks are
        in shadow mode."""
        self.loop.config = replace(self.loop.config, dry_run=not leading)

    def close(self) -> None:
        self.adapter.close()


def _watermark(kube: ControlPlane, model: WorkloadRef) -> Watermark:
    dep = kube.request("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{model.name}")
    return Watermark.parse(dep["metadata"]["annotations"].get("sloscale.io/retrain-watermark"))


def _retraining_jobs(kube: ControlPlane, model: WorkloadRef) -> list[JsonObj]:
    selector = f"sloscale.io/retrain-of%3D{model.name}"
    path = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs?labelSelector={selector}"
    items: list[JsonObj] = kube.request("GET", path)["items"]
    return items


def _creates(report: TickReport) -> list[tuple[RetrainAction, ApplyResult]]:
    """The retraining actions of a tick that create a Job, with their results."""
    results = {r.target: r for r in report.results}
    return [(a, results[a.target]) for a in report.plan.retrain if a.job_name is not None]


def test_a_retraining_job_is_created_from_the_cronjob_exactly_once_across_restarts(
    cluster_with_rbac: ControlPlane, training_node: str
) -> None:
    kube, model = cluster_with_rbac, WorkloadRef(NAMESPACE, "llama")
    cronjob = create_model(kube, model)
    template = cronjob["metadata"]["name"]

    # controller 1: a baseline, then the start, and it dies between the two writes of the start
    first = _Controller(kube, model, _CrashBeforeTheJob)
    try:
        first.tick(100)
        assert _watermark(kube, model).samples == 100
        with pytest.raises(_Crash):
            first.tick(100 + URGENT)
    finally:
        first.close()
    recorded = _watermark(kube, model)
    assert recorded.job == f"{model.name}-retrain-1" and recorded.job_samples == 100 + URGENT
    assert _retraining_jobs(kube, model) == []

    # controller 2 (a restart) creates the Job the watermark names
    second = _Controller(kube, model)
    try:
        ((create, result),) = _creates(second.tick(100 + URGENT))
        assert create.job_name == recorded.job
        assert result.ok and result.message == f"created from cronjob/{template}", result.message
    finally:
        second.close()  # and dies before it has seen the Job
    assert [j["metadata"]["name"] for j in _retraining_jobs(kube, model)] == [recorded.job]

    # controller 3 (another restart) sends the same create again: the API answers 409
    # AlreadyExists, which is done; its own ticks then follow the Job, creating nothing
    third = _Controller(kube, model)
    try:
        (again,) = third.adapter.apply(Plan(retrain=(create,)))
        assert again.ok and again.message == "job already exists; nothing to do", again.message
        assert _creates(third.tick(100 + URGENT + 10)) == []
        eventually(
            "the Job running (Job controller, scheduler, the training node's kwok)",
            lambda: _running(_job_pods(kube, recorded.job or "")),
        )
        report = third.tick(100 + URGENT + 20)
        (status,) = report.retraining
        assert status.state is RetrainState.RUNNING, status.message
        assert _creates(report) == []
    finally:
        third.close()

    (job,) = _retraining_jobs(kube, model)
    assert job["metadata"]["name"] == recorded.job == _watermark(kube, model).job
    # the CronJob's template, as the API server defaulted it in both objects
    job_template = cronjob["spec"]["jobTemplate"]
    assert job["spec"]["template"]["spec"] == job_template["spec"]["template"]["spec"]
    assert (job["spec"]["parallelism"], job["spec"]["backoffLimit"]) == (1, 2)
    meta = job["metadata"]
    assert meta["labels"].items() >= {"app": template, "sloscale.io/retrain-of": model.name}.items()
    manual = {**LOW, "cronjob.kubernetes.io/instantiate": "manual"}
    assert meta["annotations"].items() >= manual.items()
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "CronJob",
        template,
        cronjob["metadata"]["uid"],
    )
    assert len(_events(kube, recorded.job or "")) == 1  # one create, one Event


def test_a_replica_that_followed_starts_the_retraining_once_it_leads(
    cluster_with_rbac: ControlPlane, training_node: str
) -> None:
    """A follower decides in shadow mode what it would write, the retraining's start too; when
    it leads, it must write it (it once took its shadow writes as made, and waited forever
    for a Job nobody had created)."""
    kube, model = cluster_with_rbac, WorkloadRef(NAMESPACE, "mistral")
    create_model(kube, model)
    replica = _Controller(kube, model)
    try:
        replica.tick(100)  # leading: the baseline
        assert _watermark(kube, model).samples == 100
        replica.leads(False)
        for _ in range(2):
            shadow = _creates(replica.tick(100 + URGENT))
            assert all(r.message.startswith("dry-run: would retrain") for _, r in shadow), shadow
        assert _watermark(kube, model).job is None and _retraining_jobs(kube, model) == []
        replica.leads(True)
        ((create, result),) = _creates(replica.tick(100 + URGENT))
        assert result.ok and result.message.startswith("created from cronjob/"), result.message
        assert create.job_name == f"{model.name}-retrain-1" == _watermark(kube, model).job
        assert _creates(replica.tick(100 + URGENT)) == []
    finally:
        replica.close()
    assert [j["metadata"]["name"] for j in _retraining_jobs(kube, model)] == [create.job_name]
