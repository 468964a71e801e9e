"""The fake API server: its lifecycle, the helpers tests set it up with, and request routing."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from tests.k8s.fakeapi.handler import Handler as _Handler
from tests.k8s.fakeapi.kinds import BY_KIND, BY_PATH, ApiFailureError, JsonObj, Kind
from tests.k8s.fakeapi.rbac import Injected, Request, Rule, authorize, request_verb
from tests.k8s.fakeapi.storage import StoredEvent
from tests.k8s.fakeapi.subresources import Subresources
from tests.k8s.fakeapi.watch import Watches


@dataclass
class FakeApiServer(Subresources, Watches):
    """Start with ``start()`` (or as a context manager); ``url`` is the API address."""

    rules: list[Rule] | None = None
    bookmark_interval_s: float = 0.5
    requests: list[Request] = field(default_factory=list)
    before_write: Callable[[Request], None] | None = None
    absent_groups: set[str] = field(default_factory=set)
    """API groups the server does not serve (a CRD not installed: KEDA's ``keda.sh``): 404."""

    def __post_init__(self) -> None:
        self._objects: dict[tuple[str, str, str], JsonObj] = {}
        self._events: list[StoredEvent] = []
        self._rv = 100
        self._compacted_rv = 0
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._injected: list[Injected] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeApiServer:
        server = self

        class Handler(_Handler):
            api = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test helpers (no request recorded, no RBAC) ----------------------------------------

    def put(self, obj: JsonObj) -> JsonObj:
        """Create or replace an object as a controller (or kubectl) would have; ``obj``'s
        managedFields are kept as they are (``apply`` writes as a field manager)."""
        kind = BY_KIND[obj["kind"]]
        with self._cond:
            ns = obj.get("metadata", {}).get("namespace", "default") if kind.namespaced else ""
            key = (kind.plural, ns, obj["metadata"]["name"])
            old = self._objects.get(key)
            new = copy.deepcopy(obj)
            if not kind.namespaced:
                new["metadata"].pop("namespace", None)
            else:
                new["metadata"]["namespace"] = ns
            new = self._stamp(kind, new, old)
            self._commit(kind, key, "MODIFIED" if old else "ADDED", new, old)
            return copy.deepcopy(new)

    def apply(self, obj: JsonObj, manager: str, *, force: bool = False) -> JsonObj:
        """Server-side apply ``obj`` as ``manager`` (a GitOps tool's sync), creating it when
        it is not there; no request recorded, no RBAC."""
        kind = BY_KIND[obj["kind"]]
        meta = obj["metadata"]
        ns = meta.get("namespace", "default") if kind.namespaced else ""
        with self._cond:
            if self._objects.get(self._key(kind, ns, meta["name"])) is None:
                return self._create(kind, ns, copy.deepcopy(obj), manager, operation="Apply")
            return self._server_side_apply(
                kind, ns, meta["name"], copy.deepcopy(obj), manager, force
            )

    def obj(self, kind: str, namespace: str, name: str) -> JsonObj | None:
        k = BY_KIND[kind]
        with self._cond:
            o = self._objects.get((k.plural, namespace if k.namespaced else "", name))
            return copy.deepcopy(o) if o else None

    def mutate(
        self, kind: str, namespace: str, name: str, fn: Callable[[JsonObj], None]
    ) -> JsonObj:
        """Change an object in place (status updates by a controller, another writer...)."""
        current = self.obj(kind, namespace, name)
        assert current is not None, f"{kind} {namespace}/{name} not found"
        fn(current)
        return self.put(current)

    def remove(self, kind: str, namespace: str, name: str) -> None:
        k = BY_KIND[kind]
        with self._cond:
            key = (k.plural, namespace if k.namespaced else "", name)
            old = self._objects.pop(key)
            self._rv += 1
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(self._rv)
            self._events.append(StoredEvent(self._rv, k, "DELETED", gone, old))
            self._cond.notify_all()

    def compact(self) -> None:
        """Forget the event history (etcd compaction): older watches get 410 Gone."""
        with self._cond:
            self._compacted_rv = self._rv
            self._events.clear()

    def fail_next(
        self,
        method: str,
        resource: str,
        code: int,
        reason: str,
        message: str,
        times: int = 1,
        *,
        verb: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with this error (fault injection);
        ``verb`` narrows the match (``"watch"``: watches only, not lists nor gets)."""
        with self._cond:
            self._injected.append(Injected(method, resource, code, reason, message, times, verb))

    def clear_faults(self) -> None:
        """Forget every fault ``fail_next`` set that has not been used up."""
        with self._cond:
            self._injected.clear()

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.is_write]

    def objects(self, kind: str) -> list[JsonObj]:
        k = BY_KIND[kind]
        with self._cond:
            return [copy.deepcopy(o) for (p, _, _), o in self._objects.items() if p == k.plural]

    # ---- request handling --------------------------------------------------------------------

    def handle(self, method: str, url: str, headers: Mapping[str, str], raw: bytes) -> Any:
        """Returns ``(code, body)`` or, for a watch, a generator of events."""
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        kind, ns, name, sub = self._route(parts.path)
        verb = request_verb(method, name, query)
        content_type = headers.get("Content-Type", "")
        body = _body(raw, content_type)
        req = Request(
            method=method,
            path=parts.path,
            verb=verb,
            group=kind.group,
            resource=f"{kind.plural}/{sub}" if sub else kind.plural,
            namespace=ns or None,
            name=name,
            user_agent=headers.get("User-Agent", ""),
            content_type=content_type,
            body=body,
            time_s=time.monotonic(),
            query=query,
        )
        with self._cond:
            self.requests.append(req)
        authorize(self.rules, req, kind)
        self._inject(req)
        if req.is_write and self.before_write is not None:
            self.before_write(req)
        if verb == "watch":
            return self._watch(kind, ns, query)
        if verb == "list":
            return 200, self._list(kind, ns, query)
        # the field manager: fieldManager, else the User-Agent up to its first "/"
        manager = query.get("fieldManager") or req.user_agent.split("/", 1)[0]
        with self._cond:
            if sub == "scale":
                return self._scale(kind, ns, name, method, body, req.content_type, manager)
            if sub == "eviction":
                return self._evict(ns, name or "")
            if sub:
                raise ApiFailureError(
                    404, "NotFound", "the server could not find the requested resource"
                )
            if method == "GET":
                return 200, copy.deepcopy(self._get(kind, ns, name or ""))
            if method == "POST":
                return 201, self._create(kind, ns, body, manager)
            if method == "PUT":
                return 200, self._update(kind, ns, name or "", body, manager)
            if method == "PATCH" and _media(req.content_type) == APPLY_PATCH:
                force = query.get("force") in ("true", "1")
                return 200, self._server_side_apply(
                    kind, ns, name or "", body, query.get("fieldManager", ""), force
                )
            if method == "PATCH":
                return 200, self._patch(kind, ns, name or "", body, req.content_type, manager)
            if method == "DELETE":
                return 200, self._delete(kind, ns, name or "")
        raise ApiFailureError(405, "MethodNotAllowed", f"{method} is not supported")

    def _route(self, path: str) -> tuple[Kind, str, str | None, str | None]:
        segs = [unquote(s) for s in path.strip("/").split("/")]
        if segs[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", segs[2:]
        elif segs[:1] == ["apis"] and len(segs) >= 3:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise ApiFailureError(
                404, "NotFound", "the server could not find the requested resource"
            )
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        kind = BY_PATH.get((group, version, rest[0] if rest else ""))
        if kind is None or group in self.absent_groups:
            raise ApiFailureError(
                404, "NotFound", "the server could not find the requested resource"
            )
        return kind, ns, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None

    def _inject(self, req: Request) -> None:
        with self._cond:
            for inj in self._injected:
                if (
                    inj.times > 0
                    and inj.method == req.method
                    and inj.resource == req.resource
                    and inj.verb in (None, req.verb)
                ):
                    inj.times -= 1
                    raise ApiFailureError(inj.code, inj.reason, inj.message)


APPLY_PATCH = "application/apply-patch+yaml"


def _media(content_type: str) -> str:
    return content_type.split(";", maxsplit=1)[0].strip()


def _body(raw: bytes, content_type: str) -> Any:
    """The request body: JSON, or for an apply YAML (of which JSON is a part)."""
    if not raw:
        return None
    if _media(content_type) == APPLY_PATCH:
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ApiFailureError(400, "BadRequest", f"error decoding YAML: {e}") from e
    return json.loads(raw)


__all__ = ["FakeApiServer"]
