"""The other autoscalers of the cluster: HPAs, KEDA ScaledObjects, Knative class annotations.

Why it exists: a Deployment that another autoscaler also scales must not be written by
sloscale (``controller.conflicts`` holds it). This module finds them, in two parts:

- pure readers of the objects as the API server sends them (``others``): an
  ``autoscaling/v2`` ``HorizontalPodAutoscaler`` whose ``spec.scaleTargetRef`` is a
  Deployment; a ``keda.sh/v1alpha1`` ``ScaledObject`` whose ``spec.scaleTargetRef`` names one
  (``kind`` defaults to Deployment, as in KEDA); an ``autoscaling.knative.dev/class``
  annotation on a Deployment or its pod template. An HPA that KEDA made for a ScaledObject
  (owned by it) is named as the ScaledObject, the object to act on; ``sloscale validate``
  reads manifests with the same functions;
- ``AutoscalerCaches``: list + watch caches of HPAs and ScaledObjects in the adapter's scope
  (one per namespace of ``--namespaces``, as every namespaced read: ``scope.py``).

They never hold the tick. What they do when they fail, the safe way round:

- KEDA not installed (its API group answers 404): no ScaledObjects, said once at INFO and
  checked again every 5 minutes quietly (``Reflector`` ``optional``);
- a list or watch that fails after a success: the last known objects are kept, so a known
  conflict stays held (a lost watch never reads as "no conflict"), and ``errors`` says so
  each tick once the cache is past its staleness bound;
- a list that never succeeded (RBAC not granted, API down): nothing is known, and
  ``errors`` says so each tick (a tick error in the API and on ``/metrics``), rather than
  reading as "no conflict" in silence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from actuators.kubernetes.api import HPAS, SCALED_OBJECTS, KubeApi
from actuators.kubernetes.cache import Reflector
from actuators.kubernetes.scope import Scope, ScopedCache
from controller.domain import OtherAutoscaler, WorkloadRef

JsonObj = dict[str, Any]

HPA_KIND = "HorizontalPodAutoscaler"
SCALED_OBJECT_KIND = "ScaledObject"
KNATIVE_CLASS = "autoscaling.knative.dev/class"
"""Knative Serving's autoscaler class (``kpa.autoscaling.knative.dev`` or ``hpa...``), on a
Revision's Deployment and its pod template."""


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _where(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _mapping(obj.get("metadata"))
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def scale_target(obj: Mapping[str, Any]) -> WorkloadRef | None:
    """What an HPA or a ScaledObject scales (``spec.scaleTargetRef``, in its namespace);
    ``None`` when it names nothing. A ScaledObject's ``kind`` defaults to Deployment."""
    ref = _mapping(_mapping(obj.get("spec")).get("scaleTargetRef"))
    name = ref.get("name")
    if not isinstance(name, str) or not name:
        return None
    kind = ref.get("kind") or "Deployment"
    return WorkloadRef(_where(obj)[0], name, str(kind))


def _owned_by(obj: Mapping[str, Any], kind: str) -> str | None:
    for owner in _mapping(obj.get("metadata")).get("ownerReferences") or []:
        if isinstance(owner, Mapping) and owner.get("kind") == kind:
            return str(owner.get("name") or "")
    return None


def knative_class(deployment: Mapping[str, Any]) -> OtherAutoscaler | None:
    """The Knative autoscaling class a Deployment (or its pod template) carries, if any."""
    namespace, name = _where(deployment)
    template = _mapping(_mapping(deployment.get("spec")).get("template"))
    places = (("", deployment.get("metadata")), (" pod template", template.get("metadata")))
    for where, meta in places:
        value = _mapping(_mapping(meta).get("annotations")).get(KNATIVE_CLASS)
        if value:
            target = WorkloadRef(namespace, name)
            return OtherAutoscaler(KNATIVE_CLASS, f"{value!s} on{where} {target.key}", target)
    return None


def others(
    hpas: Iterable[Mapping[str, Any]],
    scaled_objects: Iterable[Mapping[str, Any]],
    deployments: Iterable[Mapping[str, Any]],
) -> tuple[OtherAutoscaler, ...]:
    """Every other autoscaler these objects make, whatever its target. Purely computational."""
    found: list[OtherAutoscaler] = []
    keda: set[tuple[str, str]] = set()
    for so in scaled_objects:
        target = scale_target(so)
        if target is not None:
            namespace, name = _where(so)
            keda.add((namespace, name))
            found.append(OtherAutoscaler(SCALED_OBJECT_KIND, f"{namespace}/{name}", target))
    for hpa in hpas:
        target = scale_target(hpa)
        namespace, name = _where(hpa)
        if target is None or (namespace, _owned_by(hpa, SCALED_OBJECT_KIND)) in keda:
            continue  # KEDA's own HPA: its ScaledObject is named instead
        found.append(OtherAutoscaler(HPA_KIND, f"{namespace}/{name}", target))
    found += [k for d in deployments if (k := knative_class(d)) is not None]
    return tuple(found)


class AutoscalerCaches:
    """List + watch caches of HPAs and ScaledObjects in ``scope``; they never hold a tick."""

    def __init__(self, api: KubeApi, scope: Scope, *, watch_timeout_s: int = 300) -> None:
        self.hpas = ScopedCache(api, HPAS, scope, watch_timeout_s=watch_timeout_s)
        self.scaled_objects = ScopedCache(
            api, SCALED_OBJECTS, scope, watch_timeout_s=watch_timeout_s, optional=True
        )
        self.parts: tuple[Reflector, ...] = (*self.hpas.parts, *self.scaled_objects.parts)

    def start(self) -> None:
        for r in self.parts:
            r.start()

    def stop(self) -> None:
        for r in self.parts:
            r.stop()

    def wait_tried(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s`` in all) for each cache's first answer: a first tick
        knows the conflicts there are, without waiting on a list that keeps failing."""
        return all(r.wait_tried(timeout_s) for r in self.parts)

    def found(
        self, deployments: Iterable[Mapping[str, Any]], max_staleness_s: float
    ) -> tuple[tuple[OtherAutoscaler, ...], tuple[str, ...]]:
        """The other autoscalers known, and why they may be incomplete (see the module)."""
        errors = []
        for r in self.parts:
            age = r.staleness_s()
            if not r.synced:
                why = r.last_error or "no answer yet"
                errors.append(f"other autoscalers unknown: cannot list {r.where} ({why})")
            elif age is not None and age > max_staleness_s:
                why = r.last_error or "no watch open"
                errors.append(  # no age in it: the same problem each tick (problems.py)
                    f"{r.where} not confirmed within {max_staleness_s:g} s ({why}): "
                    "the last known other autoscalers are kept"
                )
        found = others(self.hpas.items(), self.scaled_objects.items(), deployments)
        return found, tuple(errors)


__all__ = ["AutoscalerCaches", "knative_class", "others", "scale_target"]
