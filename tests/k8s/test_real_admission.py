"""deploy/ against a real API server's admission and authorisation (issues #27 and #24): what
``tests/k8s/test_deploy.py`` (kubernetes-validate), ``test_rbac.py`` (the fake API server's
rule matcher) and ``test_admission_policy.py`` (celcheck) check without one.

1. Every kustomization under deploy/ is admitted by ``kubectl apply -k --server-side
   --dry-run=server``: the built-in schemas, the upstream CRDs of the Prometheus Operator
   (ServiceMonitor, PodMonitor, PrometheusRule) fetched from its Go module, strict field
   validation, and Pod Security: every pod template it ships becomes a pod that the
   ``enforce`` level of its namespace admits (``restricted`` for the controller, as
   deploy/base's Namespace says).
2. deploy/admission's ValidatingAdmissionPolicy on the real server: it refuses what
   ``sloscale validate`` refuses (the table of test_admission_policy), with the parser's
   message, admits the rest and sloscale's own writes, and the admission-warn overlay warns
   instead.
3. RBAC is minimal: as sloscale's ServiceAccount, with exactly deploy/base's roles, one full
   set of the adapter's calls succeeds; with any one (group, resource, verb) grant taken
   away, the call that needs it is refused 403 by the real authoriser.

One control plane for the session (``tests.support.kube``); each part in namespaces of its own,
and what it changes cluster-wide (the roles, the policy) put back after it.
"""

from __future__ import annotations

import base64
import copy
import functools
import itertools
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from actuators.kubernetes import (
    ApiCall,
    ApiError,
    ConfigMapSnapshotStore,
    KubeApi,
    KubernetesCluster,
    KubernetesOptions,
    LeaderElector,
    LeaseConfig,
    Scope,
    load_api,
)
from actuators.kubernetes.api import WatchStream
from actuators.kubernetes.snapshots import MAX_PARTS, SETS, object_names
from controller.domain import (
    Allocation,
    ApplyResult,
    DeploymentState,
    JobAction,
    Plan,
    Reason,
    RetrainAction,
    ScaleAction,
    WorkloadRef,
)
from tests.k8s import test_admission_policy as table
from tests.k8s.conftest import deployment, hami_resources
from tests.support.gomod import KEDA, PROMETHEUS_OPERATOR, module_dir
from tests.support.gotool import REPO
from tests.support.kube import ADMIN, CONTROLLER, ControlPlane, ControlPlaneError, eventually

JsonObj = dict[str, Any]

DEPLOY = REPO / "deploy"
KUSTOMIZATIONS = sorted(
    p.parent.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("kustomization.yaml")
)
OWN_NAMESPACE = "sloscale"  # deploy/base's
AGENT_NAMESPACE = "sloscale-agent"  # deploy/agent's
APPLIED_FIRST = {OWN_NAMESPACE: "base", AGENT_NAMESPACE: "agent"}
"""The namespaces a kustomization brings with it, and their ServiceAccounts, which its pods
name: applied for real before the dry runs, so each enforces the Pod Security level it
declares."""
PRIVILEGED = {AGENT_NAMESPACE}
"""Namespaces that may enforce ``privileged``: the GPU node agent's (host PIDs and the host's
/proc; deploy/agent/namespace.yaml says why). Every other pod template must pass
``restricted`` or ``baseline``."""
RUNTIME_CLASS = {
    "apiVersion": "node.k8s.io/v1",
    "kind": "RuntimeClass",
    "metadata": {"name": "nvidia"},
    "handler": "nvidia",
}
"""The RuntimeClass the GPU operator creates, which the agent's pods name (the RuntimeClass
admission plugin refuses a pod that names a missing one)."""
UNNAMESPACED_TARGET = "monitoring"
"""Where a kustomization that names no namespace (grafana, monitoring, prometheus-rules) is
applied: the Prometheus Operator's namespace, as kube-prometheus-stack installs it."""
POD_SECURITY = "pod-security.kubernetes.io/enforce"
WORKLOAD_LEVEL = {"ml": "baseline"}
"""Pod Security of the namespaces the test creates for deploy/ (else ``restricted``). The
examples are workloads for the users' namespaces, not the controller's: vLLM's image runs as
root (its model cache is /root/.cache), so they are held to ``baseline``."""

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
UPSTREAM_CRDS = (
    (PROMETHEUS_OPERATOR, "example/prometheus-operator-crd/monitoring.coreos.com_{}.yaml"),
    (KEDA, "config/crd/bases/keda.sh_{}.yaml"),
)
CRD_PLURALS = {
    "monitoring.coreos.com": ("servicemonitors", "podmonitors", "prometheusrules"),
    "keda.sh": ("scaledobjects",),  # the adapter watches them (autoscalers.py)
}


def render(kube: ControlPlane, path: str) -> list[JsonObj]:
    """The kustomization built by the control plane's kubectl (its own kustomize)."""
    return copy.deepcopy(_rendered(kube.binaries / "kubectl", path))


