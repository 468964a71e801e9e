"""deploy/agent's RBAC on a real API server, asked what the kubelet asks it (issue #24).

The kubelet authorises a request to its HTTPS API with a SubjectAccessReview on the node
object: ``nodes/<subresource>`` by path, several in order for some paths, any one allowed
sufficing (tests/k8s/test_deploy_agent.py lists them, from ``pkg/kubelet/server/auth.go``).
Here the real authoriser (RBAC, with the default roles every authenticated user has) answers
those reviews for the agent's ServiceAccount: before deploy/agent's roles nothing is allowed,
after them GET /pods (what the agent sends) and nothing that ``nodes/proxy`` covers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
import yaml

from tests.k8s.test_deploy_agent import KUBELET_SUBRESOURCES, KUBELET_VERBS, NAMESPACE
from tests.support.gotool import REPO
from tests.support.kube import ControlPlane

AGENT = f"system:serviceaccount:{NAMESPACE}:sloscale-agent"
GROUPS = ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}", "system:authenticated"]
"""The user and groups a TokenReview of the agent's token gives the kubelet."""
NODE = "gpu-node-1"


def rbac_objects(kube: ControlPlane) -> list[dict[str, object]]:
    out = kube.kubectl("kustomize", str(REPO / "deploy" / "agent")).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    return [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def kubelet_allows(kube: ControlPlane, method: str, path: str) -> bool:
    """The kubelet's decision for the agent on ``method path``: any attribute allowed."""
    for subresource in KUBELET_SUBRESOURCES[path]:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": AGENT,
                "groups": GROUPS,
                "resourceAttributes": {
                    "verb": KUBELET_VERBS[method],
                    "version": "v1",
                    "resource": "nodes",
                    "subresource": subresource,
                    "name": NODE,
                },
            },
        }
        answer = kube.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        if answer["status"].get("allowed"):
            return True
    return False


def allowed(kube: ControlPlane) -> set[tuple[str, str]]:
    return {
        (method, path)
        for method, path in itertools.product(KUBELET_VERBS, KUBELET_SUBRESOURCES)
        if kubelet_allows(kube, method, path)
    }


@pytest.fixture(scope="module")
def roles(kube: ControlPlane) -> Iterator[ControlPlane]:
    """deploy/agent's ClusterRole and ClusterRoleBinding, applied; deleted after."""
    objects = rbac_objects(kube)
    assert allowed(kube) == set(), "the agent may reach the kubelet before its roles"
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    kube.kubectl("apply", "--server-side", "-f", "-", stdin=body)
    yield kube
    kube.kubectl("delete", "-f", "-", "--ignore-not-found", stdin=body)


def test_the_kubelet_answers_the_agent_pods_and_nothing_else(roles: ControlPlane) -> None:
    """/runningPods/ is the same subresource as /pods; nothing of ``nodes/proxy``."""
    assert allowed(roles) == {("GET", "/pods"), ("GET", "/runningPods/")}
