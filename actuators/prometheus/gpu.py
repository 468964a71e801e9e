"""GPU exporters as they are deployed: dcgm-exporter and HAMi's vGPU monitor, read per pod.

Why it exists: the GPU series name their pod with labels that depend on how Prometheus
scrapes them, their names changed between versions, and what a card-level value says about
one pod depends on how the card is shared. This module writes the queries (a fixed set per
tick), maps each series to a pod under the right label set, and attributes the values to
workloads. Purely computational: the source (``source``) sends the queries and calls these
functions with what came back. Upstream names, labels and units are listed, with the sources
they were checked against, in ``docs/metrics.md`` (section "GPU exporters").

**Pod labels are configuration** (``GpuLabels``), per source, with the charts' settings as
presets. dcgm-exporter's pod mapper writes ``pod``/``namespace``/``container``
(``internal/pkg/transformation/kubernetes.go``); its Helm chart's ServiceMonitor sets
``serviceMonitor.honorLabels: false`` (``deployment/values.yaml``, chart 4.2.3), so Prometheus
keeps the target's own ``pod``/``namespace`` (the exporter's) and renames the exporter's to
``exported_pod``/``exported_namespace``. HAMi's chart ServiceMonitor sets no ``honorLabels``
(``charts/hami/templates/device-plugin/servicemonitor.yaml``): false as well, which renames
HAMi >= 2.9's ``namespace``/``pod``; its legacy names' ``podnamespace``/``podname`` do not
collide. Presets: ``chart`` (``exported_namespace,exported_pod``, the default; also
``sloscale agent`` as deploy/agent's PodMonitor scrapes it) and ``honor`` (``namespace,pod``:
``honor_labels: true``, a PodMonitor that sets it).

With detection on (the default) each series is read under whichever of the configured preset
and the two chart presets names a pod of a managed workload: a series scraped with the
chart's settings carries the exporter's own pod in ``pod`` (not managed) and the workload's in
``exported_pod``, so only one of them matches. A series where two label sets name managed
pods is ambiguous: it is read with the configured preset and said in ``errors``. Detection is
per series, so two scrape jobs with different ``honor_labels`` both read right.

**Names by version.** dcgm-exporter: ``DCGM_FI_DEV_GPU_UTIL`` (%, 0-100) and
``DCGM_FI_DEV_FB_USED`` (MiB) in its default counters (``etc/default-counters.csv``);
``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (ratio 0-1; the chart's counters ConfigMap
``deployment/templates/metrics-configmap.yaml`` and ``etc/dcp-metrics-included.csv`` carry it)
is the utilisation where ``GPU_UTIL`` is absent: on MIG instances (``GPU_I_ID`` label), where
DCGM does not report ``GPU_UTIL``. HAMi's vGPU monitor (``cmd/vGPUmonitor/metrics.go``):
since 2.9 ``hami_container_device_utilization_ratio`` and ``hami_vgpu_memory_used_bytes`` with
``namespace``, ``pod``, ``container``, ``vdevice_index``, ``device_uuid``; the older
``Device_utilization_desc_of_container`` and ``vGPU_device_memory_usage_in_bytes`` with
``podnamespace``, ``podname``, ``ctrname``, ``vdeviceid``, ``deviceuuid`` only with
``--legacy-metrics``. Both are read; where a pod has both, the new names win. The
"ratio" is a percentage: the monitor writes the sum of the container's processes' NVML
``smUtil`` (HAMi-core ``multiprocess_utilization_watcher.c``), 0-100 of the whole card.

**What a card-level value says about one pod** (``gpu_signals``). dcgm-exporter reads the
device: without ``--kubernetes-virtual-gpus`` a time-shared card's series carries one of its
pods' labels, with it one copy per sharing pod (``vgpu`` label), each with the *card's*
value. The card's busy time is the sum of every tenant's, so the card value is an upper
bound on one pod's use, and dividing it by that pod's share (the old rule) overstates its
utilisation up to 1/share. sloscale reads it as the card's: the busy time is spread over the
slices allocated on the card in proportion to their shares, ``util = card / allocated``
(allocated: the card's slices in the snapshot, at least those of the pods its series name).
The pods' attributed use then adds up to the card's, never more; it is exact on a card with
one slice; on a card whose tenants differ it is their share-weighted mean, and ``gpu_busy``
(time a kernel ran on the pod's own slice) is unavailable. Per-pod values are taken as the
pod's own only when they are: HAMi's per-container numbers, MIG instances (the instance is the
pod's), series marked ``sloscale_split="process"`` (``sloscale agent``), and cards whose pods
carry different values (dcgm-exporter's per-process split of ``GPU_UTIL``/``FB_USED`` with
``--kubernetes-virtual-gpus``, ``internal/pkg/transformation/process_metrics.go``: copies of a
card value are equal). The pods compared include those sloscale does not manage (whose series
the queries return: the targets' namespaces), so a managed pod beside a batch job is told
apart too. Only card-level values are compared: an own share differs from a copy of its card's
value without telling anything of that copy.

**Both exporters on one node.** dcgm-exporter with its pod mapping beside ``sloscale agent``
gives a pod two series for one device and signal: a copy of the card's value and the agent's
own share. The own share is kept, whatever order Prometheus returns them in, and the pod's
value is its own only when the series kept is (``_keep``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from actuators.prometheus.podmap import PodInfo
from actuators.prometheus.profiles import Query, QuerySettings, duration, namespace_matcher
from controller.policy.reclaim import IDLE_UTIL
from controller.ports import ObserveTarget

MIB = 1024.0 * 1024.0

DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
"""dcgm-exporter, % of the device's time a kernel ran (0-100); absent on MIG instances."""
DCGM_GR_ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
"""dcgm-exporter, ratio of time the graphics/compute engine was active (0-1), per device or
per MIG GPU instance."""
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"
"""dcgm-exporter, framebuffer used (MiB)."""
DCGM_CARD = "UUID"
DCGM_INSTANCE = "GPU_I_ID"
HAMI_UTIL = "hami_container_device_utilization_ratio"
"""HAMi >= 2.9: the container's processes' SM utilisation, % of the card (0-100)."""
HAMI_MEMORY = "hami_vgpu_memory_used_bytes"
"""HAMi >= 2.9: the container's device memory (bytes)."""
HAMI_LEGACY_UTIL = "Device_utilization_desc_of_container"
HAMI_LEGACY_MEMORY = "vGPU_device_memory_usage_in_bytes"
HAMI_CARD = "device_uuid"
HAMI_LEGACY_CARD = "deviceuuid"
SPLIT_TAG = "sloscale_split"
"""Set to ``process`` by ``sloscale agent`` on series whose value is the pod's own share."""


