"""The fake API server's field management (``tests/k8s/fakeapi/fields.py``): server-side
apply and managedFields as Kubernetes documents them, which the ownership tests rely on."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from actuators.kubernetes.api import APPLY_PATCH, DEPLOYMENTS, MERGE_PATCH, ApiError, KubeApi
from tests.k8s.conftest import deployment
from tests.k8s.fakeapi import FakeApiServer
from tests.k8s.fakeapi.fields import entries_of, owners

JsonObj = dict[str, Any]
LIMITS = (
    "f:spec",
    "f:template",
    "f:spec",
    "f:containers",
    'k:{"name":"server"}',
    "f:resources",
    "f:limits",
)


def limits_config(limits: dict[str, str], **meta: str) -> JsonObj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ml", **meta},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "server", "resources": {"limits": limits}}]}
            }
        },
    }


def limits_of(server: FakeApiServer) -> dict[str, str]:
    dep = server.obj("Deployment", "ml", "web")
    assert dep is not None
    out: dict[str, str] = dep["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"]
    return out


def test_an_apply_travels_as_json_under_the_apply_type(server: FakeApiServer, api: KubeApi) -> None:
    server.put(deployment("web"))
    api.apply(DEPLOYMENTS, "web", limits_config({"nvidia.com/gpucores": "40"}), "ml", force=True)
    (w,) = server.writes()
    assert (w.method, w.resource, w.content_type) == ("PATCH", "deployments", APPLY_PATCH)
    assert w.query == {"fieldManager": "sloscale", "force": "true"}
    assert w.body == limits_config({"nvidia.com/gpucores": "40"})
    assert limits_of(server)["nvidia.com/gpucores"] == "40"


def test_a_yaml_apply_body_is_read(server: FakeApiServer) -> None:
    server.put(deployment("web"))
    text = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
        "spec:\n  template:\n    spec:\n      containers:\n      - name: server\n"
        "        resources: {limits: {nvidia.com/gpumem: '4096'}}\n"
    )
    request = urllib.request.Request(
        f"{server.url}/apis/apps/v1/namespaces/ml/deployments/web?fieldManager=kubectl",
        data=text.encode(),
        method="PATCH",
        headers={"Content-Type": APPLY_PATCH},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    assert limits_of(server)["nvidia.com/gpumem"] == "4096"


def test_an_apply_names_its_field_manager(server: FakeApiServer) -> None:
    server.put(deployment("web"))
    request = urllib.request.Request(
        f"{server.url}/apis/apps/v1/namespaces/ml/deployments/web",
        data=json.dumps(limits_config({"nvidia.com/gpumem": "1"})).encode(),
        method="PATCH",
        headers={"Content-Type": APPLY_PATCH},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400
    assert "fieldManager" in json.loads(refused.value.read())["message"]


def test_an_apply_on_a_stale_resource_version_is_a_conflict(
    server: FakeApiServer, api: KubeApi
) -> None:
    server.put(deployment("web"))
    stale = limits_config({"nvidia.com/gpucores": "40"}, resourceVersion="1")
    with pytest.raises(ApiError) as refused:
        api.apply(DEPLOYMENTS, "web", stale, "ml", force=True)
    assert refused.value.status == 409 and refused.value.reason == "Conflict"
    assert limits_of(server)["nvidia.com/gpucores"] == "50"


def test_what_an_apply_leaves_out_is_removed_unless_another_manager_owns_it(
    server: FakeApiServer,
) -> None:
    server.put(deployment("web", resources={"limits": {}}))
    both = {"nvidia.com/gpu": "1", "nvidia.com/gpucores": "40", "nvidia.com/gpumem": "8192"}
    server.apply(limits_config(both), "sloscale")
    server.apply(limits_config({"nvidia.com/gpu": "1"}), "argocd")  # the same value: shared
    assert owners(server.obj("Deployment", "ml", "web") or {}, (*LIMITS, "f:nvidia.com/gpu")) == [
        "argocd",
        "sloscale",
    ]
    server.apply(limits_config({"nvidia.com/gpucores": "40"}), "sloscale")
    assert limits_of(server) == {"nvidia.com/gpu": "1", "nvidia.com/gpucores": "40"}


def test_an_update_takes_the_fields_it_changes(server: FakeApiServer, api: KubeApi) -> None:
    server.put(deployment("web", resources={"limits": {}}))
    server.apply(limits_config({"nvidia.com/gpucores": "40"}), "argocd")
    body = {"spec": {"replicas": 5}, "metadata": {"labels": {"app": "web", "team": "a"}}}
    api.patch(DEPLOYMENTS, "web", body, "ml", content_type=MERGE_PATCH)
    dep = server.obj("Deployment", "ml", "web")
    assert dep is not None
    assert owners(dep, ("f:spec", "f:replicas")) == ["sloscale"]
    assert owners(dep, ("f:metadata", "f:labels", "f:team")) == ["sloscale"]
    assert owners(dep, (*LIMITS, "f:nvidia.com/gpucores")) == ["argocd"]
    assert entries_of(dep)[("sloscale", "Update", "")] == {
        ("f:spec", "f:replicas"),
        ("f:metadata", "f:labels", "f:team"),
    }