@functools.cache
def _rendered(kubectl: Path, path: str) -> list[JsonObj]:
    out = subprocess.run(
        [str(kubectl), "kustomize", str(DEPLOY / path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def group_of(obj: JsonObj) -> str:
    api_version = str(obj["apiVersion"])
    return api_version.rpartition("/")[0]


def warnings_of(proc_stderr: str) -> list[str]:
    """kubectl's warnings, but the one about a namespace created by a client-side apply
    elsewhere in the session (harmless: server-side apply takes over the next time)."""
    return [
        line
        for line in proc_stderr.splitlines()
        if line.startswith("Warning:") and "failed to migrate" not in line
    ]


MUST_BE_GONE = ("ml",)
"""Namespaces another test of the session creates (test_real_apiserver: ``ml``): deleted and
gone before this module ends."""


@dataclass
class Namespaces:
    """The namespaces this module creates: deleted when a part is done with them (in the
    background), and waited for at the end only where another test needs the name free."""

    kube: ControlPlane
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def ensure(self, name: str, labels: dict[str, str] | None = None) -> None:
        metadata = {"name": name, "labels": labels or {}}
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
        code, answer = post(self.kube, "/api/v1/namespaces", body)
        if code == 409:  # there already (a test run before, or deploy/base's)
            for key, value in (labels or {}).items():
                self.kube.kubectl("label", "--overwrite", f"namespace/{name}", f"{key}={value}")
            return
        assert code == 201, answer
        self.created.append(name)

    def wait_usable(self, *names: str) -> None:
        """Until each has its ``default`` ServiceAccount, without which pods are refused."""
        for name in names:
            path = f"/api/v1/namespaces/{name}/serviceaccounts/default"
            eventually(f"ServiceAccount {name}/default", functools.partial(exists, self.kube, path))

    def release(self, *names: str) -> None:
        for name in (n for n in names if n in self.created):
            self.kube.request("DELETE", f"/api/v1/namespaces/{name}")
            self.created.remove(name)
            self.deleted.append(name)


def exists(kube: ControlPlane, path: str) -> bool:
    try:
        kube.request("GET", path)
    except ControlPlaneError as e:
        assert ": 404 " in str(e), e
        return False
    return True


def gone(kube: ControlPlane, path: str) -> bool:
    return not exists(kube, path)


@pytest.fixture(scope="module")
def namespaces(kube: ControlPlane) -> Iterator[Namespaces]:
    found = Namespaces(kube)
    yield found
    found.release(*found.created)
    for name in (n for n in MUST_BE_GONE if n in found.deleted):
        path = f"/api/v1/namespaces/{name}"
        eventually(f"namespace {name} gone", functools.partial(gone, kube, path), 60)


# ---- the upstream CRDs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def crds(kube: ControlPlane) -> list[str]:
    """The Prometheus Operator's and KEDA's CRDs, as their releases ship them (their Go modules,
    through the module proxy: ``tests.support.gomod``), installed and Established."""
    files: list[Path] = []
    names: list[str] = []
    for module, pattern in UPSTREAM_CRDS:
        root = module_dir(module)
        group = pattern.rsplit("/", 1)[1].split("_")[0]
        for plural in CRD_PLURALS[group]:
            files.append(root / pattern.format(plural))
            names.append(f"crd/{plural}.{group}")
    kube.kubectl("apply", "--server-side", *itertools.chain(*(("-f", str(f)) for f in files)))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    return names


# ---- 1. every kustomization is admitted ------------------------------------------------------


@pytest.fixture(scope="class")
def targets(
    kube: ControlPlane, crds: list[str], namespaces: Namespaces
) -> Iterator[dict[str, str]]:
    """The namespaces deploy/ installs into, each with the Pod Security level it enforces:
    the controller's from deploy/base and the GPU agent's from deploy/agent (applied for real,
    with their ServiceAccounts, which their pods name; and the ``nvidia`` RuntimeClass the
    agent's pods run with), the others created here."""
    for namespace, path in APPLIED_FIRST.items():
        kube.kubectl(
            "apply",
            "--server-side",
            "-f",
            str(DEPLOY / path / "namespace.yaml"),
            "-f",
            str(DEPLOY / path / "serviceaccount.yaml"),
            f"--namespace={namespace}",
        )
    kube.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(RUNTIME_CLASS))
    wanted = {UNNAMESPACED_TARGET}
    for path in KUSTOMIZATIONS:
        wanted |= {str(d["metadata"]["namespace"]) for d in render(kube, path) if namespace_of(d)}
    others = sorted(wanted - set(APPLIED_FIRST))
    for name in others:
        namespaces.ensure(name, {POD_SECURITY: WORKLOAD_LEVEL.get(name, "restricted")})
    namespaces.wait_usable(*others)
    levels = {}
    for name in wanted:
        labels = kube.request("GET", f"/api/v1/namespaces/{name}")["metadata"].get("labels", {})
        levels[name] = labels.get(POD_SECURITY, "privileged")
    yield levels
    namespaces.release(*others)
    kube.kubectl("delete", "runtimeclass", "nvidia", "--ignore-not-found")


def namespace_of(obj: JsonObj) -> str | None:
    return (obj.get("metadata") or {}).get("namespace")


def pod_templates(obj: JsonObj) -> list[JsonObj]:
    spec = obj.get("spec") or {}
    if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"):
        return [spec["template"]]
    if obj["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]]
    if obj["kind"] == "Pod":
        return [{"metadata": obj.get("metadata", {}), "spec": spec}]
    return []


def pod_from(template: JsonObj) -> JsonObj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "pod-security-",
            "labels": (template.get("metadata") or {}).get("labels", {}),
        },
        "spec": copy.deepcopy(template["spec"]),
    }


def create_pod_dry_run(kube: ControlPlane, namespace: str, template: JsonObj) -> JsonObj:
    """The pod a controller would create from ``template``, through every admission plugin
    (Pod Security's ``enforce`` applies to pods only), stored nowhere."""
    path = f"/api/v1/namespaces/{namespace}/pods?dryRun=All"
    return kube.request("POST", path, pod_from(template))


class TestKustomizations:
    def test_every_kustomization_is_checked(self) -> None:
        assert {"base", "overlays/shadow", "overlays/namespaced", "admission", "examples"} <= set(
            KUSTOMIZATIONS
        )
        assert len(KUSTOMIZATIONS) >= 13

    @pytest.mark.parametrize("path", KUSTOMIZATIONS)
    def test_the_kustomization_is_admitted_by_a_real_api_server(
        self, kube: ControlPlane, targets: dict[str, str], path: str
    ) -> None:
        docs = render(kube, path)
        unnamespaced = [
            d for d in docs if d["kind"] not in CLUSTER_SCOPED and namespace_of(d) is None
        ]
        extra = [f"--namespace={UNNAMESPACED_TARGET}"] if unnamespaced else []
        proc = kube.kubectl(
            "apply",
            "-k",
            str(DEPLOY / path),
            "--server-side",
            "--dry-run=server",
            *extra,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        applied = set(proc.stdout.splitlines())
        for d in docs:
            group = group_of(d)
            name = f"{d['kind'].lower()}{'.' + group if group else ''}/{d['metadata']['name']}"
            assert f"{name} serverside-applied (server dry run)" in applied, (name, proc.stdout)
        assert not warnings_of(proc.stderr), proc.stderr  # Pod Security's warn level included

        for d in docs:
            namespace = namespace_of(d) or UNNAMESPACED_TARGET
            for template in pod_templates(d):
                level = targets[namespace]
                if namespace not in PRIVILEGED:
                    assert level in ("restricted", "baseline"), (namespace, level)
                try:
                    create_pod_dry_run(kube, namespace, template)
                except ControlPlaneError as e:
                    pytest.fail(f"{d['kind']} {d['metadata']['name']}: pod refused ({level}): {e}")

    def test_the_controllers_namespace_enforces_restricted_and_its_pods_comply(
        self, kube: ControlPlane, targets: dict[str, str]
    ) -> None:
        """deploy/base's Namespace enforces ``restricted`` (and warns of it at apply time); its
        Deployment's pod is admitted there, and the same pod without its security contexts is
        not: the level is enforced, not only written down."""
        assert targets[OWN_NAMESPACE] == "restricted"
        labels = kube.request("GET", f"/api/v1/namespaces/{OWN_NAMESPACE}")["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"
        (controller,) = [d for d in render(kube, "base") if d["kind"] == "Deployment"]
        template = controller["spec"]["template"]
        pod = create_pod_dry_run(kube, OWN_NAMESPACE, template)
        assert pod["spec"]["serviceAccountName"] == "sloscale"

        lax = copy.deepcopy(template)
        del lax["spec"]["securityContext"]
        del lax["spec"]["containers"][0]["securityContext"]
        with pytest.raises(
            ControlPlaneError, match=r'403.*violates PodSecurity \\"restricted:latest'
        ):
            create_pod_dry_run(kube, OWN_NAMESPACE, lax)
        lax_deployment = {**controller, "spec": {**controller["spec"], "template": lax}}
        proc = kube.kubectl(
            "apply",
            "--server-side",
            "--dry-run=server",
            "-f",
            "-",
            stdin=json.dumps(lax_deployment),
        )
        assert 'would violate PodSecurity "restricted:latest"' in proc.stderr, proc.stderr


# ---- 2. deploy/admission's policy on the real server (#24) -----------------------------------

ADMISSION_NAMESPACE = "admission-policy"
POLICY_DENIAL = (
    "ValidatingAdmissionPolicy 'sloscale-annotations' with binding 'sloscale-annotations' "
    "denied request: "
)
BAD_OBJECTIVE = {**table.GOOD_DEPLOYMENT, "sloscale.io/objective": "0.99"}
COLLECTIONS = {
    "Deployment": "/apis/apps/v1/namespaces/{}/deployments",
    "Job": "/apis/batch/v1/namespaces/{}/jobs",
    "CronJob": "/apis/batch/v1/namespaces/{}/cronjobs",
}


def in_namespace(obj: JsonObj, namespace: str) -> JsonObj:
    """``obj`` in ``namespace``, with what the API server's own validation requires and the
    table's objects leave out (a Job pod's restartPolicy), so that only the policy decides."""
    out = copy.deepcopy(obj)
    out["metadata"]["namespace"] = namespace
    out.pop("status", None)
    if obj["kind"] == "Job":
        out["spec"]["template"]["spec"].setdefault("restartPolicy", "Never")
    if obj["kind"] == "CronJob":
        out["spec"]["jobTemplate"]["spec"]["template"]["spec"].setdefault("restartPolicy", "Never")
    return out


def post(kube: ControlPlane, path: str, body: JsonObj) -> tuple[int, JsonObj]:
    """One POST as the admin: the HTTP status and the answer, a refusal's ``Status`` too."""
    return kube.answer("POST", path, body)


def create(kube: ControlPlane, obj: JsonObj, *, dry_run: bool = True) -> tuple[int, str]:
    """POST ``obj`` (``dryRun=All``: every admission step, nothing stored): the HTTP status and
    the refusal's message (``""`` when admitted)."""
    path = COLLECTIONS[obj["kind"]].format(obj["metadata"]["namespace"])
    code, answer = post(kube, path + ("?dryRun=All" if dry_run else ""), obj)
    return code, "" if code < 300 else str(answer.get("message"))


def refusal(kube: ControlPlane, obj: JsonObj) -> str:
    code, message = create(kube, obj)
    return message if code != 201 else ""


@pytest.fixture(scope="class")
def policy(kube: ControlPlane, namespaces: Namespaces) -> Iterator[ControlPlane]:
    """deploy/admission installed (Deny), once it is in force; a Deployment annotated badly
    before, as a cluster that installs the policy late has them."""
    namespaces.ensure(ADMISSION_NAMESPACE)
    legacy = deployment("legacy", ADMISSION_NAMESPACE, replicas=1, annotations=BAD_OBJECTIVE)
    del legacy["status"]
    assert create(kube, legacy, dry_run=False) == (201, ""), "created before the policy"
    kube.kubectl("apply", "--server-side", "-k", str(DEPLOY / "admission"))
    bad = in_namespace(table.deployment(BAD_OBJECTIVE), ADMISSION_NAMESPACE)
    eventually("the policy in force", lambda: POLICY_DENIAL in refusal(kube, bad))
    yield kube
    kube.kubectl("delete", "-k", str(DEPLOY / "admission"), "--ignore-not-found")
    namespaces.release(ADMISSION_NAMESPACE)


class TestAdmissionPolicy:
    def test_the_policy_refuses_what_sloscale_validate_refuses(self, policy: ControlPlane) -> None:
        """Every object of test_admission_policy's table, and the examples: refused by the
        real API server exactly when the parser finds an error, and then by the policy."""
        disagree, refused = [], 0
        for obj in table.objects():
            errors = table.parser_errors(obj)
            code, message = create(policy, in_namespace(obj, ADMISSION_NAMESPACE))
            if code != 201:
                refused += 1
                assert POLICY_DENIAL in message, (obj["metadata"], code, message)
            if bool(errors) != (code != 201):
                disagree.append((obj["kind"], obj["metadata"], errors, message))
        assert not disagree, "\n".join(map(repr, disagree))
        assert refused > 50

    @pytest.mark.parametrize(
        ("annotations", "expected"),
        [
            (
                BAD_OBJECTIVE,
                "annotation sloscale.io/objective='0.99': must be in [50, 99.999] (supported "
                "range): the objective is a percentage, not a ratio; did you mean 99?",
            ),
            (
                {"sloscale.io/enable": "true"},
                "annotation sloscale.io/enable='true': unknown key on a Deployment; did you "
                "mean sloscale.io/enabled?",
            ),
        ],
    )
    def test_a_refusal_says_the_parsers_message(
        self, policy: ControlPlane, annotations: dict[str, str], expected: str
    ) -> None:
        obj = in_namespace(table.deployment(annotations), ADMISSION_NAMESPACE)
        code, message = create(policy, obj)
        assert code == 422  # the policy's reason: Invalid
        assert message.startswith('deployments.apps "a" is forbidden: ' + POLICY_DENIAL), message
        assert expected in message

    def test_a_valid_deployment_is_admitted(self, policy: ControlPlane) -> None:
        obj = in_namespace(table.deployment(table.GOOD_DEPLOYMENT), ADMISSION_NAMESPACE)
        obj["metadata"]["name"] = "valid"
        assert create(policy, obj, dry_run=False) == (201, "")

    def test_sloscales_own_writes_are_admitted(self, policy: ControlPlane) -> None:
        """The adapter writes sloscale.io/last-decision on what it scales, suspends, resumes
        and creates, and sloscale.io/retrain-watermark on a model's Deployment: none is
        refused, not even on a Deployment annotated badly before the policy, whose user
        edits stay refused."""
        kube, ns = policy, ADMISSION_NAMESPACE
        web = deployment("web", ns, replicas=1, resources=hami_resources(50, 20480))
        del web["status"]
        train = in_namespace(table.job({"sloscale.io/preemptible": "true"}), ns)
        train["spec"]["suspend"] = True
        retrain = in_namespace(table.cronjob({"sloscale.io/priority": "low"}), ns)
        retrain["metadata"]["name"] = "retrain"
        for obj in (web, train, retrain):
            assert create(kube, obj, dry_run=False) == (201, "")

        api = load_api(str(kube.kubeconfig(ADMIN)))
        options = KubernetesOptions(scope=Scope.of(ns), watch_timeout_s=30, sync_timeout_s=10)
        cluster = KubernetesCluster(api, options).start()
        try:
            assert cluster.wait_synced(10)
            ref, legacy = WorkloadRef(ns, "web"), WorkloadRef(ns, "legacy")
            plan = Plan(
                scale=(
                    ScaleAction(ref, Allocation(2, 50), 20480, Reason.SCALE_UP),
                    ScaleAction(legacy, Allocation(2, 50), 20480, Reason.SCALE_UP),
                ),
                jobs=(JobAction(WorkloadRef(ns, "j", "Job"), False, Reason.RESUMED),),
                retrain=(
                    RetrainAction(
                        ref,
                        "1000",
                        Reason.RETRAIN_TRIGGERED,
                        "1000 new samples",
                        job_name="retrain-1",
                        template="cronjob/retrain",
                    ),
                ),
            )
            results = cluster.apply(plan)
        finally:
            cluster.close()
        assert all(r.ok for r in results), results
        live = kube.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/web")
        assert {"sloscale.io/last-decision", "sloscale.io/retrain-watermark"} <= set(
            live["metadata"]["annotations"]
        )
        job = kube.request("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/retrain-1")
        assert "sloscale.io/last-decision" in job["metadata"]["annotations"]
        old = kube.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/legacy")
        assert old["spec"]["replicas"] == 2
        assert "sloscale.io/last-decision" in old["metadata"]["annotations"]

        edited = copy.deepcopy(old)
        edited["metadata"]["annotations"]["sloscale.io/objective"] = "0.9"
        with pytest.raises(ControlPlaneError, match="ratio; did you mean 90"):
            kube.request("PUT", f"/apis/apps/v1/namespaces/{ns}/deployments/legacy", edited)

    def test_the_warn_overlay_warns_instead_of_refusing(self, policy: ControlPlane) -> None:
        kube = policy
        kube.kubectl("apply", "--server-side", "-k", str(DEPLOY / "overlays" / "admission-warn"))
        bad = in_namespace(table.deployment(BAD_OBJECTIVE), ADMISSION_NAMESPACE)
        expected = (
            "Warning: Validation failed for ValidatingAdmissionPolicy 'sloscale-annotations' "
            "with binding 'sloscale-annotations': annotation sloscale.io/objective='0.99': "
            "must be in [50, 99.999]"
        )

        def warned() -> subprocess.CompletedProcess[str] | None:
            proc = kube.kubectl(
                "create", "--dry-run=server", "-f", "-", stdin=json.dumps(bad), check=False
            )
            return proc if expected in proc.stderr else None

        proc = eventually("the binding's Warn in force", warned)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "deployment.apps/a created (server dry run)"


# ---- 3. RBAC is minimal ----------------------------------------------------------------------

AUDIT_NAMESPACE = "rbac-audit"
WEB = WorkloadRef(AUDIT_NAMESPACE, "web")
SPARE_POD = "spare"  # a pod a scale-in marks for removal first (pod-deletion-cost)
STATE = "sloscale-state"  # deploy/base's sloscale-state Role names it, and its parts
STATE_PART_BYTES = 1000  # per object: a small memory is cut into every part of each set

GrantKey = tuple[str, str, str, str | None]
"""(API group, resource, verb, resource name)."""

NEEDS: dict[GrantKey, str] = {
    **{
        (group, resource, verb, None): "discover"
        for group, resource in (
            ("apps", "deployments"),
            ("batch", "jobs"),
            ("", "pods"),
            ("", "nodes"),
            ("autoscaling", "horizontalpodautoscalers"),
            ("keda.sh", "scaledobjects"),
        )
        for verb in ("list", "watch")
    },
    ("apps", "deployments", "get", None): "scale",
    ("apps", "deployments/scale", "patch", None): "scale",
    ("", "pods", "patch", None): "scale",
    ("apps", "deployments", "patch", None): "retrain",
    ("batch", "cronjobs", "get", None): "retrain",
    ("batch", "jobs", "create", None): "retrain",
    ("", "events", "create", None): "retrain",
    ("batch", "jobs", "get", None): "resume",
    ("batch", "jobs", "patch", None): "resume",
    ("", "pods/eviction", "create", None): "evict",
    ("coordination.k8s.io", "leases", "get", None): "lease",
    ("coordination.k8s.io", "leases", "create", None): "lease",
    ("coordination.k8s.io", "leases", "update", None): "lease",
    ("", "configmaps", "create", None): "state",
    **{
        ("", "configmaps", verb, name): "state"
        for name in object_names(STATE)
        for verb in ("get", "update")
    },
}
"""Each grant of deploy/base, and the adapter's operation (``OPS``) whose call needs it."""


@dataclass(frozen=True, slots=True)
class Grant:
    """One (group, resource, verb[, name]) of a role of deploy/base."""

    role: tuple[str, str | None, str]  # kind, namespace, name
    group: str
    resource: str
    verb: str
    name: str | None

    @property
    def key(self) -> GrantKey:
        return (self.group, self.resource, self.verb, self.name)

    def allows(self, call: ApiCall) -> bool:
        namespace = self.role[1]
        return (
            (call.verb, call.group, call.resource) == (self.verb, self.group, self.resource)
            and (namespace is None or call.namespace == namespace)
            and (self.name is None or call.name == self.name)
        )

    def rule(self) -> JsonObj:
        rule: JsonObj = {"apiGroups": [self.group], "resources": [self.resource]}
        if self.name is not None:
            rule["resourceNames"] = [self.name]
        return {**rule, "verbs": [self.verb]}

    def __str__(self) -> str:
        name = f" {self.name}" if self.name else ""
        return f"{self.verb} {self.resource}.{self.group or 'core'}{name}"


@dataclass
class Record:
    """What one operation asked and was answered."""

    answers: list[tuple[ApiCall, int]] = field(default_factory=list)
    errors: list[ApiError] = field(default_factory=list)
    results: list[ApplyResult] = field(default_factory=list)

    def succeeded(self, grant: Grant) -> bool:
        return any(grant.allows(c) and s < 300 for c, s in list(self.answers))

    def forbidden(self, grant: Grant) -> ApiError | None:
        return next(
            (e for e in list(self.errors) if grant.allows(e.call) and e.status == 403), None
        )


class RecordingApi(KubeApi):
    """The adapter's ``KubeApi``, recording each call's status and each refusal."""

    def __init__(self, api: KubeApi, record: Record) -> None:
        super().__init__(api.client)
        self.record = record

    def _send(self, method: str, call: ApiCall, *args: Any, **kwargs: Any) -> Any:
        response = super()._send(method, call, *args, **kwargs)
        self.record.answers.append((call, response.status))
        return response

    def _json(self, *args: Any, **kwargs: Any) -> JsonObj:
        try:
            return super()._json(*args, **kwargs)
        except ApiError as e:
            self.record.errors.append(e)
            raise

    def watch(self, *args: Any, **kwargs: Any) -> WatchStream:
        try:
            return super().watch(*args, **kwargs)
        except ApiError as e:
            self.record.errors.append(e)
            raise


@dataclass
class Audit:
    kube: ControlPlane
    roles: dict[tuple[str, str | None, str], JsonObj]  # as deploy/base renders them
    grants: tuple[Grant, ...]
    names: Iterator[int] = field(default_factory=itertools.count)
    withheld: Grant | None = None

    def fresh(self, prefix: str) -> str:
        return f"{prefix}-{next(self.names)}"

    def grant(self, key: GrantKey) -> Grant:
        (found,) = [g for g in self.grants if g.key == key]
        return found

    def options(self) -> KubernetesOptions:
        return KubernetesOptions(scope=Scope(), watch_timeout_s=60, sync_timeout_s=10)

    def withhold(self, grant: Grant | None) -> None:
        """deploy/base's roles, but ``grant`` (each rule split into one per grant, which
        authorises the same), in force for the controller."""
        for role, doc in self.roles.items():
            if grant is None:
                rules = doc["rules"]
            else:
                rules = [g.rule() for g in self.grants if g.role == role and g != grant]
            self._put_rules(role, rules)
        self.withheld = grant
        eventually(
            f"the RBAC cache without {grant}",
            lambda: all(self.can(g) == (g != grant) for g in self.grants),
            10,
        )

    def _put_rules(self, role: tuple[str, str | None, str], rules: list[JsonObj]) -> None:
        _, namespace, name = role
        path = "/apis/rbac.authorization.k8s.io/v1"
        path += f"/namespaces/{namespace}/roles/{name}" if namespace else f"/clusterroles/{name}"
        live = self.kube.request("GET", path)
        self.kube.request("PUT", path, {**live, "rules": rules})

    def can(self, grant: Grant) -> bool:
        """The controller's SelfSubjectAccessReview: what the authoriser says now."""
        resource, _, subresource = grant.resource.partition("/")
        attributes = {
            "verb": grant.verb,
            "group": grant.group,
            "resource": resource,
            "subresource": subresource,
            "name": grant.name or "",
        }
        if resource != "nodes":
            attributes["namespace"] = grant.role[1] or AUDIT_NAMESPACE
        review = self.kube.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes},
            },
            user=CONTROLLER,
        )
        return bool(review["status"].get("allowed"))