@dataclass(frozen=True, slots=True)
class PodLabels:
    """Which labels of a GPU series carry the pod's namespace and name."""

    namespace: str
    pod: str

    def __str__(self) -> str:
        return f"{self.namespace},{self.pod}"


EXPORTED = PodLabels("exported_namespace", "exported_pod")
"""The charts' ServiceMonitors (``honorLabels: false``): the exporter's labels renamed."""
HONORED = PodLabels("namespace", "pod")
"""``honor_labels: true``: the exporter's labels as it writes them."""
HAMI_LEGACY = PodLabels("podnamespace", "podname")
"""HAMi's legacy names (``--legacy-metrics``): no collision with target labels."""
PRESETS = {"chart": EXPORTED, "honor": HONORED}


def parse_pod_labels(text: str) -> PodLabels:
    """``chart``, ``honor`` or ``NAMESPACE_LABEL,POD_LABEL``; ``ValueError`` otherwise."""
    text = text.strip()
    if text in PRESETS:
        return PRESETS[text]
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(_label_name(p) for p in parts):
        raise ValueError(
            f"{text!r}: expected chart (exported_namespace,exported_pod), honor "
            "(namespace,pod) or NAMESPACE_LABEL,POD_LABEL"
        )
    return PodLabels(parts[0], parts[1])


