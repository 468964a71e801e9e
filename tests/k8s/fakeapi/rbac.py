"""What a request is as RBAC sees it, who may make it, and the faults injected into it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.k8s.fakeapi.kinds import ApiFailureError, Kind


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
    query: Mapping[str, str] = field(default_factory=dict)  # fieldManager, force, watch...

    @property
    def is_write(self) -> bool:
        return self.method not in ("GET", "HEAD")


@dataclass
class Rule:
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    namespace: str | None = None  # None: cluster-wide (ClusterRole)
    resource_names: tuple[str, ...] = ()  # none: any object (a create has no name yet)

    def allows(self, r: Request) -> bool:
        if self.namespace is not None and r.namespace != self.namespace:
            return False
        if self.resource_names and r.name not in self.resource_names:
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
            tuple(r.get("resourceNames") or ()),
        )
        for r in role.get("rules") or []
    ]


def request_verb(method: str, name: str | None, query: Mapping[str, str]) -> str:
    if method == "GET":
        if name:
            return "get"
        return "watch" if query.get("watch") in ("true", "1") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )


def authorize(rules: list[Rule] | None, req: Request, kind: Kind) -> None:
    """Refuse ``req`` as the API server does unless ``rules`` (None: all) allow it."""
    if rules is None or any(r.allows(req) for r in rules):
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


@dataclass
class Injected:
    """A fault to answer the next ``times`` matching requests with (``fail_next``)."""

    method: str
    resource: str
    code: int
    reason: str
    message: str
    times: int
    verb: str | None = None  # only requests of this verb ("watch", "list", "get"...); None: any


__all__ = ["Injected", "Request", "Rule", "authorize", "request_verb", "rules_from_role"]