def grants_of(roles: dict[tuple[str, str | None, str], JsonObj]) -> tuple[Grant, ...]:
    return tuple(
        Grant(role, group, resource, verb, name)
        for role, doc in roles.items()
        for rule in doc["rules"]
        for group, resource, verb, name in itertools.product(
            rule["apiGroups"], rule["resources"], rule["verbs"], rule.get("resourceNames") or [None]
        )
    )


@pytest.fixture(scope="module")
def audit(kube: ControlPlane, crds: list[str], namespaces: Namespaces) -> Iterator[Audit]:
    """deploy/base's roles and bindings, applied as rendered, and what the adapter acts on
    in a namespace of its own: a Deployment (running, on the fake GPU nodes), a retraining
    CronJob and a pod."""
    docs = render(kube, "base")
    rbac = [d for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io/")]
    namespace = next(d for d in docs if d["kind"] == "Namespace")
    kube.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(namespace))
    kube.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=json.dumps({"kind": "List", "apiVersion": "v1", "items": rbac}),
    )
    roles = {
        (d["kind"], namespace_of(d), d["metadata"]["name"]): d
        for d in rbac
        if d["kind"] in ("Role", "ClusterRole")
    }
    namespaces.ensure(AUDIT_NAMESPACE)
    namespaces.wait_usable(AUDIT_NAMESPACE)
    web = deployment("web", AUDIT_NAMESPACE, replicas=1, resources=hami_resources(50, 20480))
    del web["status"]
    cronjob = in_namespace(table.cronjob({"sloscale.io/priority": "low"}), AUDIT_NAMESPACE)
    cronjob["metadata"]["name"] = "retrain"
    cronjob["spec"]["suspend"] = True
    cronjob["spec"]["jobTemplate"]["spec"]["suspend"] = True  # created, never run
    for obj in (web, cronjob):
        assert create(kube, obj, dry_run=False) == (201, "")
    kube.request("POST", f"/api/v1/namespaces/{AUDIT_NAMESPACE}/pods", bare_pod(SPARE_POD))
    eventually(
        "web's replica ready",
        lambda: live_web(kube)["status"].get("readyReplicas") == 1,
    )
    found = Audit(kube, roles, grants_of(roles))
    yield found
    found.withhold(None)
    namespaces.release(AUDIT_NAMESPACE)