def _label_name(name: str) -> bool:
    return bool(name) and (name[0].isalpha() or name[0] == "_") and name.replace("_", "a").isalnum()


@dataclass(frozen=True, slots=True)
class GpuLabels:
    """Pod labels per GPU source, and whether each series picks its own among the presets."""

    dcgm: PodLabels = EXPORTED
    hami: PodLabels = EXPORTED
    detect: bool = True

    def configured(self, source: str) -> PodLabels:
        return self.hami if source == "hami" else self.dcgm

    def candidates(self, source: str) -> tuple[PodLabels, ...]:
        """The label sets a series of ``source`` is tried with, the configured one first."""
        first = self.configured(source)
        out = [first, *((EXPORTED, HONORED) if self.detect else ())]
        if source == "hami":
            out.append(HAMI_LEGACY)  # the legacy names' own labels, always
        return tuple(dict.fromkeys(out))


# ---- queries ---------------------------------------------------------------------------------


def _selector(
    metric: str, targets: Sequence[ObserveTarget], labels: Iterable[PodLabels], age: str
) -> str:
    """``last_over_time`` of ``metric`` in the targets' namespaces under any of ``labels``."""
    parts = [
        f'last_over_time({metric}{{{namespace_matcher(targets, c.namespace)},{c.pod}!=""}}[{age}])'
        for c in labels
    ]
    return " or ".join(parts)


def _grouping(labels: Iterable[PodLabels], *card: str) -> str:
    names = [*card, *(n for c in labels for n in (c.namespace, c.pod))]
    return ", ".join(dict.fromkeys(names))


def gpu_queries(
    targets: Sequence[ObserveTarget], s: QuerySettings, labels: GpuLabels = GpuLabels()
) -> list[Query]:
    """Five queries for every target at once: dcgm utilisation, engine activity and memory,
    HAMi utilisation and memory (new and legacy names together). Each result series keeps
    the card and every candidate pod label, so the source can tell which label set names the
    pod (``match``)."""
    if not targets:
        return []
    age = duration(s.max_age_s)
    dcgm = labels.candidates("dcgm")
    hami_new = tuple(c for c in labels.candidates("hami") if c != HAMI_LEGACY)
    by_card = _grouping(dcgm, DCGM_CARD, DCGM_INSTANCE, SPLIT_TAG)
    hami_by = _grouping((*hami_new, HAMI_LEGACY), HAMI_CARD, HAMI_LEGACY_CARD)

    def dcgm_query(metric: str) -> str:
        # max: a pod's copies of one device (one per container) are the same value
        return f"max by ({by_card}) ({_selector(metric, targets, dcgm, age)})"

    def hami_query(new: str, legacy: str) -> str:
        # sum: a pod's containers on one device add up (each its own processes)
        either = f"{_selector(new, targets, hami_new, age)} or " + _selector(
            legacy, targets, (HAMI_LEGACY,), age
        )
        return f"sum by ({hami_by}) ({either})"

    return [
        Query("dcgm:util", dcgm_query(DCGM_GPU_UTIL)),
        Query("dcgm:engine", dcgm_query(DCGM_GR_ENGINE_ACTIVE)),
        Query("dcgm:memory", dcgm_query(DCGM_FB_USED)),
        Query("hami:util", hami_query(HAMI_UTIL, HAMI_LEGACY_UTIL)),
        Query("hami:memory", hami_query(HAMI_MEMORY, HAMI_LEGACY_MEMORY)),
    ]


# ---- one series to one pod -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One GPU series mapped to a managed pod, as read."""

    key: str  # the query: dcgm:util, dcgm:engine, dcgm:memory, hami:util, hami:memory
    workload: str
    namespace: str
    pod: str
    card: str  # the device (dcgm: UUID, or UUID/GPU_I_ID for a MIG instance)
    value: float
    labels: PodLabels = EXPORTED  # the label set that named the pod
    mig: bool = False
    own: bool = False  # marked as the pod's own share (``sloscale_split="process"``)
    ambiguous: tuple[PodLabels, ...] = ()  # several label sets named managed pods

    @property
    def legacy(self) -> bool:
        """Read from HAMi's legacy names."""
        return self.labels == HAMI_LEGACY


