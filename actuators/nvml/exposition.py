"""NVML readings as Prometheus text with dcgm-exporter's names, so one query reads either.

Purely computational. Names and units follow dcgm-exporter's default counters:
``DCGM_FI_DEV_GPU_UTIL`` (GPU utilisation, %), ``DCGM_FI_DEV_FB_USED`` and
``DCGM_FI_DEV_FB_FREE`` (framebuffer, MiB), ``DCGM_FI_DEV_POWER_USAGE`` (W); labels ``gpu``,
``UUID``, ``device``, ``modelName``, ``Hostname``, and for MIG devices ``GPU_I_ID`` and
``GPU_I_PROFILE``.

Where this agent differs, on purpose: dcgm-exporter attaches ``pod``/``namespace``/``container``
to the whole device's series, which on a card shared by several pods repeats the card's value
for each. The agent exports the card-level series without pod labels, and one series per pod
and device whose value is that pod's own share from per-process accounting: the sum of its
processes' ``smUtil`` (% of the card) and of their ``usedGpuMemory`` (MiB), marked
``sloscale_split="process"`` so that the Prometheus source takes them as the pod's own rather
than as a card value to spread over the card's slices (``actuators.prometheus.gpu``). Per-process
memory is also exported as ``sloscale_agent_process_gpu_memory_bytes`` with ``pid``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from actuators.nvml.collect import CardReading, ProcessReading

MIB = 1024.0 * 1024.0

_HELP = {
    "DCGM_FI_DEV_GPU_UTIL": "GPU utilization (in %).",
    "DCGM_FI_DEV_FB_USED": "Framebuffer memory used (in MiB).",
    "DCGM_FI_DEV_FB_FREE": "Framebuffer memory free (in MiB).",
    "DCGM_FI_DEV_POWER_USAGE": "Power draw (in W).",
    "sloscale_agent_process_gpu_memory_bytes": "GPU memory used by one process.",
}


def _labels(pairs: Mapping[str, str]) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in pairs.items()) + "}"


def _value(v: float) -> str:
    return "NaN" if math.isnan(v) else repr(float(v))


def render(cards: Sequence[CardReading], hostname: str) -> str:
    """The agent's ``/metrics`` body (Prometheus text format 0.0.4)."""
    rows: dict[str, list[str]] = {name: [] for name in _HELP}

    def add(name: str, labels: Mapping[str, str], value: float | None) -> None:
        if value is not None:
            rows[name].append(f"{name}{_labels(labels)} {_value(value)}")

    for card in cards:
        base = {
            "gpu": str(card.index),
            "UUID": card.uuid,
            "device": f"nvidia{card.index}",
            "modelName": card.name,
            "Hostname": hostname,
        }
        add("DCGM_FI_DEV_GPU_UTIL", base, card.util_pct)
        add("DCGM_FI_DEV_POWER_USAGE", base, card.power_w)
        if not card.mig_enabled:
            _memory(add, base, card.memory_used_bytes, card.memory_total_bytes)
        for mig in card.migs:
            labels = {
                **base,
                "GPU_I_ID": str(mig.gpu_instance_id),
                "GPU_I_PROFILE": mig.profile,
            }
            _memory(add, labels, mig.memory_used_bytes, mig.memory_total_bytes)
        profiles = {m.gpu_instance_id: m.profile for m in card.migs}
        for (gi, pod), procs in _by_pod(card.processes).items():
            labels = dict(base)
            if gi is not None:
                labels |= {"GPU_I_ID": str(gi), "GPU_I_PROFILE": profiles.get(gi, "unknown")}
            labels |= {"pod": pod[1], "namespace": pod[0], "container": pod[2]}
            labels["sloscale_split"] = "process"  # the pod's own share, not the card's
            sm = [p.sm_util_pct for p in procs if p.sm_util_pct is not None]
            mem = [p.gpu_memory_bytes for p in procs if p.gpu_memory_bytes is not None]
            if sm or not card.mig_enabled:
                # a process with no utilisation sample in the interval was idle: 0 %
                add("DCGM_FI_DEV_GPU_UTIL", labels, sum(sm) if sm else 0.0)
            if mem:
                add("DCGM_FI_DEV_FB_USED", labels, sum(mem) / MIB)
        for p in card.processes:
            labels = {**base, "pid": str(p.pid)}
            if p.pod is not None:
                labels |= {"pod": p.pod.name, "namespace": p.pod.namespace}
            elif p.pod_uid is not None:
                labels |= {"pod_uid": p.pod_uid}
            add("sloscale_agent_process_gpu_memory_bytes", labels, p.gpu_memory_bytes)
    out = []
    for name, lines in rows.items():
        out.append(f"# HELP {name} {_HELP[name]}")
        out.append(f"# TYPE {name} gauge")
        out.extend(lines)
    return "\n".join(out) + "\n"


def _memory(
    add: object, labels: Mapping[str, str], used: float | None, total: float | None
) -> None:
    assert callable(add)
    add("DCGM_FI_DEV_FB_USED", labels, None if used is None else used / MIB)
    if used is not None and total is not None:
        add("DCGM_FI_DEV_FB_FREE", labels, (total - used) / MIB)


def _by_pod(
    procs: Sequence[ProcessReading],
) -> dict[tuple[int | None, tuple[str, str, str]], list[ProcessReading]]:
    """Processes grouped by (GPU instance, (namespace, pod, container)); pod-less ones dropped."""
    out: dict[tuple[int | None, tuple[str, str, str]], list[ProcessReading]] = {}
    for p in procs:
        if p.pod is None:
            continue
        key = (p.gpu_instance_id, (p.pod.namespace, p.pod.name, p.pod.container))
        out.setdefault(key, []).append(p)
    return out