def live_web(kube: ControlPlane) -> JsonObj:
    return kube.request("GET", f"/apis/apps/v1/namespaces/{AUDIT_NAMESPACE}/deployments/web")


def bare_pod(name: str, annotations: dict[str, str] | None = None) -> JsonObj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "main", "image": "x"}]},
    }


def slice_of(dep: JsonObj) -> tuple[int, int]:
    """The HAMi slice of web's GPU container: (cores %, memory MiB)."""
    (limits,) = [
        c["resources"]["limits"]
        for c in dep["spec"]["template"]["spec"]["containers"]
        if "nvidia.com/gpucores" in c.get("resources", {}).get("limits", {})
    ]
    return int(limits["nvidia.com/gpucores"]), int(limits["nvidia.com/gpumem"])


# The operations: each starts what makes its calls and returns what stops it.

Operation = Callable[[Audit, RecordingApi], Callable[[], None]]


def discover(audit: Audit, api: RecordingApi) -> Callable[[], None]:
    """Discovery's list + watch caches, cluster-wide (deploy/base is cluster-wide)."""
    cluster = KubernetesCluster(api, audit.options()).start()
    caches = (cluster.deployments, cluster.jobs, cluster.pods, cluster.autoscalers)
    reflectors = [cluster.nodes, *(r for c in caches for r in c.parts)]

    def stop() -> None:
        # each watching or failing first: a reflector stopped between its watch's answer
        # and taking hold of the stream would wait out the watch's timeout
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(
            r.staleness_s() == 0.0 or r.last_error for r in reflectors
        ):
            time.sleep(0.02)
        cluster.close()

    return stop


