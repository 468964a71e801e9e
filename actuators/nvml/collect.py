"""One reading of every GPU on the node through NVML (``nvidia-ml-py``, module ``pynvml``).

Every NVML call goes through the ``pynvml`` module attribute at call time, so tests replace
the functions (``monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", ...)``) with a fake NVML.
A field the driver does not support (``NVMLError``) is left ``None``: unavailable, never 0.

Calls used (NVML API reference, ``nvml.h``): ``nvmlDeviceGetCount``,
``nvmlDeviceGetHandleByIndex``, ``nvmlDeviceGetUUID``, ``nvmlDeviceGetName``,
``nvmlDeviceGetUtilizationRates`` (``.gpu`` %, the share of time a kernel ran),
``nvmlDeviceGetMemoryInfo`` (bytes), ``nvmlDeviceGetPowerUsage`` (mW),
``nvmlDeviceGetMigMode`` / ``nvmlDeviceGetMaxMigDeviceCount`` /
``nvmlDeviceGetMigDeviceHandleByIndex`` / ``nvmlDeviceGetGpuInstanceId`` /
``nvmlDeviceGetComputeInstanceId`` / ``nvmlDeviceGetAttributes`` for MIG devices,
``nvmlDeviceGetComputeRunningProcesses`` (pid, ``usedGpuMemory`` bytes, ``gpuInstanceId``)
and ``nvmlDeviceGetProcessUtilization`` (per-process ``smUtil`` %, since a timestamp).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from actuators.nvml.cgroup import PodName, PodResolver, pod_of_pid

NO_INSTANCE = 0xFFFFFFFF
"""NVML's value for "no GPU instance" in process records outside MIG."""


def nvml() -> ModuleType:
    """The ``pynvml`` module (``nvidia-ml-py``), imported lazily."""
    return importlib.import_module("pynvml")


@dataclass(frozen=True, slots=True)
class ProcessReading:
    pid: int
    gpu_memory_bytes: float | None
    sm_util_pct: float | None
    gpu_instance_id: int | None
    pod: PodName | None
    pod_uid: str | None


@dataclass(frozen=True, slots=True)
class MigReading:
    gpu_instance_id: int
    compute_instance_id: int | None
    uuid: str
    profile: str
    memory_used_bytes: float | None
    memory_total_bytes: float | None


@dataclass(frozen=True, slots=True)
class CardReading:
    index: int
    uuid: str
    name: str
    util_pct: float | None
    memory_used_bytes: float | None
    memory_total_bytes: float | None
    power_w: float | None
    mig_enabled: bool
    migs: tuple[MigReading, ...]
    processes: tuple[ProcessReading, ...]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Collector:
    """Reads all cards; remembers the last process-utilisation timestamp per card."""

    def __init__(self, resolver: PodResolver | None = None, proc_root: Path = Path("/proc")):
        self.resolver = resolver
        self.proc_root = proc_root
        self._last_seen_us: dict[int, int] = {}

    def _try(self, name: str, *args: Any) -> Any:
        """``pynvml.<name>(*args)``, or ``None`` when NVML says the field is not available."""
        module = nvml()
        try:
            return getattr(module, name)(*args)
        except module.NVMLError:
            return None

    def collect(self) -> tuple[CardReading, ...]:
        n = nvml()
        return tuple(
            self._card(i, n.nvmlDeviceGetHandleByIndex(i)) for i in range(n.nvmlDeviceGetCount())
        )

    def _card(self, index: int, handle: Any) -> CardReading:
        n = nvml()
        util = self._try("nvmlDeviceGetUtilizationRates", handle)
        mem = self._try("nvmlDeviceGetMemoryInfo", handle)
        power_mw = self._try("nvmlDeviceGetPowerUsage", handle)
        mode = self._try("nvmlDeviceGetMigMode", handle)
        mig_enabled = bool(mode and mode[0] == n.NVML_DEVICE_MIG_ENABLE)
        migs = self._migs(handle) if mig_enabled else ()
        return CardReading(
            index=index,
            uuid=_text(n.nvmlDeviceGetUUID(handle)),
            name=_text(self._try("nvmlDeviceGetName", handle) or "unknown"),
            util_pct=None if util is None or mig_enabled else float(util.gpu),
            memory_used_bytes=None if mem is None else float(mem.used),
            memory_total_bytes=None if mem is None else float(mem.total),
            power_w=None if power_mw is None else power_mw / 1000.0,
            mig_enabled=mig_enabled,
            migs=migs,
            processes=self._processes(index, handle),
        )

    def _migs(self, handle: Any) -> tuple[MigReading, ...]:
        n = nvml()
        out = []
        count = self._try("nvmlDeviceGetMaxMigDeviceCount", handle) or 0
        for i in range(count):
            mig = self._try("nvmlDeviceGetMigDeviceHandleByIndex", handle, i)
            if mig is None:
                continue  # an empty slot answers NVML_ERROR_NOT_FOUND
            gi = self._try("nvmlDeviceGetGpuInstanceId", mig)
            if gi is None:
                continue
            mem = self._try("nvmlDeviceGetMemoryInfo", mig)
            attrs = self._try("nvmlDeviceGetAttributes", mig)
            total = None if mem is None else float(mem.total)
            profile = (
                f"{attrs.gpuInstanceSliceCount}g.{round(total / 1e9)}gb"
                if attrs is not None and total is not None
                else "unknown"
            )
            out.append(
                MigReading(
                    gpu_instance_id=int(gi),
                    compute_instance_id=self._try("nvmlDeviceGetComputeInstanceId", mig),
                    uuid=_text(n.nvmlDeviceGetUUID(mig)),
                    profile=profile,
                    memory_used_bytes=None if mem is None else float(mem.used),
                    memory_total_bytes=total,
                )
            )
        return tuple(out)

    def _processes(self, index: int, handle: Any) -> tuple[ProcessReading, ...]:
        procs = self._try("nvmlDeviceGetComputeRunningProcesses", handle) or []
        samples = self._try(
            "nvmlDeviceGetProcessUtilization", handle, self._last_seen_us.get(index, 0)
        )
        sm: dict[int, float] = {}
        for s in samples or []:
            sm[int(s.pid)] = sm.get(int(s.pid), 0.0) + float(s.smUtil)
            self._last_seen_us[index] = max(self._last_seen_us.get(index, 0), int(s.timeStamp))
        out = []
        for p in procs:
            pid = int(p.pid)
            identity = pod_of_pid(pid, self.proc_root)
            pod = self.resolver.resolve(identity) if identity and self.resolver else None
            used = getattr(p, "usedGpuMemory", None)
            gi = getattr(p, "gpuInstanceId", NO_INSTANCE)
            out.append(
                ProcessReading(
                    pid=pid,
                    gpu_memory_bytes=None if used is None else float(used),
                    sm_util_pct=sm.get(pid) if samples is not None else None,
                    gpu_instance_id=None if gi in (None, NO_INSTANCE) else int(gi),
                    pod=pod,
                    pod_uid=identity.uid if identity else None,
                )
            )
        return tuple(out)
