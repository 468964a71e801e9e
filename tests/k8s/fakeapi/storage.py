"""The fake API server's object store: resourceVersions, the event log, CRUD and patches."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.k8s.fakeapi import fields
from tests.k8s.fakeapi.kinds import ApiFailureError, JsonObj, Kind
from tests.k8s.fakeapi.patches import (
    json_merge_patch,
    label_selector_matches,
    strategic_merge_patch,
)
from tests.k8s.fakeapi.validation import invalid, validate


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StoredEvent:
    """One change in the event log that watches read (``rv``: its resourceVersion)."""

    rv: int
    kind: Kind
    type: str
    obj: JsonObj
    old: JsonObj | None


class Storage:
    """Objects by (plural, namespace, name), and every change since the last compaction.

    The state is set up by ``FakeApiServer.__post_init__`` and guarded by ``_cond``.
    """

    _objects: dict[tuple[str, str, str], JsonObj]
    _events: list[StoredEvent]
    _rv: int
    _compacted_rv: int
    _cond: threading.Condition

    def _stamp(self, kind: Kind, obj: JsonObj, old: JsonObj | None) -> JsonObj:
        meta = obj.setdefault("metadata", {})
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        if old is None:
            meta["uid"] = meta.get("uid") or str(uuid.uuid4())
            meta["creationTimestamp"] = meta.get("creationTimestamp") or _now()
            if kind.has_generation:
                meta["generation"] = 1
        else:
            om = old["metadata"]
            meta["uid"], meta["creationTimestamp"] = om["uid"], om["creationTimestamp"]
            if kind.has_generation:
                changed = obj.get("spec") != old.get("spec")
                meta["generation"] = int(om.get("generation", 1)) + (1 if changed else 0)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        return obj

    def _commit(
        self, kind: Kind, key: tuple[str, str, str], type_: str, new: JsonObj, old: JsonObj | None
    ) -> None:
        self._objects[key] = new
        self._events.append(StoredEvent(self._rv, kind, type_, copy.deepcopy(new), old))
        self._cond.notify_all()

    def _key(self, kind: Kind, ns: str, name: str) -> tuple[str, str, str]:
        return (kind.plural, ns if kind.namespaced else "", name)

    def _get(self, kind: Kind, ns: str, name: str) -> JsonObj:
        obj = self._objects.get(self._key(kind, ns, name))
        if obj is None:
            raise ApiFailureError(
                404,
                "NotFound",
                f'{kind.qualified} "{name}" not found',
                {"name": name, "group": kind.group, "kind": kind.plural},
            )
        return obj

    def _list(self, kind: Kind, ns: str, query: Mapping[str, str]) -> JsonObj:
        selector = query.get("labelSelector", "")
        with self._cond:
            items = [
                {k: v for k, v in copy.deepcopy(o).items() if k not in ("kind", "apiVersion")}
                for (p, ons, _), o in sorted(self._objects.items())
                if p == kind.plural
                and (not ns or ons == ns)
                and label_selector_matches(selector, o["metadata"].get("labels") or {})
            ]
            rv = str(self._rv)
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    def _create(
        self, kind: Kind, ns: str, body: Any, manager: str, *, operation: str = "Update"
    ) -> JsonObj:
        """POST (``operation="Update"``); ``"Apply"``: an apply that creates the object."""
        if not isinstance(body, dict):
            raise ApiFailureError(400, "BadRequest", "the body of the request was not an object")
        meta = body.setdefault("metadata", {})
        if kind.namespaced:
            if meta.get("namespace") not in (None, "", ns):
                raise ApiFailureError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request",
                )
            meta["namespace"] = ns
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                invalid(
                    kind,
                    "",
                    [("metadata.name", "Required value: name or generateName is required")],
                )
        name = meta["name"]
        key = self._key(kind, ns, name)
        if key in self._objects:
            raise ApiFailureError(
                409,
                "AlreadyExists",
                f'{kind.qualified} "{name}" already exists',
                {"name": name, "group": kind.group, "kind": kind.plural},
            )
        meta.pop("resourceVersion", None)
        meta.pop("managedFields", None)
        validate(kind, body)
        if operation == "Apply":
            new = self._stamp(kind, fields.apply(kind, {}, body, manager, False), None)
        else:
            new = self._stamp(kind, copy.deepcopy(body), None)
            fields.record_update(kind, None, new, manager)
        self._commit(kind, key, "ADDED", new, None)
        return copy.deepcopy(new)

    def _update(self, kind: Kind, ns: str, name: str, body: Any, manager: str) -> JsonObj:
        current = self._get(kind, ns, name)
        if not isinstance(body, dict):
            raise ApiFailureError(400, "BadRequest", "the body of the request was not an object")
        if (body.get("metadata") or {}).get("name") != name:
            raise ApiFailureError(
                400, "BadRequest", "the name of the object does not match the URL"
            )
        return self._store_update(kind, ns, name, current, copy.deepcopy(body), manager)

    def _store_update(
        self,
        kind: Kind,
        ns: str,
        name: str,
        current: JsonObj,
        new: JsonObj,
        manager: str | None,
    ) -> JsonObj:
        """Store ``new`` over ``current``; ``manager`` is the update's field manager, or
        ``None`` when ``new`` carries its managedFields already (an apply's)."""
        sent_rv = (new.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            raise self._conflict(kind, name)
        if kind.has_status:  # the main resource ignores status; /status owns it
            if "status" in current:
                new["status"] = copy.deepcopy(current["status"])
            else:
                new.pop("status", None)
        if kind.namespaced:
            new.setdefault("metadata", {})["namespace"] = ns
        validate(kind, new)
        if manager is not None:
            fields.record_update(kind, current, new, manager)
        stamped = self._stamp(kind, new, current)
        self._commit(kind, self._key(kind, ns, name), "MODIFIED", stamped, current)
        return copy.deepcopy(stamped)

    def _patch(
        self, kind: Kind, ns: str, name: str, body: Any, ctype: str, manager: str
    ) -> JsonObj:
        current = self._get(kind, ns, name)
        patched = self._apply_patch(current, body, ctype)
        return self._store_update(kind, ns, name, current, patched, manager)

    def _server_side_apply(
        self, kind: Kind, ns: str, name: str, body: Any, manager: str, force: bool
    ) -> JsonObj:
        """``PATCH`` with ``application/apply-patch+yaml`` (``fields.apply``). The body must
        name ``apiVersion`` and ``kind``; its ``metadata.resourceVersion``, if any, is a
        precondition. Not modelled: creating an object by applying it (404 here)."""
        if not manager:
            raise ApiFailureError(400, "BadRequest", "fieldManager is required for apply requests")
        if not isinstance(body, dict):
            raise ApiFailureError(400, "BadRequest", "the body of the request was not an object")
        if body.get("apiVersion") != kind.api_version or body.get("kind") != kind.kind:
            raise ApiFailureError(
                400,
                "BadRequest",
                f"the apply configuration must name apiVersion {kind.api_version!r} and kind "
                f"{kind.kind!r}",
            )
        config = copy.deepcopy(body)
        meta = config.setdefault("metadata", {})
        if meta.get("name") not in (None, name):
            raise ApiFailureError(
                400, "BadRequest", "the name of the object does not match the URL"
            )
        if "managedFields" in meta:
            raise ApiFailureError(
                400, "BadRequest", "metadata.managedFields must be nil in an apply configuration"
            )
        current = self._get(kind, ns, name)
        sent_rv = meta.pop("resourceVersion", None)
        if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            raise self._conflict(kind, name)
        new = fields.apply(kind, current, config, manager, force)
        return self._store_update(kind, ns, name, current, new, None)

    def _apply_patch(self, current: JsonObj, body: Any, ctype: str) -> JsonObj:
        media = ctype.split(";", maxsplit=1)[0].strip()
        if media == "application/merge-patch+json":
            out: JsonObj = json_merge_patch(current, body)
        elif media == "application/strategic-merge-patch+json":
            out = strategic_merge_patch(current, body)
        else:
            raise ApiFailureError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format: {media}",
            )
        sent_rv = ((body or {}).get("metadata") or {}).get("resourceVersion")
        out.setdefault("metadata", {})["resourceVersion"] = (
            sent_rv or current["metadata"]["resourceVersion"]
        )
        return out

    def _delete(self, kind: Kind, ns: str, name: str) -> JsonObj:
        current = self._get(kind, ns, name)
        self._objects.pop(self._key(kind, ns, name))
        self._rv += 1
        gone = copy.deepcopy(current)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._events.append(StoredEvent(self._rv, kind, "DELETED", gone, current))
        self._cond.notify_all()
        return gone

    def _conflict(self, kind: Kind, name: str) -> ApiFailureError:
        return ApiFailureError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            {"name": name, "group": kind.group, "kind": kind.plural},
        )


__all__ = ["Storage", "StoredEvent"]