def scale(audit: Audit, api: RecordingApi) -> Callable[[], None]:
    """A scale (in or out) of a Deployment the cache has not seen (read by GET), marking a
    pod to go first."""
    cluster = KubernetesCluster(api, audit.options())  # not started: no cache
    live = live_web(audit.kube)
    pct, mib = slice_of(live)
    target = Allocation(3 - int(live["spec"]["replicas"]), pct)  # 1 <-> 2, the same slice
    action = ScaleAction(WEB, target, mib, Reason.SCALE_UP, remove_pods=(SPARE_POD,))
    api.record.results += cluster.apply(Plan(scale=(action,)))
    return cluster.close


def retrain(audit: Audit, api: RecordingApi) -> Callable[[], None]:
    """A retraining: the watermark on the Deployment, a Job from its CronJob, their Events."""
    cluster = KubernetesCluster(api, audit.options())
    action = RetrainAction(
        WEB,
        audit.fresh("samples"),
        Reason.RETRAIN_TRIGGERED,
        "new samples",
        job_name=audit.fresh("retrain"),
        template="cronjob/retrain",
    )
    api.record.results += cluster.apply(Plan(retrain=(action,)))
    return cluster.close


def resume(audit: Audit, api: RecordingApi) -> Callable[[], None]:
    """A suspended Job the cache has not seen, resumed."""
    name = audit.fresh("train")
    job = in_namespace(table.job({"sloscale.io/preemptible": "true"}), AUDIT_NAMESPACE)
    job["metadata"]["name"] = name
    job["spec"]["suspend"] = True
    assert create(audit.kube, job, dry_run=False) == (201, "")
    cluster = KubernetesCluster(api, audit.options())
    action = JobAction(WorkloadRef(AUDIT_NAMESPACE, name, "Job"), False, Reason.RESUMED)
    api.record.results += cluster.apply(Plan(jobs=(action,)))
    return cluster.close


