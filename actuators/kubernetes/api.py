"""The one door to the Kubernetes API: typed requests over the official client, typed errors.

Why it exists: every request the adapter makes goes through ``KubeApi.request`` so that

- each call is described by what RBAC authorises (verb, API group, resource/subresource,
  namespace) and can be recorded (the RBAC audit test reads that record);
- objects stay plain JSON, exactly as the server sent them (no client models in between,
  so no field is lost or renamed);
- a failure becomes an ``ApiError`` carrying the HTTP status, the ``Status`` reason and
  the server's message, and a 403 names the missing verb and resource;
- every write names the field manager ``FIELD_MANAGER`` (``fieldManager``), so the object's
  ``metadata.managedFields`` say which fields sloscale owns, and a GitOps tool can be told to
  leave them alone (``docs/gitops.md``).

Transport, authentication and kubeconfig/in-cluster handling are the official ``kubernetes``
client's (``ApiClient``, ``Configuration``, ``config.load_*``).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes.client import ApiClient

JsonObj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
"""Server-side apply. The body may be JSON: JSON is YAML, and Kubernetes documents this media
type for either."""

FIELD_MANAGER = "sloscale"
"""The ``fieldManager`` of every write sloscale makes: the name its fields are owned under in
``metadata.managedFields``, the one GitOps tools are told to ignore (``docs/gitops.md``).

