"""deploy/agent: ``sloscale agent`` as a DaemonSet, read the way the cluster would run it.

Its arguments are parsed by the real CLI parser, its RBAC is held against the kubelet's own
mapping of requests to ``nodes`` subresources, and its PodMonitor against the pods it must
select and the labels the controller reads by default. tests/k8s/test_real_agent.py asks a
real API server's authoriser the kubelet's questions; tests/prometheus/test_agent_scrape.py
scrapes the agent as this PodMonitor does and reads it through the controller's source.
"""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from actuators.prometheus.gpu import EXPORTED
from sloscale.cli import build_parser, run_options
from tests.k8s.fakeapi import Request, Rule, rules_from_role
from tests.k8s.test_deploy import build

JsonObj = dict[str, Any]

NAMESPACE = "sloscale-agent"
SERVICE_ACCOUNT = {"kind": "ServiceAccount", "name": "sloscale-agent", "namespace": NAMESPACE}


@functools.cache
def rendered() -> tuple[JsonObj, ...]:
    return tuple(build("agent"))


def one(kind: str) -> JsonObj:
    (found,) = [d for d in rendered() if d["kind"] == kind]
    return found


def pod_spec() -> JsonObj:
    spec: JsonObj = one("DaemonSet")["spec"]["template"]["spec"]
    return spec


def container() -> JsonObj:
    c: JsonObj
    (c,) = pod_spec()["containers"]
    return c


def env(name: str) -> JsonObj:
    found: JsonObj
    (found,) = [e for e in container()["env"] if e["name"] == name]
    return found


# ---- the container's command line ------------------------------------------------------------


def test_the_args_parse_as_sloscale_agent() -> None:
    args = build_parser().parse_args(container()["args"])
    assert args.command == "agent"
    assert not args.once
    (port,) = container()["ports"]
    assert (args.host, args.port) == ("0.0.0.0", port["containerPort"])
    assert port["name"] == "metrics" and port["protocol"] == "TCP"


def test_every_variable_the_args_name_is_in_the_containers_env() -> None:
    """Kubernetes expands ``$(NAME)`` in args only for a variable of the container's env; an
    unknown one is passed on literally (a kubelet URL with ``$(HOST_IP)`` in it)."""
    names = {e["name"] for e in container()["env"]}
    used = {
        m for a in container()["args"] for m in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a)
    }
    assert used and used <= names


def test_the_host_proc_mount_is_the_proc_root() -> None:
    args = build_parser().parse_args(container()["args"])
    (mount,) = container()["volumeMounts"]
    assert Path(mount["mountPath"]) == args.proc_root != Path("/proc")
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod_spec()["volumes"] if v["name"] == mount["name"]]
    assert volume["hostPath"] == {"path": "/proc", "type": "Directory"}
    # NVML names processes by host PID: the pod must be in the host's PID namespace
    assert pod_spec()["hostPID"] is True


