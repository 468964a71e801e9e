"""From a series' labels to the workload it belongs to.

Why it exists: Prometheus series carry pod labels (``namespace``, ``pod``, added by the scrape
config or by dcgm-exporter's pod mapping), while the controller thinks in Deployments. The
source asks for every workload's series at once, grouped by pod, and maps pods back to
workloads here with the cluster snapshot's pod map (``SliceAllocation.owner`` per pod).

Resolution order for one series:

1. the snapshot's pod map: ``(namespace, pod)`` -> owner (exact, and it gives the pod's slice);
2. a workload label (``deployment`` by default, as the simulator and many relabel configs
   set it) naming a target in the series' namespace;
3. ReplicaSet naming: a Deployment ``web`` owns pods ``web-<hash>-<suffix>``, so a pod name
   with the target's name and two more dash-separated tokens belongs to it. This is what lets
   the warm start attribute series of pods that are long gone.

A series nothing resolves is ignored (it belongs to a workload sloscale does not manage).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.domain import ApplyResult, ClusterSnapshot, Plan
from controller.ports import Cluster, ObserveTarget

_POD_SUFFIX = re.compile(r"^-[a-z0-9]{1,10}-[a-z0-9]{5}$")


@dataclass(frozen=True, slots=True)
class PodInfo:
    """One pod the cluster reports: its workload's key, its GPU share (% of a card), and the
    share allocated on the cards it holds slices on, its own included (what a card-level
    reading is spread over: ``gpu``)."""

    workload: str
    share_pct: int | None = None
    ready: bool = True
    card_share_pct: int | None = None


PodMap = Mapping[tuple[str, str], PodInfo]
"""``(namespace, pod) -> PodInfo``."""


def pod_map_from_snapshot(snapshot: ClusterSnapshot) -> dict[tuple[str, str], PodInfo]:
    """Every slice-holding pod of the snapshot; a pod with slices on two cards adds them up.

    Purely computational.
    """
    allocated = snapshot.inventory.used_pct_by_card()
    out: dict[tuple[str, str], PodInfo] = {}
    for a in snapshot.inventory.allocations:
        namespace = a.owner.split("/", 1)[0]
        key = (namespace, a.pod)
        prev = out.get(key)
        share = a.share_pct + ((prev.share_pct or 0) if prev else 0)
        on_cards = allocated[a.card_id] + ((prev.card_share_pct or 0) if prev else 0)
        ready = a.ready and (prev.ready if prev else True)
        out[key] = PodInfo(a.owner, share, ready, on_cards)
    return out


@dataclass(frozen=True, slots=True)
class LabelNames:
    """Which labels carry the namespace, the pod and (optionally) the workload name."""

    namespace: str = "namespace"
    pod: str = "pod"
    workload: str = "deployment"


class WorkloadResolver:
    """Maps label sets to ``WorkloadRef.key`` for one set of targets and one pod map."""

    def __init__(self, targets: Sequence[ObserveTarget], pods: PodMap) -> None:
        self._keys = {t.ref.key for t in targets}
        self._names_by_ns: dict[str, list[str]] = {}
        for t in targets:
            self._names_by_ns.setdefault(t.ref.namespace, []).append(t.ref.name)
        for names in self._names_by_ns.values():
            names.sort(key=len, reverse=True)  # the longest name wins ("web-api" over "web")
        self._pods = pods

    def resolve(
        self, labels: Mapping[str, str], names: LabelNames = LabelNames()
    ) -> tuple[str, str | None] | None:
        """``(workload key, pod name or None)`` for a series, or ``None`` when unmanaged."""
        namespace = labels.get(names.namespace, "")
        pod = labels.get(names.pod) or None
        if pod is not None:
            info = self._pods.get((namespace, pod))
            if info is not None and info.workload in self._keys:
                return info.workload, pod
        workload = labels.get(names.workload)
        if workload:
            key = f"{namespace}/{workload}"
            if key in self._keys:
                return key, pod
        if pod is not None:
            for name in self._names_by_ns.get(namespace, ()):
                if pod.startswith(name) and _POD_SUFFIX.match(pod[len(name) :]):
                    return f"{namespace}/{name}", pod
        return None

    def share_pct(self, namespace: str, pod: str) -> int | None:
        info = self._pods.get((namespace, pod))
        return info.share_pct if info is not None else None

    def pod_info(self, namespace: str, pod: str) -> PodInfo | None:
        """What the snapshot says about a pod (``None``: not in it)."""
        return self._pods.get((namespace, pod))


class SnapshotTap:
    """A ``Cluster`` that passes everything through and remembers the last pod map.

    The loop hands the metrics source only the targets; this tap is how a composition root
    (``sloscale run``) gives the Prometheus source the snapshot's pods without changing the
    port: ``PrometheusMetricsSource(..., pods=tap.pod_map)``.
    """

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._lock = threading.Lock()
        self._pods: dict[tuple[str, str], PodInfo] = {}

    def snapshot(self) -> ClusterSnapshot:
        snap = self.cluster.snapshot()
        pods = pod_map_from_snapshot(snap)
        with self._lock:
            self._pods = pods
        return snap

    def apply(self, plan: Plan, *, dry_run: bool = False) -> Sequence[ApplyResult]:
        return self.cluster.apply(plan, dry_run=dry_run)

    def pod_map(self) -> PodMap:
        with self._lock:
            return dict(self._pods)
