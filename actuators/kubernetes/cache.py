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
  control loop, which reads ``items()``, ``synced`` and ``staleness_s()``;
- an ``optional`` resource (a CRD that may not be installed, such as KEDA's ScaledObjects)
  answered ``404 Not Found`` on its list is *absent*: an empty store, synced and current,
  said once at INFO and listed again every ``absent_retry_s`` without a word, so a cluster
  without it has no noise and one that installs it later is read.

Freshness: the store is confirmed current by a successful list, by every watch event
(bookmarks included), and while a watch stream is open (until its read timeout,
``watch_timeout_s`` + ``WATCH_READ_GRACE_S``, could have caught a silent connection).
``staleness_s()`` is how long it has gone unconfirmed: a watch that keeps failing makes it grow,
and ``KubernetesCluster.snapshot()`` refuses a cache past its bound rather than serve it as
current.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from actuators.kubernetes.api import ApiError, KubeApi, Resource, WatchStream

log = logging.getLogger("sloscale.kubernetes.cache")

JsonObj = dict[str, Any]
GONE, NOT_FOUND = 410, 404
WATCH_READ_GRACE_S = 15.0
"""``KubeApi.watch`` reads with a timeout of ``timeout_s`` + this: a stream open longer is dead."""


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
        clock: Callable[[], float] = time.monotonic,
        optional: bool = False,
        absent_retry_s: float = 300.0,
    ) -> None:
        self.api = api
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.watch_timeout_s = watch_timeout_s
        self.backoff_s = backoff_s
        self.on_change = on_change
        self.clock = clock
        self.optional = optional
        self.absent_retry_s = absent_retry_s
        self.absent = False  # optional, and the API server does not serve it (404)
        self.lists = 0  # full lists done (one at start, then only after 410 Gone)
        self.watches = 0
        self.last_error: str | None = None
        self._store: dict[str, JsonObj] = {}
        self._rv: str | None = None
        self._confirmed: float | None = None  # when the store was last known current
        self._connected = False  # a watch stream is open
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._tried = threading.Event()  # a first list was answered, whatever the answer
        self._stopping = threading.Event()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None

    # ---- public ------------------------------------------------------------------------------

    @property
    def where(self) -> str:
        """``deployments.apps in team-a`` (or ``... in every namespace``), for messages."""
        scope = (self.namespace or "every namespace") if self.resource.namespaced else ""
        return f"{self.resource.qualified} in {scope}" if scope else self.resource.qualified

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout_s: float) -> bool:
        return self._synced.wait(timeout_s)

    def wait_tried(self, timeout_s: float) -> bool:
        """Wait for the first list's answer (a success, absent, or a failure)."""
        return self._tried.wait(timeout_s)

    def staleness_s(self) -> float | None:
        """Seconds since the store was last confirmed current (0 while a watch is open);
        ``None`` before the first list."""
        with self._lock:
            confirmed, connected = self._confirmed, self._connected
        if confirmed is None:
            return None
        age = max(0.0, self.clock() - confirmed)
        if connected and age <= self.watch_timeout_s + WATCH_READ_GRACE_S:
            return 0.0
        return age

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
                if e.status == NOT_FOUND and self.optional:
                    self._absent()
                    self._stopping.wait(self.absent_retry_s)
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
        self._tried.set()
        log.warning("%s: %s", self.resource.qualified, message)

    def _absent(self) -> None:
        """An optional resource the server does not serve: none of it, known for now."""
        if not self.absent:
            log.info("%s not served by the API server: none (not installed)", self.where)
        self.absent, self.last_error = True, None
        with self._lock:
            self._store, self._rv = {}, None
            self._confirmed = self.clock()
        self._synced.set()
        self._tried.set()

    def _list(self) -> None:
        listing = self.api.list(self.resource, self.namespace, label_selector=self.label_selector)
        self.lists += 1
        store = {object_key(o): o for o in listing.get("items") or []}
        with self._lock:
            self._store = store
            self._rv = str((listing.get("metadata") or {}).get("resourceVersion", ""))
            self._confirmed = self.clock()
        self.absent = False
        self._synced.set()
        self._tried.set()
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
        self._confirm(connected=True)
        try:
            if self._stopping.is_set():
                # stop() came while the watch was being opened, when there was no stream to
                # close yet: close it here, or this thread would block on it until an event
                # or the watch's timeout (a real API server can be silent for minutes; a
                # close() right after the first sync always waited out stop()'s join)
                stream.close()
            for event in stream:
                if self._stopping.is_set():
                    return
                self._apply(event)
            if not self._stopping.is_set():
                self._confirm(connected=True)  # ended by its timeout: current until now
        finally:
            self._stream = None
            with self._lock:
                self._connected = False

    def _confirm(self, *, connected: bool) -> None:
        with self._lock:
            self._confirmed = self.clock()
            self._connected = connected

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
            self._confirmed = self.clock()
        if kind != "BOOKMARK":
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
