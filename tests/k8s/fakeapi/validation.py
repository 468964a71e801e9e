"""The API server's validation of the objects written: ``422 Invalid`` with field causes."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from tests.k8s.fakeapi.kinds import ApiFailureError, JsonObj, Kind
from tests.k8s.fakeapi.patches import object_selector_matches

NATIVE_RESOURCES = ("cpu", "memory", "ephemeral-storage", "hugepages-")


def invalid(kind: Kind, name: str, errors: list[tuple[str, str]]) -> None:
    text = ", ".join(f"{f}: {m}" for f, m in errors)
    raise ApiFailureError(
        422,
        "Invalid",
        f'{kind.group_kind} "{name}" is invalid: {text}',
        {
            "name": name,
            "group": kind.group,
            "kind": kind.kind,
            "causes": [
                {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in errors
            ],
        },
    )


def validate(kind: Kind, obj: JsonObj) -> None:
    errors: list[tuple[str, str]] = []
    name = obj["metadata"].get("name", "")
    for k, v in (obj["metadata"].get("annotations") or {}).items():
        if not isinstance(v, str):
            errors.append((f"metadata.annotations[{k}]", "Invalid value: must be a string"))
    spec = obj.get("spec") or {}
    if kind.kind == "Deployment":
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or replicas < 0:
            errors.append(
                (
                    "spec.replicas",
                    f"Invalid value: {replicas}: must be greater than or equal to 0",
                )
            )
        selector = spec.get("selector")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector:
            errors.append(("spec.selector", "Required value"))
        elif not object_selector_matches(selector, labels):
            errors.append(
                (
                    "spec.template.metadata.labels",
                    f"Invalid value: {json.dumps(labels)}: `selector` does not match "
                    "template `labels`",
                )
            )
    if kind.kind in ("Deployment", "Job"):
        errors += _resource_errors(
            (spec.get("template") or {}).get("spec") or {}, "spec.template.spec"
        )
    if kind.kind == "Pod":
        errors += _resource_errors(spec, "spec")
    if kind.kind == "Lease":
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            errors.append(("spec.leaseDurationSeconds", "Invalid value: must be greater than 0"))
    if kind.kind == "Event":
        inv_ns = (obj.get("involvedObject") or {}).get("namespace")
        if inv_ns and inv_ns != obj["metadata"].get("namespace"):
            errors.append(
                ("involvedObject.namespace", "Invalid value: does not match event.namespace")
            )
    if kind.kind == "ConfigMap":
        errors += _configmap_errors(obj)
    if errors:
        invalid(kind, name, errors)


CONFIGMAP_MAX_BYTES = 1024 * 1024
"""What a ConfigMap's data and binaryData may hold together (``corev1.MaxSecretSize``)."""


def _configmap_errors(obj: JsonObj) -> list[tuple[str, str]]:
    """As ``ValidateConfigMap``: binaryData base64 (counted decoded), no key in both maps, at
    most 1 MiB in all."""
    errors: list[tuple[str, str]] = []
    data = obj.get("data") or {}
    total = sum(len(str(v).encode()) for v in data.values())
    for key, value in (obj.get("binaryData") or {}).items():
        if key in data:
            errors.append((f"binaryData[{key}]", "Invalid value: duplicate of key present in data"))
        try:
            total += len(base64.b64decode(str(value), validate=True))
        except (binascii.Error, ValueError):
            errors.append((f"binaryData[{key}]", "Invalid value: illegal base64 data"))
    if total > CONFIGMAP_MAX_BYTES:
        errors.append(("[]", f"Too long: must have at most {CONFIGMAP_MAX_BYTES} bytes"))
    return errors


def _resource_errors(pod_spec: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    """Extended resources: whole numbers, limits required, requests equal to limits."""
    errors = []
    for i, c in enumerate(pod_spec.get("containers") or []):
        res = c.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        base = f"{path}.containers[{i}].resources"
        for key in sorted(set(limits) | set(requests)):
            if key.startswith(NATIVE_RESOURCES) or "/" not in key:
                continue
            for where, values in (("limits", limits), ("requests", requests)):
                if key in values and not re.fullmatch(r"[0-9]+", str(values[key])):
                    errors.append(
                        (
                            f"{base}.{where}[{key}]",
                            f'Invalid value: "{values[key]}": must be an integer',
                        )
                    )
            if key in requests and key not in limits:
                errors.append(
                    (
                        f"{base}.limits",
                        "Required value: Limit must be set for non overcommitable resources",
                    )
                )
            elif key in requests and str(requests[key]) != str(limits[key]):
                errors.append(
                    (
                        f"{base}.requests",
                        f'Invalid value: "{requests[key]}": must be equal to {key} limit '
                        f"of {limits[key]}",
                    )
                )
    return errors


__all__ = ["invalid", "validate"]
