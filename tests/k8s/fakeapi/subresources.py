"""The ``scale`` subresource of Deployments and ``pods/eviction`` with PodDisruptionBudgets."""

from __future__ import annotations

import copy
from typing import Any

from tests.k8s.fakeapi import fields
from tests.k8s.fakeapi.kinds import BY_KIND, ApiFailureError, JsonObj, Kind
from tests.k8s.fakeapi.patches import object_selector_matches
from tests.k8s.fakeapi.storage import Storage


class Subresources(Storage):
    def _scale(
        self,
        kind: Kind,
        ns: str,
        name: str | None,
        method: str,
        body: Any,
        ctype: str,
        manager: str,
    ) -> tuple[int, JsonObj]:
        """``GET``, ``PATCH`` (merge or strategic) or ``PUT`` of a Deployment's ``Scale``; a
        write is an update of ``spec.replicas`` by ``manager`` through the subresource
        ``scale`` (its managedFields entry names it)."""
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
        fields.record_update(kind, dep, updated, manager, "scale")
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


__all__ = ["Subresources"]
