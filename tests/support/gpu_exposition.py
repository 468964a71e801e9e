"""Exposition text shaped as dcgm-exporter and HAMi's vGPU monitor write it, and the target
labels their charts' ServiceMonitors give them.

Shared by ``tests/prometheus/test_gpu_exporters.py`` (the source alone) and
``tests/prometheus/test_closed_loop_exporters.py`` (the whole control loop). Label sets and
formats follow the upstream sources cited in ``docs/metrics.md``: dcgm-exporter writes
``gpu``, ``UUID``, ``pci_bus_id``, ``device``, ``modelName``, ``Hostname``, and with a pod
``container``, ``namespace``, ``pod`` (MIG instances add ``GPU_I_PROFILE``, ``GPU_I_ID``;
virtual GPUs ``vgpu``), values printed with ``%f`` for profiling ratios; HAMi's monitor is a
client_golang registry wrapped with ``zone="vGPU"``, labels sorted.
"""

from __future__ import annotations

GIB = 1024**3
HAMI_UUID = "GPU-7d8e9f00-0000-0000-0000-000000000001"

DCGM_HEAD = """\
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active (in %).
# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge
"""


def dcgm(card: int, uuid: str, *, pod: tuple[str, str] | None = None, **extra: str) -> str:
    """A dcgm-exporter label set: the device's, then (pod mapper) the pod's."""
    labels = {
        "gpu": str(card),
        "UUID": uuid,
        "pci_bus_id": f"00000000:{0x4E + card:02X}:00.0",
        "device": f"nvidia{card}",
        "modelName": "NVIDIA H100 80GB HBM3",
        **{k: v for k, v in extra.items() if k in ("GPU_I_PROFILE", "GPU_I_ID")},
        "Hostname": "gpu-node-1",
    }
    if pod is not None:
        labels |= {"container": "server", "namespace": pod[0], "pod": pod[1]}
    labels |= {k: v for k, v in extra.items() if k not in labels}
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def hami_labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    pairs = sorted([*zip(names, values, strict=True), ("zone", "vGPU")])
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}"


def hami_new(
    namespace: str,
    pod: str,
    *,
    util_pct: float = 24,
    memory_bytes: float = 8 * GIB,
    uuid: str = HAMI_UUID,
) -> str:
    """HAMi >= 2.9 (``cmd/vGPUmonitor/metrics.go``): the "ratio" is % of the card."""
    lab = hami_labels(
        ("namespace", "pod", "container", "vdevice_index", "device_uuid"),
        (namespace, pod, "vllm", "0", uuid),
    )
    return (
        "# HELP hami_container_device_utilization_ratio Container device SM utilization ratio\n"
        "# TYPE hami_container_device_utilization_ratio gauge\n"
        f"hami_container_device_utilization_ratio{lab} {util_pct:g}\n"
        "# HELP hami_vgpu_memory_used_bytes vGPU device memory usage in bytes\n"
        "# TYPE hami_vgpu_memory_used_bytes gauge\n"
        f"hami_vgpu_memory_used_bytes{lab} {memory_bytes:.6e}\n"
    )


def hami_legacy(
    namespace: str,
    pod: str,
    *,
    util_pct: float = 24,
    memory_bytes: float = 8 * GIB,
    uuid: str = HAMI_UUID,
) -> str:
    """HAMi 2.8, or >= 2.9 with ``--legacy-metrics``: the old names and labels."""
    lab = hami_labels(
        ("podnamespace", "podname", "ctrname", "vdeviceid", "deviceuuid"),
        (namespace, pod, "vllm", "0", uuid),
    )
    return (
        "# HELP Device_utilization_desc_of_container Container device utilization description\n"
        "# TYPE Device_utilization_desc_of_container gauge\n"
        f"Device_utilization_desc_of_container{lab} {util_pct:g}\n"
        "# HELP vGPU_device_memory_usage_in_bytes vGPU device usage\n"
        "# TYPE vGPU_device_memory_usage_in_bytes gauge\n"
        f"vGPU_device_memory_usage_in_bytes{lab} {memory_bytes:.6e}\n"
    )


def service_monitor(namespace: str, pod: str, service: str) -> dict[str, str]:
    """The target labels prometheus-operator gives a ServiceMonitor's endpoint."""
    return {
        "namespace": namespace,
        "pod": pod,
        "container": service,
        "service": service,
        "endpoint": "metrics",
    }
