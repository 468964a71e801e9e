"""Kubernetes JSON objects -> sloscale domain types.

Why it exists: the discovery cache holds objects exactly as the API server sends them (plain
JSON, no client models); this module is the one place that knows which field means what:

- a Deployment's ``spec.replicas``, ``status.readyReplicas``, its pod template's slice (any
  dialect, ``actuators.dialects``) and whether a rollout is unfinished (the rule of
  ``kubectl rollout status``: observed generation behind, or updated/available replicas short
  of the desired count, or old replicas still present);
- a Job's gang (``spec.parallelism``), phase (conditions ``Complete``/``Failed``,
  ``spec.suspend``, ``status.active``) and last start (``status.startTime``, which the Job
  controller resets on resume);
- a bare pod carrying ``sloscale.io/priority`` or ``sloscale.io/preemptible`` as a gang of one;
- the GPU inventory: cards from HAMi's ``hami.io/node-nvidia-register`` annotation when the
  node has one (JSON list, or the older ``id,count,devmem,devcore,type,numa,health:`` form),
  otherwise from allocatable ``nvidia.com/gpu`` and MIG resources with memory from the GPU
  feature discovery label ``nvidia.com/gpu.memory``; allocations from every scheduled,
  unfinished pod that asks for a slice (HAMi's ``hami.io/vgpu-devices-allocated`` names the
  card; elsewhere slices are placed first-fit on the pod's node, in creation order).

Purely computational, no side effects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actuators.dialects import MIG_PREFIX, parse_mig_resource, read_slice
from controller.domain import (
    Card,
    DeploymentState,
    Inventory,
    JobPhase,
    JobState,
    SliceAllocation,
    WorkloadRef,
)
from controller.spec import ANNOTATION_PREFIX, CONTROLLER_NAMES, KNOWN_DEPLOYMENT_KEYS

JsonObj = dict[str, Any]

ENABLED = ANNOTATION_PREFIX + "enabled"
LAST_DECISION = ANNOTATION_PREFIX + "last-decision"
RETRAIN_OF_LABEL = ANNOTATION_PREFIX + "retrain-of"
HAMI_REGISTER = "hami.io/node-nvidia-register"
HAMI_ALLOCATED = "hami.io/vgpu-devices-allocated"
GFD_MEMORY_LABEL = "nvidia.com/gpu.memory"
GFD_COUNT_LABEL = "nvidia.com/gpu.count"
GPU_RESOURCE = "nvidia.com/gpu"
_JOB_KEYS = (ANNOTATION_PREFIX + "priority", ANNOTATION_PREFIX + "preemptible")
_MIG_SLICES = 7


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(meta(obj).get("annotations") or {})


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(meta(obj).get("labels") or {})


def ref_of(obj: Mapping[str, Any], kind: str) -> WorkloadRef:
    m = meta(obj)
    return WorkloadRef(m.get("namespace") or "", m.get("name") or "", kind)


def object_sort_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    m = meta(obj)
    return (str(m.get("namespace") or ""), str(m.get("name") or ""))


def parse_time_s(text: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (``metav1.Time``/``MicroTime``)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Deployments
# --------------------------------------------------------------------------------------------


def opted_in(deployment: Mapping[str, Any]) -> bool:
    return annotations_of(deployment).get(ENABLED, "").strip().lower() == "true"


CONTROLLER_ANNOTATIONS = frozenset(ANNOTATION_PREFIX + n for n in CONTROLLER_NAMES)
"""What sloscale itself writes on a Deployment: never a user's request."""


def addressed(deployment: Mapping[str, Any]) -> bool:
    """Opted in, or carrying a ``sloscale.io/`` key no Deployment takes: the loop parses it
    and reports the key (``sloscale.io/enable`` is most likely a failed opt-in)."""
    return opted_in(deployment) or any(
        k.startswith(ANNOTATION_PREFIX)
        and k not in KNOWN_DEPLOYMENT_KEYS
        and k not in CONTROLLER_ANNOTATIONS
        for k in annotations_of(deployment)
    )


