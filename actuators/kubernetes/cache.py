"""List + watch caches (client-go's reflector, in small): discovery without re-listing.

A ``Reflector`` lists a resource once, then watches from the list's ``resourceVersion`` and
applies ``ADDED``/``MODIFIED``/``DELETED`` events to an in-memory store, on its own thread.
The API semantics it relies on (Kubernetes API concepts, "Efficient detection of changes"):

- a watch ends when its ``timeoutSeconds`` run out; the reflector re-watches from the last
  resourceVersion it saw, without listing again;
- ``BOOKMARK`` events (requested with ``allowWatchBookmarks``) carry only a newer
  resourceVersion: the reflector remembers it, so a re-watch after a quiet period does not
  start from a compacted version;
- a resourceVersion too old for the server is answered ``410 Gone`` (as an ``ERROR`` event in
  the stream, or as the HTTP status): the reflector then lists again, and only then;
- any other failure backs off exponentially (capped) and retries; nothing is raised to the
  control loop, which reads ``items()`` and ``synced``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from actuators.kubernetes.api import ApiError, KubeApi, Resource, WatchStream

log = logging.getLogger("sloscale.kubernetes.cache")

JsonObj = dict[str, Any]
GONE = 410


def object_key(obj: JsonObj) -> str:
    m = obj.get("metadata") or {}
    return f"{m.get('namespace') or ''}/{m.get('name') or ''}"


class Reflector:
    """Keeps a local copy of one resource (optionally one namespace and label selector)."""

    def __init__(
        self,
        api: KubeApi,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        watch_timeout_s: int = 300,
        backoff_s: tuple[float, float] = (0.2, 30.0),
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.api = api
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.watch_timeout_s = watch_timeout_s
        self.backoff_s = backoff_s
        self.on_change = on_change
        self.lists = 0  # full lists done (one at start, then only after 410 Gone)
        self.watches = 0
        self.last_error: str | None = None
        self._store: dict[str, JsonObj] = {}
        self._rv: str | None = None
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None

    # ---- public ------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout_s: float) -> bool:
        return self._synced.wait(timeout_s)

    def items(self) -> list[JsonObj]:
        with self._lock:
            return list(self._store.values())

    def get(self, namespace: str | None, name: str) -> JsonObj | None:
        with self._lock:
            return self._store.get(f"{namespace or ''}/{name}")

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"reflector-{self.resource.plural}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    # ---- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.backoff_s[0]
        while not self._stopping.is_set():
            try:
                if self._rv is None:
                    self._list()
                self._watch()
                delay = self.backoff_s[0]
            except ApiError as e:
                if e.status == GONE:
                    self._rv = None
                    continue
                self._failed(str(e))
                self._stopping.wait(delay)
                delay = min(delay * 2, self.backoff_s[1])
            except Exception as e:  # a broken stream must not end discovery
                if self._stopping.is_set():
                    break
                self._failed(f"{type(e).__name__}: {e}")
                self._stopping.wait(delay)
                delay = min(delay * 2, self.backoff_s[1])

    def _failed(self, message: str) -> None:
        self.last_error = message
        log.warning("%s: %s", self.resource.qualified, message)

    def _list(self) -> None:
        listing = self.api.list(self.resource, self.namespace, label_selector=self.label_selector)
        self.lists += 1
        store = {object_key(o): o for o in listing.get("items") or []}
        with self._lock:
            self._store = store
            self._rv = str((listing.get("metadata") or {}).get("resourceVersion", ""))
        self._synced.set()
        self._changed()

    def _watch(self) -> None:
        assert self._rv is not None
        stream = self.api.watch(
            self.resource,
            self.namespace,
            resource_version=self._rv,
            timeout_s=self.watch_timeout_s,
            label_selector=self.label_selector,
        )
        self.watches += 1
        self._stream = stream
        try:
            for event in stream:
                if self._stopping.is_set():
                    return
                self._apply(event)
        finally:
            self._stream = None

    def _apply(self, event: JsonObj) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        rv = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if kind == "ERROR":
            code = int(obj.get("code", 0))
            call = self.api.describe_call("watch", self.resource, self.namespace, None)
            raise ApiError(call, code, str(obj.get("reason", "")), str(obj.get("message", "")))
        with self._lock:
            if kind in ("ADDED", "MODIFIED"):
                self._store[object_key(obj)] = obj
            elif kind == "DELETED":
                self._store.pop(object_key(obj), None)
            if rv:
                self._rv = rv
        if kind != "BOOKMARK":
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
