"""``EmulatorCluster``: the ``Cluster`` port over the emulator's control endpoints.

Why it exists: the controller runs in the harness process and drives the emulated Deployment
the way it drives Kubernetes: ``snapshot()`` discovers it (annotations, replicas, ready pods,
slices on cards) and ``apply(plan)`` sets replicas and slice; the emulator then creates pods
that serve only after the cold start. In ``dry_run`` nothing is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from controller.domain import (
    ApplyResult,
    Card,
    ClusterSnapshot,
    DeploymentState,
    Inventory,
    Plan,
    SliceAllocation,
    WorkloadRef,
)


def snapshot_from_json(data: Mapping[str, Any]) -> ClusterSnapshot:
    """The emulator's ``/emulator/snapshot`` as the domain's snapshot. Purely computational."""
    dep = data["deployment"]
    state = DeploymentState(
        ref=WorkloadRef(dep["namespace"], dep["name"]),
        annotations=dict(dep["annotations"]),
        replicas=int(dep["replicas"]),
        ready_replicas=int(dep["ready_replicas"]),
        slice_pct=int(dep["slice_pct"]),
        memory_mib=int(dep["memory_mib"]),
        rollout_in_progress=bool(dep["rollout_in_progress"]),
    )
    cards = tuple(Card(c["node"], int(c["index"]), int(c["memory_mib"])) for c in data["cards"])
    allocations = tuple(
        SliceAllocation(
            owner=a["owner"],
            pod=a["pod"],
            card_id=a["card_id"],
            share_pct=int(a["share_pct"]),
            memory_mib=int(a["memory_mib"]),
            ready=bool(a["ready"]),
        )
        for a in data["allocations"]
    )
    return ClusterSnapshot(float(data["time_s"]), (state,), (), Inventory(cards, allocations))


class EmulatorCluster:
    """One emulated Deployment at ``base_url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)

    def snapshot(self) -> ClusterSnapshot:
        resp = self._http.get("/emulator/snapshot")
        resp.raise_for_status()
        return snapshot_from_json(resp.json())

    def apply(self, plan: Plan, *, dry_run: bool = False) -> Sequence[ApplyResult]:
        results = []
        for action in plan.scale:
            if dry_run:
                results.append(ApplyResult(action.ref.key, True, "dry run: not applied"))
                continue
            body = {
                "namespace": action.ref.namespace,
                "name": action.ref.name,
                "replicas": action.target.replicas,
                "slice_pct": action.target.slice_pct,
            }
            try:
                resp = self._http.post("/emulator/apply", json=body)
                ok = resp.status_code == 200
                results.append(ApplyResult(action.ref.key, ok, "" if ok else resp.text))
            except httpx.HTTPError as e:
                results.append(ApplyResult(action.ref.key, False, f"{type(e).__name__}: {e}"))
        for job in plan.jobs:
            results.append(ApplyResult(job.ref.key, False, "the emulator runs no Jobs"))
        return results

    def get_json(self, path: str) -> Any:
        resp = self._http.get(path)
        resp.raise_for_status()
        return resp.json()

    def close(self) -> None:
        self._http.close()
