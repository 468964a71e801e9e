"""Whether a Deployment's current template is failing, read from real Kubernetes objects.

Why it exists: a resize rolls the Deployment, and the planner must know when the new pods
will not become ready (``controller.policy.rollback``), as plain data on the snapshot
(``DeploymentState.rollout_failure``). This module is the one place that knows how
Kubernetes says so:

- a pod ``status.phase: Pending`` with the condition ``PodScheduled=False`` reason
  ``Unschedulable`` (no node fits it), since that condition's ``lastTransitionTime``;
- a container (or init container) whose ``lastState.terminated.reason`` or
  ``state.terminated.reason`` is ``OOMKilled``, or waiting with reason ``CrashLoopBackOff``;
- the Deployment's condition ``Progressing=False`` reason ``ProgressDeadlineExceeded``
  (``spec.progressDeadlineSeconds``, 600 s by default), once its status describes the
  current generation.

Only pods of the current template count: those the Deployment owns (through its
ReplicaSet) whose GPU slice, read in any dialect, is the template's, and which are not
being deleted. Purely computational, no side effects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from actuators.dialects import read_slice
from actuators.kubernetes.objects import (
    annotations_of,
    deployment_state,
    meta,
    parse_time_s,
    pod_owner_key,
    ref_of,
)
from controller.domain import DeploymentState, RolloutFailure, RolloutFailureReason

JsonObj = Mapping[str, Any]


def pods_by_owner(pods: Iterable[JsonObj]) -> dict[str, list[JsonObj]]:
    """Pods by the ``namespace/name`` of the workload that owns them."""
    out: dict[str, list[JsonObj]] = {}
    for pod in pods:
        out.setdefault(pod_owner_key(pod), []).append(pod)
    return out


def with_failure(
    deployment: JsonObj, card_memory_mib: int, pods_by_owner: Mapping[str, Sequence[JsonObj]]
) -> DeploymentState:
    """The Deployment's state with whether its current template is failing."""
    key = ref_of(deployment, "Deployment").key
    failure = rollout_failure(deployment, pods_by_owner.get(key, ()), card_memory_mib)
    return replace(deployment_state(deployment, card_memory_mib), rollout_failure=failure)


def rollout_failure(
    deployment: JsonObj, pods: Sequence[JsonObj], card_memory_mib: int
) -> RolloutFailure | None:
    """Why the current template's pods do not become ready, or ``None`` (nothing says so).
    A crashed container first, then the progress deadline, then a pod with no fit."""
    template = (deployment.get("spec") or {}).get("template") or {}
    want = read_slice(template.get("spec") or {}, annotations_of(template), card_memory_mib)
    current = [
        p
        for p in pods
        if not meta(p).get("deletionTimestamp")
        and read_slice(p.get("spec") or {}, annotations_of(p), card_memory_mib) == want
    ]
    for pod in current:
        crashed = _crashed(pod)
        if crashed is not None:
            return crashed
    deadline = _progress_deadline(deployment)
    if deadline is not None:
        return deadline
    unschedulable = [u for p in current if (u := _unschedulable(p)) is not None]
    if not unschedulable:
        return None
    return min(unschedulable, key=lambda u: u.since_s if u.since_s is not None else 0.0)


def _crashed(pod: JsonObj) -> RolloutFailure | None:
    status = pod.get("status") or {}
    name = meta(pod).get("name", "")
    statuses = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    looping = None
    for cs in statuses:
        state, last = cs.get("state") or {}, cs.get("lastState") or {}
        terminated = [(state.get("terminated") or {}), (last.get("terminated") or {})]
        if any(t.get("reason") == "OOMKilled" for t in terminated):
            detail = f"pod {name}: container {cs.get('name', '')} OOMKilled"
            return RolloutFailure(RolloutFailureReason.OOM_KILLED, None, detail)
        if (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff" and looping is None:
            detail = f"pod {name}: container {cs.get('name', '')} in CrashLoopBackOff"
            looping = RolloutFailure(RolloutFailureReason.CRASH_LOOP, None, detail)
    return looping


def _unschedulable(pod: JsonObj) -> RolloutFailure | None:
    status = pod.get("status") or {}
    if status.get("phase") != "Pending":
        return None
    for c in status.get("conditions") or []:
        if (c.get("type"), c.get("status"), c.get("reason")) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        ):
            since = parse_time_s(c.get("lastTransitionTime"))
            message = str(c.get("message") or "no node fits it")
            detail = f"pod {meta(pod).get('name', '')}: {message}"
            return RolloutFailure(RolloutFailureReason.UNSCHEDULABLE, since, detail[:200])
    return None


def _progress_deadline(deployment: JsonObj) -> RolloutFailure | None:
    status = deployment.get("status") or {}
    if int(status.get("observedGeneration", 0)) < int(meta(deployment).get("generation", 0)):
        return None  # the conditions describe an older template
    for c in status.get("conditions") or []:
        if (c.get("type"), c.get("status"), c.get("reason")) == (
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
        ):
            since = parse_time_s(c.get("lastTransitionTime"))
            detail = str(c.get("message") or "")[:200]
            return RolloutFailure(RolloutFailureReason.PROGRESS_DEADLINE, since, detail)
    return None