def evict(audit: Audit, api: RecordingApi) -> Callable[[], None]:
    """A preemptible bare pod, evicted (the pod cache names it)."""
    name = audit.fresh("batch")
    pod = bare_pod(name, {"sloscale.io/preemptible": "true"})
    audit.kube.request("POST", f"/api/v1/namespaces/{AUDIT_NAMESPACE}/pods", pod)
    cluster = KubernetesCluster(api, audit.options())
    cluster.pods.start()
    eventually("the pod in the cache", lambda: cluster.pods.get(AUDIT_NAMESPACE, name), 10)
    action = JobAction(WorkloadRef(AUDIT_NAMESPACE, name, "Pod"), True, Reason.PREEMPTED)
    api.record.results += cluster.apply(Plan(jobs=(action,)))
    return cluster.close


def lease(audit: Audit, api: RecordingApi) -> Callable[[], None]:
    """Leader election: a Lease created (get: 404), then renewed."""
    config = LeaseConfig(OWN_NAMESPACE, audit.fresh("lease"), 15, 10, 2)
    elector = LeaderElector(api, config, "audit")
    elector.step()
    elector.step()
    return api.close


def state(audit: Audit, api: RecordingApi) -> Callable[[], None]:
    """The controller's memory, cut into every part (``STATE_PART_BYTES`` each): read
    (absent), saved four times (set a and b created, then updated; the head created, then
    updated), and read by a successor after each set's update."""
    for name in object_names(STATE):
        try:
            audit.kube.request("DELETE", f"/api/v1/namespaces/{OWN_NAMESPACE}/configmaps/{name}")
        except ControlPlaneError as e:
            assert ": 404 " in str(e), e
    store = ConfigMapSnapshotStore(api, OWN_NAMESPACE, STATE, max_bytes=STATE_PART_BYTES)
    store.load()
    for _ in SETS:  # a, b: created (an update first: 404)
        store.save(noise(next(audit.names)))
    for _ in SETS:  # a, b: updated, and each read whole
        document = noise(next(audit.names))
        store.save(document)
        loaded = ConfigMapSnapshotStore(
            api, OWN_NAMESPACE, STATE, max_bytes=STATE_PART_BYTES
        ).load()
        assert loaded == document or audit.withheld is not None
    return api.close