Resolve = Callable[[Mapping[str, str], PodLabels], "tuple[str, str | None] | None"]


def match(
    key: str, labels: Mapping[str, str], value: float, settings: GpuLabels, resolve: Resolve
) -> GpuSample | None:
    """The pod a GPU series belongs to, under the one label set that names a managed pod (the
    configured one when several do); ``None`` when none does."""
    source = key.partition(":")[0]
    hits: list[tuple[PodLabels, str, str]] = []
    for c in settings.candidates(source):
        hit = resolve(labels, c)
        if hit is not None and hit[1] is not None:
            hits.append((c, hit[0], hit[1]))
    if not hits:
        return None
    configured = settings.configured(source)
    chosen = next((h for h in hits if h[0] == configured), hits[0])
    names, workload, pod = chosen
    if source == "hami":
        card = labels.get(HAMI_CARD) or labels.get(HAMI_LEGACY_CARD, "")
        mig = False
    else:
        card = dcgm_device(labels)
        mig = bool(labels.get(DCGM_INSTANCE))
    return GpuSample(
        key=key,
        workload=workload,
        namespace=labels.get(names.namespace, ""),
        pod=pod,
        card=card,
        value=value,
        labels=names,
        mig=mig,
        own=own_share(labels),
        ambiguous=tuple(h[0] for h in hits) if len(hits) > 1 else (),
    )


def own_share(labels: Mapping[str, str]) -> bool:
    """Whether a series' value is its pod's own share (``sloscale_split="process"``, what
    ``sloscale agent`` writes on its per-pod series) rather than its card's."""
    return labels.get(SPLIT_TAG) == "process"


def dcgm_device(labels: Mapping[str, str]) -> str:
    """The device a dcgm-exporter series reads: its card's UUID, ``UUID/GPU_I_ID`` for a MIG
    instance."""
    instance = labels.get(DCGM_INSTANCE, "")
    return labels.get(DCGM_CARD, "") + (f"/{instance}" if instance else "")


def label_notes(samples: Iterable[GpuSample], settings: GpuLabels) -> list[str]:
    """One line per source whose series were ambiguous: read with the configured labels."""
    out: list[str] = []
    for source in ("dcgm", "hami"):
        bad = [s for s in samples if s.key.startswith(source) and s.ambiguous]
        if bad:
            which = " and ".join(str(c) for c in bad[0].ambiguous)
            out.append(
                f"prometheus: {len(bad)} {source} series name managed pods under both {which} "
                f"(e.g. {bad[0].namespace}/{bad[0].pod}): read with the configured "
                f"--{source}-labels {settings.configured(source)}"
            )
    return out


def labels_in_use(samples: Iterable[GpuSample], source: str) -> frozenset[PodLabels]:
    """The label sets the managed pods' series of ``source`` were read with (for the log)."""
    return frozenset(s.labels for s in samples if s.key.startswith(source))


# ---- attribution -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuSignals:
    """One workload's GPU signals (``WorkloadMetrics`` fields); ``None``: unavailable."""

    util: float | None = None  # used share / allocated share
    busy: float | None = None  # share of time a kernel ran on the pods' own slices
    memory_mib: float | None = None  # mean per pod


@dataclass(frozen=True, slots=True)
class _Reading:
    """One device's value in a pod's series, and whether it is the pod's own share."""

    value: float
    own: bool


@dataclass
class _Pod:
    hami_util: dict[bool, float] = field(default_factory=dict)  # legacy? -> % of a card
    hami_memory: dict[bool, float] = field(default_factory=dict)  # legacy? -> bytes
    util: dict[str, _Reading] = field(default_factory=dict)  # card -> 0..1 (GPU_UTIL)
    engine: dict[str, _Reading] = field(default_factory=dict)  # card -> 0..1 (GR_ENGINE_ACTIVE)
    memory_mib: dict[str, _Reading] = field(default_factory=dict)  # card -> MiB
    mig: set[str] = field(default_factory=set)


