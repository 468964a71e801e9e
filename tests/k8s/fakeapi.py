"""A faithful-enough Kubernetes API server on 127.0.0.1 for the adapter's tests.

The official ``kubernetes`` client talks to it over real HTTP. It implements, for the resources
sloscale uses, the API semantics that Kubernetes documents (API concepts, API conventions,
the Eviction and Lease references), not the adapter's assumptions:

- real JSON objects with ``apiVersion``/``kind``, ``metadata.uid``, ``creationTimestamp``,
  ``generation`` (bumped when ``spec`` changes) and a cluster-wide ``resourceVersion``;
  list responses carry ``metadata.resourceVersion`` and items without ``kind``;
- optimistic concurrency: a write (PUT, or a PATCH whose body names a
  ``metadata.resourceVersion``) against a stale version is ``409 Conflict``; POST of an
  existing name is ``409 AlreadyExists``; missing objects ``404 NotFound``; errors are
  ``Status`` objects with ``reason``, ``message``, ``details`` and ``code``;
- ``application/merge-patch+json`` (RFC 7386) and ``application/strategic-merge-patch+json``
  (maps merge, ``null`` deletes, lists with a merge key such as ``containers``/``name``
  merge by key, ``$patch: delete|replace``); other patch types are ``415``;
- the ``scale`` subresource of Deployments (``autoscaling/v1`` ``Scale``), and validation
  (``422 Invalid`` with field causes) of replicas, the selector/template labels and
  extended-resource quantities (integers; requests equal to limits);
- ``pods/eviction``: a matching PodDisruptionBudget with ``status.disruptionsAllowed == 0``
  answers ``429 TooManyRequests`` with a ``DisruptionBudget`` cause; more than one matching
  PDB is ``500``; otherwise the budget is decremented and the pod deleted (``201``);
  pending or finished pods ignore budgets;
- watch streams (chunked JSON lines): ``ADDED``/``MODIFIED``/``DELETED`` after the given
  resourceVersion, selector transitions as ``ADDED``/``DELETED``, ``BOOKMARK`` events when
  ``allowWatchBookmarks``, ``timeoutSeconds``, and an ``ERROR`` event with ``410 Expired``
  for a resourceVersion older than the last ``compact()``;
- RBAC: with ``rules`` (a ClusterRole's and Roles' rules) every request is authorised by
  verb, API group, resource/subresource and namespace, and refused with the API server's
  ``403 Forbidden`` message.

What it does not do is listed in ``docs/kubernetes.md`` (no controllers, no admission, no
server-side apply, no JSON patch, no field selectors, no protobuf, no authentication).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

JsonObj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    has_status: bool = True
    has_generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "pods", "Pod"),
    Kind("", "v1", "nodes", "Node", namespaced=False),
    Kind("", "v1", "events", "Event", has_status=False),
    Kind("", "v1", "configmaps", "ConfigMap", has_status=False),
    Kind("apps", "v1", "deployments", "Deployment", has_generation=True),
    Kind("batch", "v1", "jobs", "Job", has_generation=True),
    Kind("batch", "v1", "cronjobs", "CronJob", has_generation=True),
    Kind("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", has_generation=True),
    Kind("coordination.k8s.io", "v1", "leases", "Lease", has_status=False),
)
BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}
BY_KIND = {k.kind: k for k in KINDS}

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}
NATIVE_RESOURCES = ("cpu", "memory", "ephemeral-storage", "hugepages-")


@dataclass(frozen=True)
class Request:
    """One request as RBAC sees it, plus what was sent."""

    method: str
    path: str
    verb: str
    group: str
    resource: str  # "deployments" or "deployments/scale"
    namespace: str | None
    name: str | None
    user_agent: str
    content_type: str
    body: Any
    time_s: float

    @property
    def is_write(self) -> bool:
        return self.method not in ("GET", "HEAD")


@dataclass
class Rule:
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    namespace: str | None = None  # None: cluster-wide (ClusterRole)

    def allows(self, r: Request) -> bool:
        if self.namespace is not None and r.namespace != self.namespace:
            return False
        return (
            ("*" in self.verbs or r.verb in self.verbs)
            and ("*" in self.api_groups or r.group in self.api_groups)
            and ("*" in self.resources or r.resource in self.resources)
        )


def rules_from_role(role: Mapping[str, Any]) -> list[Rule]:
    """The rules of a ClusterRole (cluster-wide) or Role (its namespace)."""
    ns = None if role.get("kind") == "ClusterRole" else role["metadata"]["namespace"]
    return [
        Rule(
            tuple(r.get("apiGroups") or ()),
            tuple(r.get("resources") or ()),
            tuple(r.get("verbs") or ()),
            ns,
        )
        for r in role.get("rules") or []
    ]


class ApiFailureError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: JsonObj | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> JsonObj:
        body: JsonObj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# patches and selectors
# --------------------------------------------------------------------------------------------


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = json_merge_patch(result.get(k), v)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch for the list merge keys of the core types used here."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            if k.startswith("$setElementOrder/"):
                continue
            raise ApiFailureError(415, "UnsupportedMediaType", f"directive {k} is not supported")
        if v is None:
            result.pop(k, None)
        elif isinstance(v, list) and k in MERGE_KEYS and isinstance(result.get(k), list):
            result[k] = _merge_list(result[k], v, MERGE_KEYS[k])
        elif isinstance(v, list) and k in MERGE_KEYS:
            result[k] = [strategic_merge_patch(None, i) for i in v if i.get("$patch") != "delete"]
        else:
            result[k] = strategic_merge_patch(result.get(k), v)
    return result


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    out = [copy.deepcopy(i) for i in current]
    for item in patch:
        match = next((i for i, o in enumerate(out) if o.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if match is not None:
                out.pop(match)
        elif match is not None:
            out[match] = strategic_merge_patch(out[match], item)
        else:
            out.append(strategic_merge_patch(None, item))
    return out


_TERM = re.compile(
    r"\s*(!?)\s*([\w./-]+)\s*(?:(==|=|!=|\s+in\s+|\s+notin\s+)\s*(\([^)]*\)|[\w./-]*))?\s*"
)


def label_selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """The label selector syntax of list/watch ``labelSelector``."""
    for term in _split_terms(selector):
        m = _TERM.fullmatch(term)
        if m is None:
            raise ApiFailureError(400, "BadRequest", f"unable to parse requirement: {term!r}")
        neg, key, op, value = m.groups()
        op = (op or "").strip()
        if not op:
            if (key in labels) == bool(neg):
                return False
        elif op in ("=", "=="):
            if labels.get(key) != value:
                return False
        elif op == "!=":
            if labels.get(key) == value:
                return False
        else:
            values = {v.strip() for v in value.strip("()").split(",")}
            if (op == "in") != (labels.get(key) in values):
                return False
    return True


def _split_terms(selector: str) -> Iterable[str]:
    depth, start = 0, 0
    for i, ch in enumerate(selector):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            yield selector[start:i]
            start = i + 1
    if selector[start:].strip():
        yield selector[start:]


def object_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """``metav1.LabelSelector`` (matchLabels + matchExpressions); empty selects everything."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