def rollout_in_progress(deployment: Mapping[str, Any]) -> bool:
    """True until the Deployment controller has rolled every replica to the current template."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    want = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int(meta(deployment).get("generation", 0)):
        return True
    updated = int(status.get("updatedReplicas", 0))
    return (
        updated < want
        or int(status.get("replicas", 0)) > updated
        or int(status.get("availableReplicas", 0)) < updated
    )


def deployment_state(deployment: Mapping[str, Any], card_memory_mib: int) -> DeploymentState:
    spec = deployment.get("spec") or {}
    template = spec.get("template") or {}
    found = read_slice(template.get("spec") or {}, annotations_of(template), card_memory_mib)
    return DeploymentState(
        ref=ref_of(deployment, "Deployment"),
        annotations=annotations_of(deployment),
        replicas=int(spec.get("replicas", 1)),
        ready_replicas=int((deployment.get("status") or {}).get("readyReplicas", 0)),
        slice_pct=found.share_pct if found else 0,
        memory_mib=(found.memory_mib or 0) if found else 0,
        rollout_in_progress=rollout_in_progress(deployment),
    )


# --------------------------------------------------------------------------------------------
# Jobs and bare pods
# --------------------------------------------------------------------------------------------


def tracked_job(job: Mapping[str, Any]) -> bool:
    """A Job sloscale looks after: it carries a ``sloscale.io/`` annotation or retrain label."""
    ann = annotations_of(job)
    return any(k.startswith(ANNOTATION_PREFIX) and k != LAST_DECISION for k in ann) or (
        RETRAIN_OF_LABEL in labels_of(job)
    )


def _condition(obj: Mapping[str, Any], kind: str) -> bool:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind and c.get("status") == "True":
            return True
    return False


def job_phase(job: Mapping[str, Any]) -> JobPhase:
    if _condition(job, "Complete"):
        return JobPhase.SUCCEEDED
    if _condition(job, "Failed"):
        return JobPhase.FAILED
    if (job.get("spec") or {}).get("suspend"):
        return JobPhase.SUSPENDED
    if int((job.get("status") or {}).get("active", 0)) > 0:
        return JobPhase.RUNNING
    return JobPhase.PENDING


def job_state(job: Mapping[str, Any], card_memory_mib: int) -> JobState:
    spec = job.get("spec") or {}
    template = spec.get("template") or {}
    found = read_slice(template.get("spec") or {}, annotations_of(template), card_memory_mib)
    return JobState(
        ref=ref_of(job, "Job"),
        annotations=_sloscale_only(annotations_of(job)),
        pods=int(spec.get("parallelism", 1)),
        share_pct_per_pod=found.share_pct if found else 0,
        memory_mib_per_pod=(found.memory_mib or 0) if found else 0,
        phase=job_phase(job),
        started_at_s=parse_time_s((job.get("status") or {}).get("startTime")),
        labels=labels_of(job),
    )


def _sloscale_only(ann: Mapping[str, str]) -> dict[str, str]:
    """The annotations the job spec parser reads (our own decision record is not one)."""
    return {k: v for k, v in ann.items() if k != LAST_DECISION}


def bare_pod(pod: Mapping[str, Any]) -> bool:
    """A pod with no controller owner that opted into preemption."""
    owners = meta(pod).get("ownerReferences") or []
    ann = annotations_of(pod)
    return not owners and any(k in ann for k in _JOB_KEYS)


_POD_PHASES = {
    "Pending": JobPhase.PENDING,
    "Running": JobPhase.RUNNING,
    "Succeeded": JobPhase.SUCCEEDED,
    "Failed": JobPhase.FAILED,
}


def bare_pod_state(pod: Mapping[str, Any], card_memory_mib: int) -> JobState:
    found = read_slice(pod.get("spec") or {}, annotations_of(pod), card_memory_mib)
    status = pod.get("status") or {}
    return JobState(
        ref=ref_of(pod, "Pod"),
        annotations=_sloscale_only(annotations_of(pod)),
        pods=1,
        share_pct_per_pod=found.share_pct if found else 0,
        memory_mib_per_pod=(found.memory_mib or 0) if found else 0,
        phase=_POD_PHASES.get(str(status.get("phase")), JobPhase.PENDING),
        started_at_s=parse_time_s(status.get("startTime")),
        labels=labels_of(pod),
    )


# --------------------------------------------------------------------------------------------
# Inventory
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HamiCard:
    """One card from HAMi's node registration annotation."""

    uuid: str
    index: int
    split_count: int
    memory_mib: int
    cores_pct: int
    model: str
    healthy: bool


def parse_hami_register(text: str) -> tuple[HamiCard, ...]:
    """Cards in ``hami.io/node-nvidia-register``: a JSON list (HAMi >= 2.4) or the legacy
    ``uuid,count,devmem,devcore,type,numa,health[,mode,index]:`` form; bad entries skipped."""
    text = text.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            return ()
        cards = []
        for i, d in enumerate(items if isinstance(items, list) else []):
            if not isinstance(d, dict):
                continue
            try:
                cards.append(
                    HamiCard(
                        uuid=str(d.get("id", "")),
                        index=int(d.get("index", i)),
                        split_count=int(d.get("count", 0)),
                        memory_mib=int(d.get("devmem", 0)),
                        cores_pct=int(d.get("devcore", 100)),
                        model=str(d.get("type", "")),
                        healthy=bool(d.get("health", True)),
                    )
                )
            except (TypeError, ValueError):
                continue
        return tuple(cards)
    cards = []
    for i, entry in enumerate(e for e in text.split(":") if "," in e):
        f = entry.split(",")
        if len(f) < 7:
            continue
        try:
            index = int(f[8]) if len(f) >= 9 and f[8].isdigit() else i
            cards.append(
                HamiCard(
                    uuid=f[0],
                    index=index,
                    split_count=int(f[1]),
                    memory_mib=int(f[2]),
                    cores_pct=int(f[3]),
                    model=f[4],
                    healthy=f[6].strip().lower() == "true",
                )
            )
        except ValueError:
            continue
    return tuple(cards)