def _keep(readings: dict[str, _Reading], card: str, new: _Reading) -> None:
    """One reading per device for a pod, whatever order the series come in: the pod's own
    share (``sloscale agent``'s per-process series) over a card value attributed to the pod
    (dcgm-exporter's pod mapping, beside the agent on the same node), and between two of the
    same kind (copies, or one series read under two scrape jobs) the larger."""
    old = readings.get(card)
    if old is None or (new.own, new.value) > (old.own, old.value):
        readings[card] = new


def _gather(samples: Iterable[GpuSample]) -> dict[tuple[str, str, str], _Pod]:
    pods: dict[tuple[str, str, str], _Pod] = {}
    for s in samples:
        p = pods.setdefault((s.workload, s.namespace, s.pod), _Pod())
        if s.key == "hami:util":
            p.hami_util[s.legacy] = p.hami_util.get(s.legacy, 0.0) + s.value
        elif s.key == "hami:memory":
            p.hami_memory[s.legacy] = p.hami_memory.get(s.legacy, 0.0) + s.value
        elif s.key == "dcgm:util":
            _keep(p.util, s.card, _Reading(s.value / 100.0, s.own))
        elif s.key == "dcgm:engine":
            _keep(p.engine, s.card, _Reading(s.value, s.own))
        elif s.key == "dcgm:memory":
            _keep(p.memory_mib, s.card, _Reading(s.value, s.own))
        if s.mig:
            p.mig.add(s.card)
    return pods


def _card_values(pod: _Pod) -> dict[str, _Reading]:
    """Per device, the utilisation 0..1 (``GPU_UTIL`` where it exists, else engine activity),
    own when the series it was read from is."""
    return pod.engine | pod.util


def gpu_signals(
    samples: Sequence[GpuSample],
    pod_info: Callable[[str, str], PodInfo | None],
    unmanaged: Mapping[str, Collection[float]] | None = None,
) -> dict[str, GpuSignals]:
    """Per workload: utilisation, busy time and memory from its pods' GPU series.

    HAMi's per-container numbers win over dcgm-exporter's for a pod, and HAMi's new names over
    its legacy ones. See the module docstring for what a card-level value is taken to say.
    A pod's series for one device are read once: where ``sloscale agent`` and dcgm-exporter
    (with its pod mapping) both name the pod, the agent's own share wins over the card's value,
    in whatever order the series come, and the pod's share is its own as that series says.
    ``unmanaged``: per dcgm device, the card-level ``GPU_UTIL`` values (%) of its series that
    name pods sloscale does not manage (not the agent's own shares: ``own_share``); they tell
    a per-process split from copies of the card's value where the managed pod is the card's
    only one. Purely computational.
    """
    pods = _gather(samples)
    values = {k: _card_values(p) for k, p in pods.items()}
    on_card: dict[str, dict[tuple[str, str, str], float]] = {}
    copies: dict[str, set[float]] = {}  # card-level values (not own shares) per device
    for k, cards in values.items():
        for card, r in cards.items():
            on_card.setdefault(card, {})[k] = r.value
            if not r.own:
                copies.setdefault(card, set()).add(r.value)
    shares = {k: (pod_info(k[1], k[2]) or PodInfo(k[0])).share_pct for k in pods}
    others = unmanaged or {}
    # a per-process split by dcgm-exporter: card-level series whose values differ. The
    # agent's own shares take no part: beside a copy of the card's value they differ from it
    # without saying anything of the copy
    split = {
        card
        for card, vs in copies.items()
        if len(vs | {v / 100.0 for v in others.get(card, ())}) > 1
    }
    used: dict[str, float] = {}
    bound: dict[str, float] = {}  # the most the pods may have used of a shared card's time
    held: dict[str, float] = {}
    busy: dict[str, list[float]] = {}
    exclusive: dict[str, bool] = {}
    memory: dict[str, list[float]] = {}
    for k, p in pods.items():
        workload, namespace, name = k
        share = shares[k]
        info = pod_info(namespace, name)
        own_used, own_busy, own_bound = _own_use(p, values[k], share, split, on_card, shares, info)
        if own_used is not None and share:
            used[workload] = used.get(workload, 0.0) + own_used
            bound[workload] = bound.get(workload, 0.0) + own_bound
            held[workload] = held.get(workload, 0.0) + share / 100.0
        exclusive[workload] = exclusive.get(workload, True) and own_busy is not None
        if own_busy is not None:
            busy.setdefault(workload, []).append(own_busy)
        mem = _memory_mib(p)
        if mem is not None:
            memory.setdefault(workload, []).append(mem)
    out: dict[str, GpuSignals] = {}
    for workload in {k[0] for k in pods}:
        h = held.get(workload, 0.0)
        b = busy.get(workload, [])
        m = memory.get(workload, [])
        out[workload] = GpuSignals(
            util=_util(used[workload], bound[workload], h) if h > 0 else None,
            busy=sum(b) / len(b) if b and exclusive[workload] else None,
            memory_mib=sum(m) / len(m) if m else None,
        )
    return out


