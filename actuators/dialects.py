"""GPU slice dialects: how one slice (share of a card + GPU memory) is written in a pod spec.

Kubernetes has no native fractional GPU; each sharing stack spells a slice its own way
(ARCHITECTURE §4):

- ``hami``: container limits ``nvidia.com/gpu: 1``, ``nvidia.com/gpucores: <pct>``,
  ``nvidia.com/gpumem: <MiB>``;
- ``volcano``: container limits ``volcano.sh/vgpu-number: 1``, ``volcano.sh/vgpu-cores: <pct>``,
  ``volcano.sh/vgpu-memory: <MiB>``;
- ``kai``: pod annotation ``gpu-fraction: "<0.1..1.0>"`` (memory follows the fraction);
- ``mig``: one ``nvidia.com/mig-<g>g.<mem>gb`` resource, the smallest profile that holds the
  share and the memory.

Two dialects are honoured only by their own scheduler, which also needs a queue
(``SCHEDULERS``): ``volcano`` pods must name ``schedulerName: volcano`` (queue: the pod
annotation ``scheduling.volcano.sh/queue-name``, Volcano's ``default`` queue when absent), and
``kai`` pods ``schedulerName: kai-scheduler`` (queue: the pod label ``kai.scheduler/queue``,
which KAI requires). Under the default scheduler a ``gpu-fraction`` is ignored and a vGPU
request is not bound to a card, so a resize in these dialects also writes the scheduler's
name; the queue is the team's choice and never invented (``sloscale validate`` reports a
``kai`` template without one, and one without a scheduler).

This module reads a slice back from a pod spec (whatever dialect wrote it) and renders the
strategic-merge patch that writes a slice in a given dialect, removing the other dialects'
keys so a template never carries two. Purely computational, no side effects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from controller.domain import SHARE_UNIT_PCT, SliceDialect

__all__ = [
    "HAMI_CORES",
    "HAMI_GPU",
    "HAMI_MEMORY",
    "KAI_FRACTION",
    "MIG_PROFILES",
    "SCHEDULERS",
    "VOLCANO_CORES",
    "VOLCANO_MEMORY",
    "VOLCANO_NUMBER",
    "MigProfile",
    "SchedulerNeeds",
    "Slice",
    "gpu_container_index",
    "mig_profile_for",
    "mig_profiles_for_card",
    "parse_mig_resource",
    "read_slice",
    "slice_patch",
]

JsonObj = dict[str, Any]

HAMI_GPU = "nvidia.com/gpu"
HAMI_CORES = "nvidia.com/gpucores"
HAMI_MEMORY = "nvidia.com/gpumem"
VOLCANO_NUMBER = "volcano.sh/vgpu-number"
VOLCANO_CORES = "volcano.sh/vgpu-cores"
VOLCANO_MEMORY = "volcano.sh/vgpu-memory"
KAI_FRACTION = "gpu-fraction"
MIG_PREFIX = "nvidia.com/mig-"


@dataclass(frozen=True, slots=True)
class SchedulerNeeds:
    """What a dialect's scheduler needs of a pod template: its ``schedulerName`` and a queue,
    given as a pod label or annotation ``queue_key`` (``queue_required``: no default queue)."""

    scheduler_name: str
    queue_key: str
    queue_in_labels: bool
    queue_required: bool


SCHEDULERS: Mapping[SliceDialect, SchedulerNeeds] = {
    # volcano-sh/volcano, vendor/volcano.sh/apis/pkg/apis/scheduling/v1beta1/labels.go:
    # QueueNameAnnotationKey = GroupName + "/queue-name" (GroupName scheduling.volcano.sh);
    # pods without it go to the queue "default" that Volcano creates at install.
    SliceDialect.VOLCANO: SchedulerNeeds(
        "volcano", "scheduling.volcano.sh/queue-name", queue_in_labels=False, queue_required=False
    ),
    # NVIDIA/KAI-Scheduler, docs/gpu-sharing/gpu-sharing.yaml (commit d6c52d1, 2025): label
    # kai.scheduler/queue, annotation gpu-fraction, schedulerName kai-scheduler.
    SliceDialect.KAI: SchedulerNeeds(
        "kai-scheduler", "kai.scheduler/queue", queue_in_labels=True, queue_required=True
    ),
}
"""The dialects that only their own scheduler honours, and what it needs (module docstring)."""

_GIB_MIB = 1024
_MIG_SLICES = 7  # an A100/H100 has 7 compute slices


@dataclass(frozen=True, slots=True, order=True)
class MigProfile:
    """One MIG profile: ``compute_slices`` of 7 and ``memory_gb`` of the card's memory."""

    compute_slices: int
    memory_gb: int

    @property
    def resource(self) -> str:
        return f"{MIG_PREFIX}{self.compute_slices}g.{self.memory_gb}gb"

    @property
    def share_pct(self) -> int:
        """The compute share it guarantees, rounded down to the 10 % unit (3g -> 40 %)."""
        exact = 100 * self.compute_slices / _MIG_SLICES
        return max(SHARE_UNIT_PCT, int(exact // SHARE_UNIT_PCT) * SHARE_UNIT_PCT)

    @property
    def memory_mib(self) -> int:
        return self.memory_gb * _GIB_MIB


MIG_PROFILES_40GB: tuple[MigProfile, ...] = (
    MigProfile(1, 5),
    MigProfile(2, 10),
    MigProfile(3, 20),
    MigProfile(4, 20),
    MigProfile(7, 40),
)
"""A100-40GB profiles (NVIDIA MIG user guide)."""
MIG_PROFILES_80GB: tuple[MigProfile, ...] = (
    MigProfile(1, 10),
    MigProfile(1, 20),
    MigProfile(2, 20),
    MigProfile(3, 40),
    MigProfile(4, 40),
    MigProfile(7, 80),
)
"""A100-80GB / H100-80GB profiles."""
MIG_PROFILES = MIG_PROFILES_40GB + MIG_PROFILES_80GB


def mig_profiles_for_card(card_memory_mib: int) -> tuple[MigProfile, ...]:
    """The profiles of the card family with this much memory (all when unknown)."""
    if card_memory_mib <= 0:
        return MIG_PROFILES
    return MIG_PROFILES_40GB if card_memory_mib <= 48 * _GIB_MIB else MIG_PROFILES_80GB


@dataclass(frozen=True, slots=True)
class Slice:
    """A slice as read from a pod spec; ``memory_mib`` is ``None`` when the dialect omits it."""

    dialect: SliceDialect
    share_pct: int
    memory_mib: int | None


def mig_profile_for(
    share_pct: int, memory_mib: int, profiles: tuple[MigProfile, ...] = MIG_PROFILES
) -> MigProfile | None:
    """The nearest profile: fewest compute slices, then least memory, that holds both."""
    fitting = [
        p
        for p in sorted(set(profiles))
        if 100 * p.compute_slices / _MIG_SLICES >= share_pct - 1e-9 and p.memory_mib >= memory_mib
    ]
    return fitting[0] if fitting else None


_QUANTITY = re.compile(
    r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|[numkMGTPE])?"
)
_BINARY_SUFFIX = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}  # powers of 1024
_DECIMAL_SUFFIX = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def _quantity_int(value: object) -> int | None:
    """An integer quantity (extended resources are whole numbers: ``"2"``, ``2``), in any
    form the Kubernetes API writes one: the API server stores every quantity in canonical
    form, so the ``"40000"`` a manifest (or a resize) gave is read back as ``"40k"``, and
    ``"1Ki"``, ``"2e3"`` and ``"1000m"`` are whole numbers too. ``None`` for anything else."""
    match = _QUANTITY.fullmatch(str(value).strip())
    if match is None:
        return None
    number, suffix = Decimal(match.group(1)), match.group(2) or ""
    if suffix in _BINARY_SUFFIX:
        number *= 1024 ** _BINARY_SUFFIX[suffix]
    elif suffix[:1] in ("e", "E") and len(suffix) > 1:
        number = number.scaleb(int(suffix[1:]))
    elif suffix:
        number = number.scaleb(_DECIMAL_SUFFIX[suffix])
    if number != number.to_integral_value():
        return None
    return int(number)