def _int(value: object) -> int:
    try:
        number = float(str(value))
    except ValueError:
        return 0
    return int(number) if math.isfinite(number) else 0


def node_cards(node: Mapping[str, Any]) -> tuple[tuple[Card, ...], dict[str, int]]:
    """A node's cards, and HAMi card UUIDs -> index (empty without HAMi)."""
    name = str(meta(node).get("name", ""))
    register = annotations_of(node).get(HAMI_REGISTER)
    if register:
        hami = [c for c in parse_hami_register(register) if c.healthy]
        cards = tuple(
            Card(
                node=name,
                index=c.index,
                memory_mib=c.memory_mib,
                capacity_pct=min(100, c.cores_pct),
            )
            for c in sorted(hami, key=lambda c: c.index)
        )
        return cards, {c.uuid: c.index for c in hami}
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    labels = labels_of(node)
    memory = _int(labels.get(GFD_MEMORY_LABEL, 0))
    whole = _int(allocatable.get(GPU_RESOURCE, 0))
    mig_slices = 0
    for key, value in allocatable.items():
        profile = parse_mig_resource(key) if key.startswith(MIG_PREFIX) else None
        if profile is not None:
            mig_slices += profile.compute_slices * _int(value)
            memory = memory or profile.memory_mib * _MIG_SLICES // profile.compute_slices
    count = max(whole, _int(labels.get(GFD_COUNT_LABEL, 0)) if mig_slices else 0)
    count = max(count, -(-mig_slices // _MIG_SLICES))
    return tuple(Card(node=name, index=i, memory_mib=memory) for i in range(count)), {}


def pod_owner_key(pod: Mapping[str, Any]) -> str:
    """``namespace/name`` of the workload a pod belongs to (Deployment via its ReplicaSet)."""
    m = meta(pod)
    ns = m.get("namespace") or ""
    for o in m.get("ownerReferences") or []:
        if not o.get("controller", True):
            continue
        name = str(o.get("name", ""))
        if o.get("kind") == "ReplicaSet":
            pth = labels_of(pod).get("pod-template-hash")
            if pth and name.endswith("-" + pth):
                name = name[: -len(pth) - 1]
        return f"{ns}/{name}"
    return f"{ns}/{m.get('name', '')}"


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def holds_slice(pod: Mapping[str, Any]) -> bool:
    """Scheduled on a node and not finished: the pod occupies its slice."""
    phase = (pod.get("status") or {}).get("phase")
    return bool((pod.get("spec") or {}).get("nodeName")) and phase not in ("Succeeded", "Failed")


def inventory(nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> Inventory:
    """Every card in the pool and every slice placed on one."""
    cards: list[Card] = []
    uuids: dict[str, dict[str, int]] = {}
    for node in sorted(nodes, key=lambda n: str(meta(n).get("name", ""))):
        node_card_list, by_uuid = node_cards(node)
        cards.extend(node_card_list)
        uuids[str(meta(node).get("name", ""))] = by_uuid
    by_node: dict[str, list[Card]] = {}
    for c in cards:
        by_node.setdefault(c.node, []).append(c)
    free = {c.card_id: c.capacity_pct for c in cards}
    memory = max((c.memory_mib for c in cards), default=0)
    allocations: list[SliceAllocation] = []
    ordered = sorted(
        (p for p in pods if holds_slice(p)),
        key=lambda p: (str(meta(p).get("creationTimestamp", "")), str(meta(p).get("name", ""))),
    )
    for pod in ordered:
        node_name = str(pod["spec"]["nodeName"])
        found = read_slice(pod.get("spec") or {}, annotations_of(pod), memory)
        node_cards_here = by_node.get(node_name, [])
        if found is None or not node_cards_here:
            continue
        card = _card_of(pod, node_cards_here, uuids.get(node_name, {}), free, found.share_pct)
        free[card.card_id] -= found.share_pct
        allocations.append(
            SliceAllocation(
                owner=pod_owner_key(pod),
                pod=str(meta(pod).get("name", "")),
                card_id=card.card_id,
                share_pct=found.share_pct,
                memory_mib=found.memory_mib or 0,
                ready=pod_ready(pod),
            )
        )
    return Inventory(cards=tuple(cards), allocations=tuple(allocations))


def _card_of(
    pod: Mapping[str, Any],
    cards: list[Card],
    uuids: Mapping[str, int],
    free: Mapping[str, int],
    share_pct: int,
) -> Card:
    allocated = annotations_of(pod).get(HAMI_ALLOCATED, "")
    uuid = allocated.split(",", 1)[0].strip() if allocated else ""
    if uuid in uuids:
        for c in cards:
            if c.index == uuids[uuid]:
                return c
    for c in cards:
        if free[c.card_id] >= share_pct:
            return c
    return max(cards, key=lambda c: free[c.card_id])


def max_card_memory_mib(inv: Inventory) -> int:
    return max((c.memory_mib for c in inv.cards), default=0)
