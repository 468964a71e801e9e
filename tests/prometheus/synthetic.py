"""A test exporter whose numbers are known: counters grow at set rates in wall time.

Each histogram workload's requests arrive at a fixed rate per pod with latencies uniform on
``[0, latency_max_s]``, so bucket ``le`` holds the share ``min(1, le / latency_max_s)`` of the
count and every quantile the source computes can be checked by hand. Faults are switches:
``missing`` pods vanish from the exposition, ``nan`` pods export NaN, ``reset(pod)`` restarts
a pod's counters at zero (a container restart).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

LE_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def uniform_cdf(le_s: float, latency_max_s: float) -> float:
    return min(1.0, le_s / latency_max_s)


def expected_quantile(q: float, latency_max_s: float) -> float:
    """What ``histogram_quantile`` gives for the uniform distribution over ``LE_S`` buckets."""
    cum = [(le, uniform_cdf(le, latency_max_s)) for le in LE_S]
    lo, below = 0.0, 0.0
    for le, c in cum:
        if c >= q:
            return lo + (le - lo) * (q - below) / (c - below)
        lo, below = le, c
    return LE_S[-1]


@dataclass
class Pod:
    namespace: str
    name: str
    rate_rps: float
    latency_max_s: float = 0.4
    deployment: str | None = None
    started_s: float = field(default_factory=time.time)

    def count(self, now_s: float) -> float:
        return self.rate_rps * max(0.0, now_s - self.started_s)

    def labels(self, **extra: str) -> str:
        pairs = {"namespace": self.namespace, "pod": self.name}
        if self.deployment:
            pairs["deployment"] = self.deployment
        pairs.update(extra)
        return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


@dataclass
class Synthetic:
    """Everything the exporter serves; mutate under ``lock`` from tests."""

    http: list[Pod] = field(default_factory=list)
    vllm: list[Pod] = field(default_factory=list)
    vllm_in_flight: dict[str, tuple[float, float]] = field(default_factory=dict)
    http_active: dict[str, float] = field(default_factory=dict)  # http_server_active_requests
    triton: list[Pod] = field(default_factory=list)
    triton_failure_rps: float = 1.0
    triton_summary_us: Mapping[float, float] = field(
        default_factory=lambda: {0.5: 20000.0, 0.9: 40000.0, 0.99: 80000.0}
    )
    custom: list[Pod] = field(default_factory=list)
    dcgm: dict[str, tuple[str, float, float]] = field(default_factory=dict)  # pod: ns, %, MiB
    hami: dict[str, tuple[str, float, float]] = field(default_factory=dict)  # pod: ns, %, bytes
    missing: set[str] = field(default_factory=set)
    nan: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, pod_name: str) -> None:
        with self.lock:
            for pod in self.http + self.vllm + self.triton + self.custom:
                if pod.name == pod_name:
                    pod.started_s = time.time()

    def _v(self, pod: str, value: float) -> str:
        return "NaN" if pod in self.nan else repr(float(value))

    def _histogram(self, name: str, pods: list[Pod], now: float) -> list[str]:
        out = [f"# TYPE {name} histogram"]
        for p in pods:
            if p.name in self.missing:
                continue
            n = p.count(now)
            for le in LE_S:
                c = n * uniform_cdf(le, p.latency_max_s)
                out.append(f"{name}_bucket{p.labels(le=repr(le))} {self._v(p.name, c)}")
            out.append(f"{name}_bucket{p.labels(le='+Inf')} {self._v(p.name, n)}")
            out.append(f"{name}_count{p.labels()} {self._v(p.name, n)}")
            out.append(f"{name}_sum{p.labels()} {self._v(p.name, n * p.latency_max_s / 2)}")
        return out

    def render(self) -> str:
        now = time.time()
        with self.lock:
            out = self._histogram("http_server_request_duration_seconds", self.http, now)
            out.append("# TYPE http_server_active_requests gauge")
            for p in self.http:
                if p.name in self.http_active and p.name not in self.missing:
                    value = self._v(p.name, self.http_active[p.name])
                    out.append(f"http_server_active_requests{p.labels()} {value}")
            out += self._histogram("vllm:e2e_request_latency_seconds", self.vllm, now)
            out.append("# TYPE vllm:num_requests_running gauge")
            out.append("# TYPE vllm:num_requests_waiting gauge")
            for p in self.vllm:
                if p.name in self.missing:
                    continue
                running, waiting = self.vllm_in_flight.get(p.name, (0.0, 0.0))
                out.append(f"vllm:num_requests_running{p.labels()} {self._v(p.name, running)}")
                out.append(f"vllm:num_requests_waiting{p.labels()} {self._v(p.name, waiting)}")
            out.append("# TYPE nv_inference_request_success counter")
            out.append("# TYPE nv_inference_request_failure counter")
            out.append("# TYPE nv_inference_request_summary_us summary")
            for p in self.triton:
                if p.name in self.missing:
                    continue
                lab = {"model": "resnet", "version": "1"}
                ok = p.count(now)
                bad = self.triton_failure_rps * max(0.0, now - p.started_s)
                out.append(f"nv_inference_request_success{p.labels(**lab)} {self._v(p.name, ok)}")
                out.append(f"nv_inference_request_failure{p.labels(**lab)} {self._v(p.name, bad)}")
                for q, v in self.triton_summary_us.items():
                    line = f"nv_inference_request_summary_us{p.labels(**lab, quantile=repr(q))}"
                    out.append(f"{line} {self._v(p.name, v)}")
                out.append(f"nv_inference_request_summary_us_count{p.labels(**lab)} {ok}")
                out.append(f"nv_inference_request_summary_us_sum{p.labels(**lab)} {ok * 30000}")
            out.append("# TYPE my_app_requests_total counter")
            out.append("# TYPE my_app_latency_p99_seconds gauge")
            out.append("# TYPE my_app_good_ratio gauge")
            for p in self.custom:
                if p.name in self.missing:
                    continue
                out.append(f"my_app_requests_total{p.labels()} {self._v(p.name, p.count(now))}")
                out.append(f"my_app_latency_p99_seconds{p.labels()} {self._v(p.name, 0.123)}")
                out.append(f"my_app_good_ratio{p.labels()} {self._v(p.name, 0.995)}")
            out.append("# TYPE DCGM_FI_DEV_GPU_UTIL gauge")
            out.append("# TYPE DCGM_FI_DEV_FB_USED gauge")
            for i, (pod, (ns, util, mib)) in enumerate(sorted(self.dcgm.items())):
                if pod in self.missing:
                    continue
                lab = f'{{gpu="{i}",UUID="GPU-{i}",modelName="H100",namespace="{ns}",pod="{pod}"}}'
                out.append(f"DCGM_FI_DEV_GPU_UTIL{lab} {self._v(pod, util)}")
                out.append(f"DCGM_FI_DEV_FB_USED{lab} {self._v(pod, mib)}")
            out.append('DCGM_FI_DEV_GPU_UTIL{gpu="99",UUID="GPU-99",modelName="H100"} 100')
            out.append("# TYPE Device_utilization_desc_of_container gauge")
            out.append("# TYPE vGPU_device_memory_usage_in_bytes gauge")
            for pod, (ns, util, used) in sorted(self.hami.items()):
                if pod in self.missing:
                    continue
                lab = (
                    f'{{podnamespace="{ns}",podname="{pod}",ctrname="main",'
                    f'vdeviceid="0",deviceuuid="GPU-h"}}'
                )
                out.append(f"Device_utilization_desc_of_container{lab} {self._v(pod, util)}")
                out.append(f"vGPU_device_memory_usage_in_bytes{lab} {self._v(pod, used)}")
        return "\n".join(out) + "\n"