# --------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------


@dataclass
class _Event:
    rv: int
    kind: Kind
    type: str
    obj: JsonObj
    old: JsonObj | None


@dataclass
class _Injected:
    method: str
    resource: str
    code: int
    reason: str
    message: str
    times: int


@dataclass
class FakeApiServer:
    """Start with ``start()`` (or as a context manager); ``url`` is the API address."""

    rules: list[Rule] | None = None
    bookmark_interval_s: float = 0.5
    requests: list[Request] = field(default_factory=list)
    before_write: Callable[[Request], None] | None = None

    def __post_init__(self) -> None:
        self._objects: dict[tuple[str, str, str], JsonObj] = {}
        self._events: list[_Event] = []
        self._rv = 100
        self._compacted_rv = 0
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._injected: list[_Injected] = []
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
        """Create or replace an object as a controller (or kubectl) would have."""
        kind = BY_KIND[obj["kind"]]
        with self._cond:
            ns = obj.get("metadata", {}).get("namespace", "default") if kind.namespaced else ""
            key = (kind.plural, ns, obj["metadata"]["name"])
            old = self._objects.get(key)
            new = self._stamp(kind, copy.deepcopy(obj), old)
            if not kind.namespaced:
                new["metadata"].pop("namespace", None)
            else:
                new["metadata"]["namespace"] = ns
            self._commit(kind, key, "MODIFIED" if old else "ADDED", new, old)
            return copy.deepcopy(new)

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
            self._events.append(_Event(self._rv, k, "DELETED", gone, old))
            self._cond.notify_all()

    def compact(self) -> None:
        """Forget the event history (etcd compaction): older watches get 410 Gone."""
        with self._cond:
            self._compacted_rv = self._rv
            self._events.clear()

    def fail_next(
        self, method: str, resource: str, code: int, reason: str, message: str, times: int = 1
    ) -> None:
        """Answer the next ``times`` matching requests with this error (fault injection)."""
        with self._cond:
            self._injected.append(_Injected(method, resource, code, reason, message, times))

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.is_write]

    def objects(self, kind: str) -> list[JsonObj]:
        k = BY_KIND[kind]
        with self._cond:
            return [copy.deepcopy(o) for (p, _, _), o in self._objects.items() if p == k.plural]

    # ---- storage -----------------------------------------------------------------------------

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
        self._events.append(_Event(self._rv, kind, type_, copy.deepcopy(new), old))
        self._cond.notify_all()

    # ---- request handling --------------------------------------------------------------------

    def handle(self, method: str, url: str, headers: Mapping[str, str], raw: bytes) -> Any:
        """Returns ``(code, body)`` or, for a watch, a generator of events."""
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        kind, ns, name, sub = self._route(parts.path)
        verb = _verb(method, name, query)
        body: Any = json.loads(raw) if raw else None
        req = Request(
            method=method,
            path=parts.path,
            verb=verb,
            group=kind.group,
            resource=f"{kind.plural}/{sub}" if sub else kind.plural,
            namespace=ns or None,
            name=name,
            user_agent=headers.get("User-Agent", ""),
            content_type=headers.get("Content-Type", ""),
            body=body,
            time_s=time.monotonic(),
        )
        with self._cond:
            self.requests.append(req)
        self._authorize(req, kind)
        self._inject(req)
        if req.is_write and self.before_write is not None:
            self.before_write(req)
        if verb == "watch":
            return self._watch(kind, ns, query)
        if verb == "list":
            return 200, self._list(kind, ns, query)
        with self._cond:
            if sub == "scale":
                return self._scale(kind, ns, name, method, body, req.content_type)
            if sub == "eviction":
                return self._evict(ns, name or "")
            if sub:
                raise ApiFailureError(
                    404, "NotFound", "the server could not find the requested resource"
                )
            if method == "GET":
                return 200, copy.deepcopy(self._get(kind, ns, name or ""))
            if method == "POST":
                return 201, self._create(kind, ns, body)
            if method == "PUT":
                return 200, self._update(kind, ns, name or "", body)
            if method == "PATCH":
                return 200, self._patch(kind, ns, name or "", body, req.content_type)
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
        if kind is None:
            raise ApiFailureError(
                404, "NotFound", "the server could not find the requested resource"
            )
        return kind, ns, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None

    def _authorize(self, req: Request, kind: Kind) -> None:
        if self.rules is None or any(r.allows(req) for r in self.rules):
            return
        group = req.group
        target = f'{kind.qualified} "{req.name}"' if req.name else kind.qualified
        scope = f' in the namespace "{req.namespace}"' if req.namespace else " at the cluster scope"
        raise ApiFailureError(
            403,
            "Forbidden",
            f'{target} is forbidden: User "system:serviceaccount:sloscale:sloscale" cannot '
            f'{req.verb} resource "{req.resource}" in API group "{group}"{scope}',
            {"name": req.name or "", "group": group, "kind": req.resource},
        )

    def _inject(self, req: Request) -> None:
        with self._cond:
            for inj in self._injected:
                if inj.times > 0 and inj.method == req.method and inj.resource == req.resource:
                    inj.times -= 1
                    raise ApiFailureError(inj.code, inj.reason, inj.message)

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

    def _create(self, kind: Kind, ns: str, body: Any) -> JsonObj:
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
                self._invalid(
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
        self._validate(kind, body)
        new = self._stamp(kind, copy.deepcopy(body), None)
        self._commit(kind, key, "ADDED", new, None)
        return copy.deepcopy(new)

    def _update(self, kind: Kind, ns: str, name: str, body: Any) -> JsonObj:
        current = self._get(kind, ns, name)
        if not isinstance(body, dict):
            raise ApiFailureError(400, "BadRequest", "the body of the request was not an object")
        if (body.get("metadata") or {}).get("name") != name:
            raise ApiFailureError(
                400, "BadRequest", "the name of the object does not match the URL"
            )
        return self._store_update(kind, ns, name, current, copy.deepcopy(body))

    def _store_update(
        self, kind: Kind, ns: str, name: str, current: JsonObj, new: JsonObj
    ) -> JsonObj:
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
        self._validate(kind, new)
        stamped = self._stamp(kind, new, current)
        self._commit(kind, self._key(kind, ns, name), "MODIFIED", stamped, current)
        return copy.deepcopy(stamped)

    def _patch(self, kind: Kind, ns: str, name: str, body: Any, ctype: str) -> JsonObj:
        current = self._get(kind, ns, name)
        patched = self._apply_patch(current, body, ctype)
        return self._store_update(kind, ns, name, current, patched)

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
        self._events.append(_Event(self._rv, kind, "DELETED", gone, current))
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

    # ---- validation --------------------------------------------------------------------------

    def _invalid(self, kind: Kind, name: str, errors: list[tuple[str, str]]) -> None:
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

    def _validate(self, kind: Kind, obj: JsonObj) -> None:
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
                errors.append(
                    ("spec.leaseDurationSeconds", "Invalid value: must be greater than 0")
                )
        if kind.kind == "Event":
            inv_ns = (obj.get("involvedObject") or {}).get("namespace")
            if inv_ns and inv_ns != obj["metadata"].get("namespace"):
                errors.append(
                    ("involvedObject.namespace", "Invalid value: does not match event.namespace")
                )
        if errors:
            self._invalid(kind, name, errors)

    # ---- subresources ------------------------------------------------------------------------

    def _scale(
        self, kind: Kind, ns: str, name: str | None, method: str, body: Any, ctype: str
    ) -> tuple[int, JsonObj]:
        if kind.kind != "Deployment":
            raise ApiFailureError(
                404, "NotFound", "the server could not find the requested resource"
            )
        dep = self._get(kind, ns, name or "")
        scale = _scale_of(dep)
        if method == "GET":
            return 200, scale
        if method == "PATCH":
            new = self._apply_patch(scale, body, ctype)
        elif method == "PUT":
            new = body
        else:
            raise ApiFailureError(405, "MethodNotAllowed", f"{method} is not supported on scale")
        sent_rv = (new.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != dep["metadata"]["resourceVersion"]:
            raise self._conflict(kind, name or "")
        replicas = (new.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiFailureError(
                422,
                "Invalid",
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas}: must be greater than or equal to 0",
                {"name": name, "group": "autoscaling", "kind": "Scale"},
            )
        updated = copy.deepcopy(dep)
        updated["spec"]["replicas"] = replicas
        stamped = self._stamp(kind, updated, dep)
        self._commit(kind, self._key(kind, ns, name or ""), "MODIFIED", stamped, dep)
        return 200, _scale_of(stamped)

    def _evict(self, ns: str, name: str) -> tuple[int, JsonObj]:
        pods = BY_KIND["Pod"]
        pod = self._get(pods, ns, name)
        labels = pod["metadata"].get("labels") or {}
        phase = (pod.get("status") or {}).get("phase")
        pdb_kind = BY_KIND["PodDisruptionBudget"]
        budgets = [
            o
            for (p, ons, _), o in self._objects.items()
            if p == "poddisruptionbudgets"
            and ons == ns
            and object_selector_matches((o.get("spec") or {}).get("selector") or {}, labels)
        ]
        if phase not in ("Pending", "Succeeded", "Failed") and budgets:
            if len(budgets) > 1:
                raise ApiFailureError(
                    500,
                    "InternalError",
                    "This pod has more than one PodDisruptionBudget, which the eviction "
                    "subresource does not support.",
                )
            pdb = budgets[0]
            status = pdb.get("status") or {}
            if int(status.get("disruptionsAllowed", 0)) <= 0:
                raise ApiFailureError(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    {
                        "causes": [
                            {
                                "reason": "DisruptionBudget",
                                "message": f"The disruption budget {pdb['metadata']['name']} "
                                f"needs {status.get('desiredHealthy', 0)} healthy pods and has "
                                f"{status.get('currentHealthy', 0)} currently",
                            }
                        ]
                    },
                )
            new_pdb = copy.deepcopy(pdb)
            new_pdb["status"]["disruptionsAllowed"] = int(status["disruptionsAllowed"]) - 1
            stamped = self._stamp(pdb_kind, new_pdb, pdb)
            self._commit(
                pdb_kind, self._key(pdb_kind, ns, pdb["metadata"]["name"]), "MODIFIED", stamped, pdb
            )
        self._delete(pods, ns, name)
        return 201, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    # ---- watch -------------------------------------------------------------------------------

    def _watch(self, kind: Kind, ns: str, query: Mapping[str, str]) -> Any:
        selector = query.get("labelSelector", "")
        timeout_s = float(query.get("timeoutSeconds", "1800"))
        bookmarks = query.get("allowWatchBookmarks") == "true"
        rv_text = query.get("resourceVersion", "")
        deadline = time.monotonic() + timeout_s

        def matches(obj: JsonObj | None) -> bool:
            if obj is None:
                return False
            in_ns = not ns or obj["metadata"].get("namespace") == ns
            return in_ns and label_selector_matches(selector, obj["metadata"].get("labels") or {})

        def stream() -> Any:
            with self._cond:
                if rv_text in ("", "0"):
                    since = self._rv
                    initial = [
                        o for (p, _, _), o in sorted(self._objects.items()) if p == kind.plural
                    ]
                else:
                    since = int(rv_text)
                    initial = []
                    if since < self._compacted_rv:
                        yield {
                            "type": "ERROR",
                            "object": ApiFailureError(
                                410,
                                "Expired",
                                f"too old resource version: {since} ({self._compacted_rv})",
                            ).status(),
                        }
                        return
            for o in initial:
                if matches(o):
                    yield {"type": "ADDED", "object": copy.deepcopy(o)}
            last_bookmark = time.monotonic()
            while not self._stopping.is_set():
                with self._cond:
                    pending = [e for e in self._events if e.rv > since and e.kind == kind]
                    if not pending:
                        wait = (
                            min(deadline, last_bookmark + self.bookmark_interval_s)
                            - time.monotonic()
                        )
                        if wait > 0:
                            self._cond.wait(wait)
                        pending = [e for e in self._events if e.rv > since and e.kind == kind]
                    current_rv = self._rv
                for e in pending:
                    since = e.rv
                    now_in, was_in = matches(e.obj), matches(e.old)
                    if e.type == "DELETED":
                        if was_in:
                            yield {"type": "DELETED", "object": copy.deepcopy(e.obj)}
                    elif now_in and not was_in:
                        yield {"type": "ADDED", "object": copy.deepcopy(e.obj)}
                    elif now_in:
                        yield {"type": "MODIFIED", "object": copy.deepcopy(e.obj)}
                    elif was_in:
                        yield {"type": "DELETED", "object": copy.deepcopy(e.obj)}
                now = time.monotonic()
                if now >= deadline:
                    return
                if bookmarks and now - last_bookmark >= self.bookmark_interval_s:
                    last_bookmark = now
                    since = max(since, current_rv)
                    yield {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": kind.kind,
                            "apiVersion": kind.api_version,
                            "metadata": {"resourceVersion": str(since)},
                        },
                    }

        return stream()


def _scale_of(dep: JsonObj) -> JsonObj:
    m = dep["metadata"]
    selector = (dep.get("spec") or {}).get("selector") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"],
            "namespace": m.get("namespace"),
            "uid": m["uid"],
            "resourceVersion": m["resourceVersion"],
            "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": (dep.get("spec") or {}).get("replicas", 1)},
        "status": {
            "replicas": (dep.get("status") or {}).get("replicas", 0),
            "selector": ",".join(
                f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()
            ),
        },
    }


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


def _verb(method: str, name: str | None, query: Mapping[str, str]) -> str:
    if method == "GET":
        if name:
            return "get"
        return "watch" if query.get("watch") in ("true", "1") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: FakeApiServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            result = self.api.handle(self.command, self.path, dict(self.headers.items()), raw)
        except ApiFailureError as e:
            self._send(e.code, e.status())
            return
        if isinstance(result, tuple):
            self._send(*result)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in result:
                data = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, code: int, body: JsonObj) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815