One name for every replica and every leader, never the pod's: server-side apply keys
ownership on it, so a per-pod name would split sloscale's fields among managers, and a new
leader could neither update nor release what the previous one applied."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A REST resource: ``group`` is ``""`` for the core API."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps`` (the spelling of API messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


DEPLOYMENTS = Resource("apps", "v1", "deployments")
PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
EVENTS = Resource("", "v1", "events")
JOBS = Resource("batch", "v1", "jobs")
CRONJOBS = Resource("batch", "v1", "cronjobs")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
CONFIGMAPS = Resource("", "v1", "configmaps")
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers")
SCALED_OBJECTS = Resource("keda.sh", "v1alpha1", "scaledobjects")  # KEDA's CRD, if installed


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One request in RBAC terms (what a Role rule must allow for it to pass)."""

    verb: str  # get list watch create update patch delete
    group: str
    resource: str  # "deployments" or "deployments/scale"
    namespace: str | None
    name: str | None


class ApiError(Exception):
    """A request the API server refused (or that never reached it: ``status == 0``)."""

    def __init__(self, call: ApiCall, status: int, reason: str, message: str) -> None:
        self.call = call
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(self.describe())

    def describe(self) -> str:
        c = self.call
        where = f" in namespace {c.namespace}" if c.namespace else ""
        target = f"{c.resource}{'/' + c.name if c.name else ''}"
        if self.status == 403:
            group = c.group or "core"
            return (
                f"forbidden: RBAC does not allow verb {c.verb!r} on resource {c.resource!r} "
                f"in API group {group!r}{where}; grant it in the sloscale ClusterRole "
                f"(with --namespaces: the sloscale Role of that namespace) ({self.message})"
            )
        if self.status == 0:
            return f"{c.verb} {target}{where}: API server unreachable: {self.message}"
        return f"{c.verb} {target}{where}: {self.status} {self.reason}: {self.message}"


Recorder = Callable[[ApiCall], None]


class WatchStream:
    """An open watch: iterate its events; ``close()`` may be called from another thread."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[JsonObj]:
        buffer = b""
        try:
            for chunk in self._response.stream(amt=None, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
            if buffer.strip():
                yield json.loads(buffer)
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            if not self._closed.is_set():
                raise
        finally:
            self._response.release_conn()

    def close(self) -> None:
        self._closed.set()
        # OSError, AttributeError: already closed. RuntimeError: urllib3 (2.3+) refuses to
        # shut down a connection already released to the pool, which is what a stream read
        # to its end is (the server ended the watch): Reflector.stop() may come just then.
        with contextlib.suppress(OSError, AttributeError, RuntimeError):
            self._response.shutdown()


class KubeApi:
    """Plain-JSON requests through an official ``ApiClient``."""

    def __init__(
        self,
        client: ApiClient,
        *,
        recorder: Recorder | None = None,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.field_manager = field_manager

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
        self.client.rest_client.pool_manager.clear()

    # ---- verbs -------------------------------------------------------------------------------

    def get(self, res: Resource, name: str, namespace: str | None = None) -> JsonObj:
        return self._json("GET", "get", res, namespace, name)

    def list(
        self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None
    ) -> JsonObj:
        query = {"labelSelector": label_selector} if label_selector else {}
        return self._json("GET", "list", res, namespace, None, query=query)

    def watch(
        self,
        res: Resource,
        namespace: str | None,
        *,
        resource_version: str,
        timeout_s: int,
        label_selector: str | None = None,
    ) -> WatchStream:
        query: dict[str, str] = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        if label_selector:
            query["labelSelector"] = label_selector
        call = self.describe_call("watch", res, namespace, None)
        response = self._send("GET", call, res, namespace, None, None, query, None, timeout_s + 15)
        if response.status >= 300:
            raise self._error(call, response.status, response.read())
        return WatchStream(response)

    def create(
        self,
        res: Resource,
        body: Mapping[str, Any],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        name: str | None = None,
    ) -> JsonObj:
        return self._json("POST", "create", res, namespace, name, body=body, sub=subresource)

    def replace(
        self, res: Resource, name: str, body: Mapping[str, Any], namespace: str | None = None
    ) -> JsonObj:
        return self._json("PUT", "update", res, namespace, name, body=body)

    def patch(
        self,
        res: Resource,
        name: str,
        body: Mapping[str, Any],
        namespace: str | None = None,
        *,
        content_type: str = MERGE_PATCH,
        subresource: str | None = None,
    ) -> JsonObj:
        return self._json(
            "PATCH", "patch", res, namespace, name, body=body, sub=subresource, ctype=content_type
        )

    def apply(
        self,
        res: Resource,
        name: str,
        body: Mapping[str, Any],
        namespace: str | None = None,
        *,
        force: bool,
    ) -> JsonObj:
        """Server-side apply ``body``, an apply configuration: ``apiVersion``, ``kind``,
        ``metadata.name`` and exactly the fields this field manager means to own, list items
        named by their merge key (a container by ``name``). The server merges it into the
        object; a field this manager applied before and leaves out now is removed unless
        another manager owns it too, so every apply must carry all the fields the manager
        keeps. A ``metadata.resourceVersion`` in ``body`` is a precondition (409 when stale).

        ``force``: take over the fields another manager owns with a different value, instead
        of a 409 naming them (the caller says why it may). RBAC: ``patch`` (``create`` too,
        were the object to be created by the apply; sloscale never does).

        The official client's generated methods (``patch_namespaced_deployment`` and the
        like) default to ``application/json-patch+json`` (``select_header_content_type``
        prefers a JSON type) and turn it into a strategic merge patch for an object body, so
        an apply must name its content type (``_content_type=`` there; the header here).
        """
        return self._json(
            "PATCH",
            "patch",
            res,
            namespace,
            name,
            body=body,
            ctype=APPLY_PATCH,
            query={"force": "true" if force else "false"},
        )

    # ---- plumbing ----------------------------------------------------------------------------

    def describe_call(
        self,
        verb: str,
        res: Resource,
        namespace: str | None,
        name: str | None,
        sub: str | None = None,
    ) -> ApiCall:
        return ApiCall(
            verb=verb,
            group=res.group,
            resource=f"{res.plural}/{sub}" if sub else res.plural,
            namespace=namespace if res.namespaced else None,
            name=name,
        )

    def _json(
        self,
        method: str,
        verb: str,
        res: Resource,
        namespace: str | None,
        name: str | None,
        *,
        body: Mapping[str, Any] | None = None,
        sub: str | None = None,
        ctype: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> JsonObj:
        call = self.describe_call(verb, res, namespace, name, sub)
        params = dict(query or {})
        if method != "GET":  # every write says whose fields it sets
            params["fieldManager"] = self.field_manager
        response = self._send(method, call, res, namespace, name, sub, params, body, 60, ctype)
        data = response.read()
        response.release_conn()
        if response.status >= 300:
            raise self._error(call, response.status, data)
        parsed = json.loads(data) if data else {}
        return parsed if isinstance(parsed, dict) else {}

    def _send(
        self,
        method: str,
        call: ApiCall,
        res: Resource,
        namespace: str | None,
        name: str | None,
        sub: str | None,
        query: Mapping[str, str],
        body: Mapping[str, Any] | None,
        timeout_s: float,
        ctype: str | None = None,
    ) -> urllib3.BaseHTTPResponse:
        if self.recorder is not None:
            self.recorder(call)
        path = "/api/v1" if not res.group else f"/apis/{res.group}/{res.version}"
        if res.namespaced and namespace:
            path += f"/namespaces/{quote(namespace, safe='')}"
        path += f"/{res.plural}"
        if name:
            path += f"/{quote(name, safe='')}"
        if sub:
            path += f"/{sub}"
        headers = {"Accept": "application/json", "User-Agent": self.client.user_agent}
        if body is not None:
            headers["Content-Type"] = ctype or "application/json"
        payload: object = dict(body) if body is not None else None
        if body is not None and ctype == APPLY_PATCH:
            # serialised here: the client sends a text body as it is, for any content type,
            # whereas whether it serialises a dict under a YAML type depends on its version
            payload = json.dumps(body)
        method_, url, headers_, body_, _ = self.client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query.items()) or None,
            header_params=headers,
            body=payload,
            auth_settings=["BearerToken"],
        )
        try:
            rest = self.client.call_api(
                method_, url, header_params=headers_, body=body_, _request_timeout=(10, timeout_s)
            )
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise ApiError(call, 0, "Unreachable", str(e)) from e
        response: urllib3.BaseHTTPResponse = rest.response
        return response

    @staticmethod
    def _error(call: ApiCall, status: int, data: bytes) -> ApiError:
        reason, message = "", data.decode("utf-8", "replace")[:500]
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("kind") == "Status":
            reason = str(parsed.get("reason", ""))
            message = str(parsed.get("message", message))
            causes = (parsed.get("details") or {}).get("causes") or []
            extra = [str(c.get("message")) for c in causes if c.get("message")]
            if extra and all(x not in message for x in extra):
                message += " (" + "; ".join(extra) + ")"
        return ApiError(call, status, reason, message)
