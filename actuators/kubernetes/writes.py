"""What ``KubernetesCluster`` writes, computed: Event messages, the last-decision annotation
patch, a pod template patch applied locally, the server-side apply configuration of a resize,
RFC 3339 times. Purely computational."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from actuators.kubernetes import objects as k8s
from controller.domain import Condition, Inventory

JsonObj = dict[str, Any]


EVENT_MESSAGE_LIMIT = 1024
"""Characters of an Event's message that sloscale writes (the API server's limit for the
``note`` of events.k8s.io/v1); a longer condition set is summarised."""


def event_message(change: str, conditions: Sequence[Condition]) -> str:
    """An Event's message: the change, then every condition of the decision.

    When the whole set does not fit ``EVENT_MESSAGE_LIMIT``, each condition is named by its
    type, status and reason only, and the message points to the last-decision annotation,
    which holds the set whole. Purely computational.
    """
    if not conditions:
        return change[:EVENT_MESSAGE_LIMIT]
    whole = "; ".join(
        f"{c.type}={c.as_dict()['status']} {c.reason}: {c.message}" for c in conditions
    )
    full = f"{change}; {whole}"
    if len(full) <= EVENT_MESSAGE_LIMIT:
        return full
    names = ", ".join(f"{c.type}={c.as_dict()['status']} {c.reason}" for c in conditions)
    short = f"{change}; {names} (messages in annotation {k8s.LAST_DECISION})"
    return short[:EVENT_MESSAGE_LIMIT]


def note_patch(obj: Mapping[str, Any], note: str) -> JsonObj:
    """The metadata patch that writes ``note`` as the last decision, or nothing when the
    object already records the same decision (all but its time): the annotation is written
    only when it changes."""
    old = k8s.annotations_of(obj).get(k8s.LAST_DECISION)
    if old is not None and _without_time(old) == _without_time(note):
        return {}
    return {"annotations": {k8s.LAST_DECISION: note}}


def _without_time(note: str) -> object:
    try:
        parsed = json.loads(note)
    except ValueError:
        return None
    if isinstance(parsed, dict):
        parsed.pop("time", None)
    return parsed


def apply_template_patch(template: Mapping[str, Any], patch: Mapping[str, Any]) -> JsonObj:
    """Apply a ``dialects.slice_patch`` locally (maps merge, ``None`` deletes, containers by
    name): enough to tell whether the patch changes anything. Purely computational."""
    out = copy.deepcopy(dict(template))
    ann = (patch.get("metadata") or {}).get("annotations") or {}
    if ann:
        target = out.setdefault("metadata", {}).setdefault("annotations", {})
        _merge(target, ann)
    for pc in (patch.get("spec") or {}).get("containers") or []:
        for c in out.get("spec", {}).get("containers") or []:
            if c.get("name") == pc.get("name"):
                _merge(c.setdefault("resources", {}), pc.get("resources") or {})
    scheduler = (patch.get("spec") or {}).get("schedulerName")
    if scheduler is not None:
        out.setdefault("spec", {})["schedulerName"] = scheduler
    return out


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, Mapping):
            sub = target.get(k)
            if not isinstance(sub, dict):
                sub = target[k] = {}
            _merge(sub, v)
        else:
            target[k] = v


def deletes_fields(patch: Mapping[str, Any]) -> bool:
    """Whether a template patch removes a field (a ``None`` anywhere in it): the keys of
    another dialect, or of another MIG profile, that the new slice replaces."""
    return any(
        v is None
        or (isinstance(v, Mapping) and deletes_fields(v))
        or (isinstance(v, list) and any(isinstance(i, Mapping) and deletes_fields(i) for i in v))
        for v in patch.values()
    )


def resize_apply(
    dep: Mapping[str, Any],
    template_patch: Mapping[str, Any],
    *,
    note: str,
    resource_version: str,
    strategy: Mapping[str, Any] | None = None,
    scheduler_name: str | None = None,
) -> JsonObj:
    """The server-side apply configuration of a resize: the fields sloscale owns, no other.

    That is the ``sloscale.io/last-decision`` annotation (``note``), the GPU container's
    slice resources (limits, and requests where the template has them), named by the
    container's ``name`` (the merge key: the other containers and the container's other
    fields are not in it, so they are left as they are), the pod annotation (``kai``) and
    ``schedulerName`` (``volcano``, ``kai``: ``scheduler_name``, written even when it is
    already there, since a field sloscale applied before and leaves out is removed), and the
    rolling-update bounds it sets (``strategy``). Never ``spec.replicas``: that goes through
    the ``scale`` subresource. ``template_patch`` is a ``dialects.slice_patch`` that deletes
    nothing (``deletes_fields``). ``resource_version`` makes the apply conditional on the
    object it was computed from.
    """
    if deletes_fields(template_patch):
        raise ValueError("an apply configuration cannot delete a field; patch instead")
    m = k8s.meta(dep)
    tspec: JsonObj = {}
    containers = (template_patch.get("spec") or {}).get("containers")
    if containers:
        tspec["containers"] = copy.deepcopy(containers)
    scheduler = (template_patch.get("spec") or {}).get("schedulerName") or scheduler_name
    if scheduler:
        tspec["schedulerName"] = scheduler
    template: JsonObj = {"spec": tspec} if tspec else {}
    pod_annotations = (template_patch.get("metadata") or {}).get("annotations")
    if pod_annotations:
        template["metadata"] = {"annotations": dict(pod_annotations)}
    spec: JsonObj = {"template": template}
    if strategy is not None:
        spec["strategy"] = copy.deepcopy(dict(strategy))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "resourceVersion": resource_version,
            "annotations": {k8s.LAST_DECISION: note},
        },
        "spec": spec,
    }


def fits(inv: Inventory, share_pct: int, memory_mib: int) -> bool:
    """Whether one more pod of this slice can be placed now (any card with room)."""
    used_pct, used_mib = inv.used_pct_by_card(), inv.used_mib_by_card()
    return any(
        c.capacity_pct - used_pct[c.card_id] >= share_pct
        and (c.memory_mib == 0 or c.memory_mib - used_mib[c.card_id] >= memory_mib)
        for c in inv.cards
    )


def rfc3339(t_s: float, *, micro: bool = True) -> str:
    dt = datetime.fromtimestamp(t_s, UTC)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ"
    return dt.strftime(fmt)