def test_the_kubelet_is_its_own_nodes() -> None:
    args = build_parser().parse_args(container()["args"])
    url = urlsplit(args.kubelet_url)
    assert (url.scheme, url.hostname, url.port, url.path) == ("https", "$(host_ip)", 10250, "/pods")
    assert env("HOST_IP")["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert not pod_spec().get("hostNetwork")  # the downward API instead (daemonset.yaml)


def test_the_hostname_label_is_the_node_name() -> None:
    """As dcgm-exporter: NODE_NAME, which the agent prefers to the pod's own host name."""
    assert env("NODE_NAME")["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_it_runs_the_controllers_image() -> None:
    (controller,) = [d for d in build("base") if d["kind"] == "Deployment"]
    (c,) = controller["spec"]["template"]["spec"]["containers"]
    assert container()["image"] == c["image"] == "ghcr.io/sloscale/sloscale:0.1.0"


# ---- GPU nodes, and NVML without taking a card -----------------------------------------------


def test_it_runs_on_gpu_nodes_only_and_tolerates_their_taint() -> None:
    terms = pod_spec()["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    keys = {
        (e["key"], e["operator"], tuple(e["values"]))
        for t in terms["nodeSelectorTerms"]
        for e in t["matchExpressions"]
    }
    assert keys == {
        ("nvidia.com/gpu.present", "In", ("true",)),  # the GPU operator's
        ("feature.node.kubernetes.io/pci-10de.present", "In", ("true",)),  # NFD's
    }
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod_spec()[
        "tolerations"
    ]


def test_it_requests_no_gpu_and_sees_every_card_through_the_runtime() -> None:
    resources = container()["resources"]
    asked = set(resources.get("requests", {})) | set(resources.get("limits", {}))
    assert asked == {"cpu", "memory"}  # no nvidia.com/gpu, nor any other device resource
    assert "memory" in resources["limits"]
    assert env("NVIDIA_VISIBLE_DEVICES")["value"] == "all"
    assert env("NVIDIA_DRIVER_CAPABILITIES")["value"] == "utility"  # NVML, no CUDA
    assert pod_spec()["runtimeClassName"] == "nvidia"


def test_the_pod_takes_from_the_host_only_its_pids_and_proc() -> None:
    spec, c = pod_spec(), container()
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert not spec.get("hostNetwork") and not spec.get("hostIPC")
    assert all("hostPort" not in p for p in c["ports"])
    assert [v["name"] for v in spec["volumes"] if "hostPath" in v] == ["host-proc"]
    assert spec["priorityClassName"] == "system-node-critical"
    namespace = one("Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_the_probes_use_what_the_agent_serves() -> None:
    """The agent's server answers ``/healthz`` (200 while it serves) and ``/metrics`` (500 when
    a collection fails): actuators/nvml/agent.py."""
    c = container()
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}


# ---- RBAC: what the kubelet asks for /pods, and nothing else ---------------------------------

KUBELET_SUBRESOURCES = {
    "/pods": ("pods", "proxy"),
    "/runningPods/": ("pods", "proxy"),
    "/healthz": ("healthz", "proxy"),
    "/configz": ("configz", "proxy"),
    "/flagz": ("configz",),
    "/stats/summary": ("stats",),
    "/metrics/cadvisor": ("metrics",),
    "/logs/": ("log",),
    "/checkpoint/ns/pod/c": ("checkpoint",),
    "/statusz": ("statusz",),
    "/spec/": ("proxy",),
    "/containerLogs/ns/pod/c": ("proxy",),
    "/exec/ns/pod/c": ("proxy",),
    "/run/ns/pod/c": ("proxy",),
    "/attach/ns/pod/c": ("proxy",),
    "/portForward/ns/pod": ("proxy",),
}
"""The ``nodes`` subresources the kubelet authorises a request to each path with, in order, any
one sufficing (``pkg/kubelet/server/auth.go``, Kubernetes v1.37.2, KubeletFineGrainedAuthz on:
the default since 1.33, GA in 1.36; off, every path in the first group is ``proxy`` only)."""
KUBELET_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}


def bound_rules() -> list[Rule]:
    docs = rendered()
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
    rules: list[Rule] = []
    for binding in (d for d in docs if d["kind"] == "ClusterRoleBinding"):
        assert binding["subjects"] == [SERVICE_ACCOUNT]
        rules += rules_from_role(roles[binding["roleRef"]["name"]])
    return rules


def kubelet_allows(rules: list[Rule], method: str, path: str, node: str = "gpu-1") -> bool:
    """The kubelet's decision for the agent's token: allowed when any attribute is."""
    for subresource in KUBELET_SUBRESOURCES[path]:
        request = Request(
            method=method,
            path=path,
            verb=KUBELET_VERBS[method],
            group="",
            resource=f"nodes/{subresource}",
            namespace=None,
            name=node,
            user_agent="kubelet",
            content_type="",
            body=None,
            time_s=0.0,
        )
        if any(r.allows(request) for r in rules):
            return True
    return False


def test_rbac_is_one_grant_get_nodes_pods() -> None:
    grants = [
        (g, res, v, r.namespace, r.resource_names)
        for r in bound_rules()
        for g, res, v in itertools.product(r.api_groups, r.resources, r.verbs)
    ]
    assert grants == [("", "nodes/pods", "get", None, ())]


def test_rbac_lets_the_kubelet_answer_pods_and_nothing_else() -> None:
    """GET /pods, what the agent sends (``--kubelet-url``), is allowed; of every path and verb
    of the kubelet's API only the other one the same subresource covers (GET /runningPods/)
    is, and never ``nodes/proxy`` (exec, run, attach, port-forward)."""
    rules = bound_rules()
    allowed = {
        (method, path)
        for method, path in itertools.product(KUBELET_VERBS, KUBELET_SUBRESOURCES)
        if kubelet_allows(rules, method, path)
    }
    assert allowed == {("GET", "/pods"), ("GET", "/runningPods/")}
    args = build_parser().parse_args(container()["args"])
    assert urlsplit(args.kubelet_url).path == "/pods"


def test_the_service_account_is_the_pods() -> None:
    assert pod_spec()["serviceAccountName"] == one("ServiceAccount")["metadata"]["name"]
    assert pod_spec()["automountServiceAccountToken"] is True  # the kubelet's bearer token
    assert one("DaemonSet")["metadata"]["namespace"] == NAMESPACE


# ---- Prometheus Operator ---------------------------------------------------------------------


def test_the_podmonitor_scrapes_the_agents_pods_on_their_metrics_port() -> None:
    monitor, ds = one("PodMonitor"), one("DaemonSet")
    labels = ds["spec"]["template"]["metadata"]["labels"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector and selector.items() <= labels.items()
    assert selector == ds["spec"]["selector"]["matchLabels"]
    assert monitor["metadata"]["namespace"] == ds["metadata"]["namespace"]  # its own namespace
    assert "namespaceSelector" not in monitor["spec"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == container()["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"


def test_the_podmonitor_gives_the_labels_the_controller_reads_by_default() -> None:
    """honorLabels false: the agent's ``namespace``/``pod`` arrive as ``exported_namespace``/
    ``exported_pod``, the preset deploy/base's controller reads with its default flags."""
    (endpoint,) = one("PodMonitor")["spec"]["podMetricsEndpoints"]
    assert endpoint["honorLabels"] is False
    assert "relabelings" not in endpoint and "metricRelabelings" not in endpoint
    (controller,) = [d for d in build("base") if d["kind"] == "Deployment"]
    (c,) = controller["spec"]["template"]["spec"]["containers"]
    assert run_options(build_parser().parse_args(c["args"])).gpu_labels.dcgm == EXPORTED


@pytest.mark.parametrize("kind", ["DaemonSet", "PodMonitor", "NetworkPolicy", "ServiceAccount"])
def test_everything_is_in_the_agents_namespace(kind: str) -> None:
    assert one(kind)["metadata"]["namespace"] == NAMESPACE


def test_the_network_policy_admits_prometheus_and_reaches_only_the_kubelet() -> None:
    policy = one("NetworkPolicy")["spec"]
    assert policy["podSelector"] == one("DaemonSet")["spec"]["selector"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": 9400, "protocol": "TCP"}]
    (peer,) = ingress["from"]
    assert peer["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    (egress,) = policy["egress"]
    assert egress["ports"] == [{"port": 10250, "protocol": "TCP"}]