def _util(used: float, bound: float, held: float) -> float | None:
    """Used over held share; ``None`` where the attribution alone would read idle.

    A shared card's busy time spread by share (``used``) can put a pod under the idle line
    (``IDLE_UTIL``) while all of that time may have been its own (``bound``): then the data
    do not say the pod is idle, and an idle reclaim must not follow from an estimate.
    Unavailable is the safe reading: it is neither evidence of idleness nor of work.
    """
    util = used / held
    if util < IDLE_UTIL <= bound / held:
        return None
    return util


def _own_use(
    p: _Pod,
    cards: Mapping[str, _Reading],
    share_pct: int | None,
    split: set[str],
    on_card: Mapping[str, Mapping[tuple[str, str, str], float]],
    shares: Mapping[tuple[str, str, str], int | None],
    info: PodInfo | None,
) -> tuple[float | None, float | None, float]:
    """The pod's used share of a card (0..n cards); when its slices are its own alone, the
    share of time a kernel ran on them (``None`` when unknown); and the most it may have used
    (a shared card's whole busy time, where only its spread by share is known)."""
    if p.hami_util:
        pct = p.hami_util.get(False, p.hami_util.get(True, 0.0))
        return pct / 100.0, None, pct / 100.0
    if not cards or not share_pct:
        return None, None, 0.0
    frac = share_pct / 100.0
    used = 0.0
    most = 0.0
    busy: list[float] = []
    pooled: dict[str, float] = {}
    for card, r in cards.items():
        v = r.value
        if card in p.mig:
            used += v * frac / len(cards)  # the instance is the pod's: its ratio is the pod's
            most += v * frac / len(cards)
            busy.append(v)
        elif r.own or card in split:
            used += v  # the pod's own share of the card
            most += v
        else:
            pooled[card] = v
    if pooled:
        seen = max(sum(shares[k] or 0 for k in on_card[card]) for card in pooled)
        allocated = max(share_pct, seen, (info.card_share_pct if info else None) or 0)
        for v in pooled.values():
            used += v * share_pct / allocated  # the card's busy time, spread by share
            most += v  # ... all of which may have been this pod's
        if allocated == share_pct and share_pct >= 100 * len(pooled):
            busy.extend(pooled.values())  # whole cards of its own: the card is the pod's
    exclusive = len(busy) == len(cards)
    return used, (sum(busy) / len(busy) if busy and exclusive else None), most


def _memory_mib(p: _Pod) -> float | None:
    if p.hami_memory:
        return p.hami_memory.get(False, p.hami_memory.get(True, 0.0)) / MIB
    if p.memory_mib:
        return sum(r.value for r in p.memory_mib.values())
    return None
