"""The controller's saved memory (``controller.persist``) in a ConfigMap of its own.

``ConfigMapSnapshotStore`` implements the ``StateSnapshotStore`` port on one ConfigMap in the
controller's namespace (``sloscale-state`` by default; ``sloscale run --state-configmap``),
the document as JSON under ``data["state.json"]``. A restarted controller, or a follower that
becomes the leader, reads it and goes on from it (``controller.keeper``).

- **Written only when it changed**: the text last read or written is kept, and a save of the
  same text makes no request.
- **Guarded by resourceVersion**: an update carries the version last read or written, so a
  write by anyone else in between (a former leader that has not noticed yet) is never
  overwritten unseen: the 409 is logged, the ConfigMap read again, and the next save replaces
  it knowingly. Created when absent (a 409 ``AlreadyExists`` means another replica was
  first: it is read, then updated).
- **Only the leader writes** (``leader``: anything with ``is_leader()``), checked before each
  write, as the cluster adapter does; a follower's ticks are in shadow mode and do not save.
- **Never raises**: a failed read is a cold start, a failed write is logged and tried again
  at the next save. A document over ``max_bytes`` (a ConfigMap holds at most 1 MiB) is not
  written.

RBAC (deploy/base/rbac.yaml): ``get`` and ``update`` on this ConfigMap by name, ``create`` on
ConfigMaps in the controller's namespace (the API cannot restrict a create by name).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from actuators.kubernetes.api import CONFIGMAPS, ApiError, KubeApi
from actuators.kubernetes.cluster import LeaderGate

log = logging.getLogger("sloscale.kubernetes.state")

DATA_KEY = "state.json"
DEFAULT_NAME = "sloscale-state"
MAX_BYTES = 900 * 1024
"""Under the 1 MiB a ConfigMap holds, with room for its metadata."""
CONFLICT, NOT_FOUND = 409, 404


class ConfigMapSnapshotStore:
    """One ConfigMap holding the controller's saved memory."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        name: str = DEFAULT_NAME,
        *,
        leader: LeaderGate | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.leader = leader
        self.max_bytes = max_bytes
        self._version: str | None = None  # resourceVersion last read or written
        self._text: str | None = None  # the document it holds, as far as we know

    # ---- the port ----------------------------------------------------------------------------

    def load(self) -> object | None:
        """The saved document, or ``None`` (none yet, unreadable: a cold start)."""
        try:
            text = self._read()
        except ApiError as e:
            log.warning("cannot read the saved controller state: %s", e.describe())
            return None
        except Exception:
            log.exception("cannot read the saved controller state")
            return None
        if text is None:
            return None
        try:
            document: object = json.loads(text)
        except ValueError as e:
            where = f"ConfigMap {self.namespace}/{self.name}"
            log.warning("%s: %s is not JSON: %s", where, DATA_KEY, e)
            return None
        return document

    def save(self, document: Mapping[str, Any]) -> bool:
        """Write ``document`` if it changed and this replica leads; whether it is kept."""
        if self.leader is not None and not self.leader.is_leader():
            return False
        try:
            text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            log.warning("controller state not saved: not JSON: %s", e)
            return False
        if text == self._text:
            return True
        if len(text.encode()) > self.max_bytes:
            log.error(
                "controller state not saved: %d bytes, over the %d a ConfigMap can hold",
                len(text.encode()),
                self.max_bytes,
            )
            return False
        try:
            self._write(text)
        except ApiError as e:
            self._after_failed_write(e)
            return False
        except Exception:
            log.exception("saving the controller state failed")
            return False
        return True

    # ---- requests ----------------------------------------------------------------------------

    def _read(self) -> str | None:
        try:
            obj = self.api.get(CONFIGMAPS, self.name, self.namespace)
        except ApiError as e:
            if e.status != NOT_FOUND:
                raise
            self._version = self._text = None
            return None
        self._version = str((obj.get("metadata") or {}).get("resourceVersion") or "") or None
        data = obj.get("data") or {}
        text = data.get(DATA_KEY)
        self._text = text if isinstance(text, str) else None
        if self._text is None:
            log.warning("ConfigMap %s/%s has no %s", self.namespace, self.name, DATA_KEY)
        return self._text

    def _write(self, text: str) -> None:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {
                    "app.kubernetes.io/name": "sloscale",
                    "app.kubernetes.io/component": "controller-state",
                },
            },
            "data": {DATA_KEY: text},
        }
        if self._version is None:
            try:
                written = self.api.create(CONFIGMAPS, body, self.namespace)
            except ApiError as e:
                if e.status != CONFLICT:
                    raise
                self._read()  # another replica created it first: update what it holds
                if self._version is None:
                    raise
                body["metadata"]["resourceVersion"] = self._version
                written = self.api.replace(CONFIGMAPS, self.name, body, self.namespace)
        else:
            body["metadata"]["resourceVersion"] = self._version
            written = self.api.replace(CONFIGMAPS, self.name, body, self.namespace)
        self._version = str((written.get("metadata") or {}).get("resourceVersion") or "") or None
        self._text = text

    def _after_failed_write(self, e: ApiError) -> None:
        if e.status == CONFLICT:
            log.warning(
                "ConfigMap %s/%s changed since it was read: reading it again before the next "
                "save (%s)",
                self.namespace,
                self.name,
                e.message,
            )
        elif e.status == NOT_FOUND:
            log.warning("ConfigMap %s/%s was deleted: creating it again", self.namespace, self.name)
        else:
            log.warning("saving the controller state failed: %s", e.describe())
            return
        try:
            self._read()
        except Exception as again:  # the next save tries again from scratch
            log.warning("reading the controller state again failed: %s", again)
            self._version = self._text = None


__all__ = ["DATA_KEY", "DEFAULT_NAME", "MAX_BYTES", "ConfigMapSnapshotStore"]
