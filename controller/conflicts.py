"""Other autoscalers on a managed Deployment: the workload is held, and says by whom.

Two controllers that write one Deployment's replicas fight: each undoes the other's change
every period, and the pods churn. An HPA does so through the ``scale`` subresource, a KEDA
``ScaledObject`` through the HPA its operator creates, Knative's autoscaler (an
``autoscaling.knative.dev/class`` annotation) through its own. sloscale cannot tell whose
number is right, so it writes nothing to such a Deployment: each tick holds it with reason
``ConflictingAutoscaler`` naming every other autoscaler found, and the other workloads are
planned as if it were not managed (its pods stay where they run). A ``recommend`` workload
writes nothing anyway and is not held: that is how to compare sloscale with the autoscaler
in place before handing it over; ``off`` leaves the workload to the other autoscaler.

The operator hears of it once: a ``Notice`` (a Warning Event) when the hold starts or the set
of other autoscalers changes, not every tick.

Purely computational, no side effects.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from controller.domain import Decision, DeploymentState, Notice, OtherAutoscaler, Reason
from controller.plan import hold


def conflicts_by_workload(
    autoscalers: Sequence[OtherAutoscaler], managed: Collection[str]
) -> dict[str, tuple[OtherAutoscaler, ...]]:
    """The other autoscalers of each workload of ``managed`` (keys) that has any, sorted."""
    found: dict[str, list[OtherAutoscaler]] = {}
    for other in autoscalers:
        key = other.target.key
        if other.target.kind == "Deployment" and key in managed:
            found.setdefault(key, []).append(other)
    return {
        key: tuple(sorted(set(others), key=lambda o: (o.kind, o.name)))
        for key, others in found.items()
    }


def conflict_message(others: Sequence[OtherAutoscaler]) -> str:
    """Why the workload is held, naming each other autoscaler and the ways out."""
    names = ", ".join(o.describe() for o in others)
    return (
        f"also scaled by {names}: holding, to not fight over its replicas; remove the other "
        "autoscaler, or set sloscale.io/mode to recommend (compare) or off (leave it to it)"
    )


def conflict_holds(
    conflicts: Mapping[str, tuple[DeploymentState, tuple[OtherAutoscaler, ...]]], now_s: float
) -> tuple[Decision, ...]:
    """A hold per conflicting workload: what it runs stays, reason ``ConflictingAutoscaler``."""
    return tuple(
        hold(dep, now_s, Reason.CONFLICTING_AUTOSCALER, conflict_message(others))
        for dep, others in conflicts.values()
    )


def conflict_notices(
    holds: Sequence[Decision],
    conflicts: Mapping[str, tuple[DeploymentState, tuple[OtherAutoscaler, ...]]],
    previous: Mapping[str, Decision | None],
) -> tuple[Notice, ...]:
    """A notice per hold that is new: the workload's previous decision was not this hold
    (another reason, or other autoscalers named)."""
    out = []
    for d in holds:
        last = previous.get(d.target)
        if last is not None and last.reason is d.reason and last.message == d.message:
            continue
        out.append(Notice(conflicts[d.target][0].ref, d.reason, d.message))
    return tuple(out)


__all__ = ["conflict_holds", "conflict_message", "conflict_notices", "conflicts_by_workload"]