def _resources(container: Mapping[str, Any]) -> dict[str, object]:
    """Limits, with requests filling gaps (extended resources must have equal ones)."""
    res = container.get("resources") or {}
    merged: dict[str, object] = dict(res.get("requests") or {})
    merged.update(res.get("limits") or {})
    return merged


def gpu_container_index(pod_spec: Mapping[str, Any]) -> int:
    """The container that holds the GPU: the first asking for any slice resource, else 0."""
    for i, c in enumerate(pod_spec.get("containers") or []):
        keys = set(_resources(c))
        if keys & {HAMI_GPU, VOLCANO_NUMBER} or any(k.startswith(MIG_PREFIX) for k in keys):
            return i
    return 0


def read_slice(
    pod_spec: Mapping[str, Any], pod_annotations: Mapping[str, str], card_memory_mib: int
) -> Slice | None:
    """The slice a pod (or pod template) asks for, in whichever dialect; ``None`` if no GPU.

    ``card_memory_mib`` is used where the dialect gives memory as a share of the card
    (``kai``, and ``hami``/``volcano`` without a memory limit, which HAMi reads as the
    whole card's memory scaled by the core share).
    """
    containers = pod_spec.get("containers") or []
    if containers:
        res = _resources(containers[gpu_container_index(pod_spec)])
        for key, value in res.items():
            if key.startswith(MIG_PREFIX):
                profile = parse_mig_resource(key)
                if profile is not None and (_quantity_int(value) or 0) >= 1:
                    return Slice(SliceDialect.MIG, profile.share_pct, profile.memory_mib)
        if VOLCANO_NUMBER in res or VOLCANO_CORES in res:
            return _cores_slice(
                SliceDialect.VOLCANO,
                res.get(VOLCANO_CORES),
                res.get(VOLCANO_MEMORY),
                card_memory_mib,
            )
        if HAMI_CORES in res or HAMI_MEMORY in res:
            return _cores_slice(
                SliceDialect.HAMI, res.get(HAMI_CORES), res.get(HAMI_MEMORY), card_memory_mib
            )
    fraction = pod_annotations.get(KAI_FRACTION)
    if fraction is not None:
        try:
            share = float(fraction)
        except ValueError:
            share = 0.0
        if 0 < share <= 1:
            pct = round(share * 100)
            return Slice(SliceDialect.KAI, pct, card_memory_mib * pct // 100)
    if containers:
        whole = _quantity_int(_resources(containers[gpu_container_index(pod_spec)]).get(HAMI_GPU))
        if whole:
            # whole cards: a multi-card pod is reported as one card's worth per card
            return Slice(SliceDialect.HAMI, 100, card_memory_mib)
    return None


def _cores_slice(
    dialect: SliceDialect, cores: object, memory: object, card_memory_mib: int
) -> Slice:
    pct = _quantity_int(cores) if cores is not None else 100
    pct = 100 if pct is None or not 0 < pct <= 100 else pct
    mib = _quantity_int(memory) if memory is not None else None
    return Slice(dialect, pct, mib if mib is not None else card_memory_mib * pct // 100)


def parse_mig_resource(resource: str) -> MigProfile | None:
    name = resource[len(MIG_PREFIX) :]  # "3g.40gb"
    g, _, mem = name.partition("g.")
    if not g.isdigit() or not mem.endswith("gb") or not mem[:-2].isdigit():
        return None
    return MigProfile(int(g), int(mem[:-2]))


def slice_patch(
    dialect: SliceDialect,
    template: Mapping[str, Any],
    share_pct: int,
    memory_mib: int,
    *,
    profiles: tuple[MigProfile, ...] = MIG_PROFILES,
) -> JsonObj:
    """The strategic-merge patch of a pod ``template`` that writes this slice in ``dialect``.

    Keys of the other dialects are deleted (``null``), in limits and in requests, so a
    template is never read as two slices. Raises ``ValueError`` when MIG has no profile
    that holds the slice.
    """
    spec = template.get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        raise ValueError("the pod template has no containers")
    container = containers[gpu_container_index(spec)]
    present = set(_resources(container))
    requests = set((container.get("resources") or {}).get("requests") or {})
    wanted: dict[str, object] = {}
    annotations: dict[str, str | None] = {}
    if dialect is SliceDialect.HAMI:
        wanted = {HAMI_GPU: "1", HAMI_CORES: str(share_pct), HAMI_MEMORY: str(memory_mib)}
    elif dialect is SliceDialect.VOLCANO:
        wanted = {
            VOLCANO_NUMBER: "1",
            VOLCANO_CORES: str(share_pct),
            VOLCANO_MEMORY: str(memory_mib),
        }
    elif dialect is SliceDialect.KAI:
        annotations[KAI_FRACTION] = _fraction(share_pct)
    else:
        profile = mig_profile_for(share_pct, memory_mib, profiles)
        if profile is None:
            raise ValueError(
                f"no MIG profile holds {share_pct} % and {memory_mib} MiB "
                f"(largest: {max(profiles).resource})"
            )
        wanted = {profile.resource: "1"}
    gpu_keys = {HAMI_GPU, HAMI_CORES, HAMI_MEMORY, VOLCANO_NUMBER, VOLCANO_CORES, VOLCANO_MEMORY}
    stale = {k for k in present if (k in gpu_keys or k.startswith(MIG_PREFIX)) and k not in wanted}
    limits: dict[str, object] = {k: None for k in sorted(stale)}
    limits.update(wanted)
    # extended resources: requests, when given, must equal limits
    reqs: dict[str, object] = {k: None for k in sorted(stale & requests)}
    reqs.update({k: v for k, v in wanted.items() if k in requests})
    if dialect is not SliceDialect.KAI and KAI_FRACTION in (
        (template.get("metadata") or {}).get("annotations") or {}
    ):
        annotations[KAI_FRACTION] = None
    resources: JsonObj = {}
    if limits:
        resources["limits"] = limits
    if reqs:
        resources["requests"] = reqs
    patch: JsonObj = {}
    if annotations:
        patch["metadata"] = {"annotations": annotations}
    if resources:
        patch["spec"] = {"containers": [{"name": container.get("name"), "resources": resources}]}
    needs = SCHEDULERS.get(dialect)
    if needs is not None and spec.get("schedulerName") != needs.scheduler_name:
        patch.setdefault("spec", {})["schedulerName"] = needs.scheduler_name
    return patch


def _fraction(share_pct: int) -> str:
    """``gpu-fraction`` text: 50 -> ``"0.5"``, 100 -> ``"1.0"``, 25 -> ``"0.25"``."""
    text = f"{share_pct / 100:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