def noise(n: int) -> dict[str, Any]:
    """A memory that does not compress: ``MAX_PARTS`` parts of ``STATE_PART_BYTES``."""
    text = base64.b64encode(os.urandom(int((MAX_PARTS - 0.5) * STATE_PART_BYTES))).decode()
    return {"n": n, "noise": text}


OPS: dict[str, Operation] = {
    "discover": discover,
    "scale": scale,
    "retrain": retrain,
    "resume": resume,
    "evict": evict,
    "lease": lease,
    "state": state,
}


def run(audit: Audit, name: str, until: Callable[[Record], object], what: str) -> Record:
    """Operation ``name`` as sloscale's ServiceAccount, until ``until`` holds; then stopped."""
    record = Record()
    api = RecordingApi(load_api(str(audit.kube.kubeconfig(CONTROLLER))), record)
    stop = OPS[name](audit, api)
    try:
        eventually(f"{name}: {what}", lambda: until(record), 15)
    finally:
        stop()
    return record


def expected(call: ApiCall, status: int) -> bool:
    """A refusal the adapter expects: a Lease or ConfigMap not there yet (a part of the
    state is updated first, created on a 404), or a write that
    carried the resourceVersion it read when a controller had written the object since
    (its status): the adapter reads it again and retries, and its result says if it got
    through."""
    absent = status == 404 and call.verb == "get" and call.resource in ("leases", "configmaps")
    # a part of the state replaced where it is, created where it is not yet
    part = status == 404 and call.verb == "update" and call.resource == "configmaps"
    return absent or part or (status == 409 and call.verb == "patch")


