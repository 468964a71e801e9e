"""Where the adapter reads and writes: every namespace, or only the ones it is given.

Why it exists: a platform team that may not grant a cluster-wide write runs sloscale with
``--namespaces a,b`` and gives it a Role in each of those namespaces (``deploy/overlays/
namespaced``). That only works if the adapter never asks for more than the Roles allow:

- ``Scope`` says which namespaces are in (``()``: every one, the cluster-wide mode);
- ``ScopedCache`` reads one namespaced resource as one list + watch cache per namespace of
  the scope (``/namespaces/NS/...`` requests, which a Role authorises), or as one
  cluster-wide cache when the scope is every namespace.

Nodes are cluster-scoped, so there is no namespaced way to read the GPU inventory: the
namespaced mode still lists and watches Nodes (read-only ClusterRole, optionally narrowed
with a label selector to the node pool the namespaces own). Pods are read only in the scope,
so slices that pods of other namespaces hold on shared nodes are not seen: give the scope
a node pool of its own (``--node-selector``), or the planner counts those cards as free.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from actuators.kubernetes.api import KubeApi, Resource
from actuators.kubernetes.cache import Reflector

JsonObj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Scope:
    """The namespaces the adapter reads and writes; none listed: every namespace."""

    namespaces: tuple[str, ...] = ()

    @classmethod
    def of(cls, namespaces: str | Iterable[str] | None) -> Scope:
        """From ``None`` (every namespace), ``"a,b"`` or names; sorted, blanks dropped."""
        if namespaces is None:
            return cls()
        names = namespaces.split(",") if isinstance(namespaces, str) else namespaces
        return cls(tuple(sorted({n.strip() for n in names if n.strip()})))

    @property
    def cluster_wide(self) -> bool:
        return not self.namespaces

    def covers(self, namespace: str | None) -> bool:
        """Whether an object of ``namespace`` is in the scope. Purely computational."""
        return self.cluster_wide or namespace in self.namespaces

    def describe(self) -> str:
        return "every namespace" if self.cluster_wide else ", ".join(self.namespaces)


class ScopedCache:
    """One namespaced resource read through one ``Reflector`` per namespace of the scope
    (one cluster-wide ``Reflector`` when the scope is every namespace), as one cache."""

    def __init__(
        self,
        api: KubeApi,
        resource: Resource,
        scope: Scope,
        *,
        label_selector: str | None = None,
        watch_timeout_s: int = 300,
        optional: bool = False,
    ) -> None:
        self.resource = resource
        self.scope = scope
        where: tuple[str | None, ...] = scope.namespaces or (None,)
        self.parts = tuple(
            Reflector(
                api,
                resource,
                ns,
                label_selector=label_selector,
                watch_timeout_s=watch_timeout_s,
                optional=optional,
            )
            for ns in where
        )

    @property
    def lists(self) -> int:
        """Full lists done by every part (one each at start, then only after 410 Gone)."""
        return sum(r.lists for r in self.parts)

    @property
    def last_error(self) -> str | None:
        """The parts' last failures, each named by its namespace; ``None`` when none failed."""
        errors = [f"{r.namespace or '*'}: {r.last_error}" for r in self.parts if r.last_error]
        return "; ".join(errors) or None

    def items(self) -> list[JsonObj]:
        return [o for r in self.parts for o in r.items()]

    def get(self, namespace: str | None, name: str) -> JsonObj | None:
        if not self.scope.covers(namespace):
            return None
        for r in self.parts:
            if r.namespace in (None, namespace):
                return r.get(namespace, name)
        return None

    def wait_synced(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        return all(r.wait_synced(max(0.0, deadline - time.monotonic())) for r in self.parts)

    def start(self) -> None:
        for r in self.parts:
            r.start()

    def stop(self) -> None:
        for r in self.parts:
            r.stop()


__all__ = ["Scope", "ScopedCache"]