def all_succeeded(grants: Sequence[Grant], record: Record) -> bool:
    return all(record.succeeded(g) for g in grants)


def test_every_grant_is_needed_by_a_named_operation(audit: Audit) -> None:
    """deploy/base grants exactly what ``NEEDS`` names (a grant no operation needs would be
    left out of it, and fail here), each once."""
    keys = [g.key for g in audit.grants]
    assert len(keys) == len(set(keys)), keys
    assert set(keys) == set(NEEDS), set(keys) ^ set(NEEDS)
    assert set(NEEDS.values()) == set(OPS)


def test_one_full_set_of_the_adapters_calls_succeeds(audit: Audit) -> None:
    """As sloscale's ServiceAccount with exactly deploy/base's roles, every operation's calls
    succeed (but those ``expected`` to fail and retried) and so do its actions, and each grant is
    used by a successful call of the operation named for it; then a resize, a server-side
    apply, from a snapshot of the started caches."""
    audit.withhold(None)
    for name in OPS:
        needed = [g for g in audit.grants if NEEDS[g.key] == name]
        record = run(audit, name, functools.partial(all_succeeded, needed), "each grant used")
        failed = [(c, s) for c, s in record.answers if s >= 300 and not expected(c, s)]
        assert not failed, (name, failed, record.errors)
        assert all(r.ok for r in record.results), (name, record.results)

    record = Record()
    api = RecordingApi(load_api(str(audit.kube.kubeconfig(CONTROLLER))), record)
    cluster = KubernetesCluster(api, audit.options()).start()
    try:

        def settled() -> DeploymentState | None:
            found = [d for d in cluster.snapshot().deployments if d.ref == WEB]
            return found[0] if found and not found[0].rollout_in_progress else None

        dep = eventually("web's scaling done, as the adapter sees it", settled)
        new_slice = 30 if dep.slice_pct != 30 else 40
        action = ScaleAction(WEB, Allocation(dep.replicas, new_slice), 10240, Reason.SCALE_UP)
        (result,) = cluster.apply(Plan(scale=(action,)))
    finally:
        cluster.close()
    assert result.ok and f"->{new_slice} %" in result.message, result.message
    assert slice_of(live_web(audit.kube)) == (new_slice, 10240)


def test_the_adapter_stops_at_once_after_its_first_sync(audit: Audit) -> None:
    """``close()`` right after the caches' first sync, when each reflector is opening its
    watch: a real API server may send nothing on a watch for minutes (the fake sends a
    bookmark every 0.2 s), so a stop that came before the stream was held used to wait out
    the reflector's join (5 s), its thread left reading until the watch's timeout."""
    audit.withhold(None)
    for _ in range(3):
        cluster = KubernetesCluster(
            load_api(str(audit.kube.kubeconfig(CONTROLLER))), audit.options()
        )
        assert cluster.start().wait_synced(10)
        started = time.monotonic()
        cluster.close()
        assert time.monotonic() - started < 3.0  # 5 s (stop()'s join) when it missed one


@pytest.mark.parametrize(
    "key",
    sorted(NEEDS, key=str),
    ids=lambda k: f"{k[2]} {k[1]}.{k[0] or 'core'}" + (f" {k[3]}" if k[3] else ""),
)
def test_without_the_grant_its_call_is_forbidden(audit: Audit, key: GrantKey) -> None:
    """deploy/base's roles but this one grant: the operation that needs it is refused 403 by
    the real authoriser, for the call that needs it."""
    grant = audit.grant(key)
    audit.withhold(grant)
    record = run(audit, NEEDS[key], lambda r: r.forbidden(grant), f"{grant} refused")
    refusal = record.forbidden(grant)
    assert refusal is not None
    assert refusal.reason == "Forbidden", refusal.describe()
    assert f'User "{CONTROLLER}" cannot {grant.verb} resource "{grant.resource}"' in refusal.message
    assert not record.succeeded(grant)
