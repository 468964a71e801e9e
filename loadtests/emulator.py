"""The GPU-inference emulator: one Deployment's pods serving ``POST /v1/infer`` on 127.0.0.1.

Why it exists: the load tests need a service whose capacity really follows the controller.
This process holds an emulated Deployment (replicas of one GPU slice, placed on a finite set
of cards) that the controller drives through the ``Cluster`` port (``loadtests.cluster``
talks to ``/emulator/snapshot`` and ``/emulator/apply``). A new or resized pod serves only
after the cold start; a removed pod stops taking requests and finishes its queue. Each ready
pod is a FIFO server (one request at a time, an ``asyncio.Lock`` is the queue) whose service
time is gamma distributed with the reference model's mean ``s_sat * t0 / min(s, s_sat)``.
The gateway holds the queue and hands each request, oldest first, to the next ready pod that
is free (one request at a time per pod), as a request-buffering proxy does (Knative's
activator with ``containerConcurrency: 1``, Ray Serve's router with ``max_ongoing_requests``,
an inference gateway routing on queue depth): a pod that becomes ready takes from the backlog
at once, and a slow or removed pod holds nobody else's requests.

``/metrics`` (Prometheus text format) exposes what a real Deployment would: the ``http``
profile's ``http_server_request_duration_seconds`` histogram measured at the gateway (queueing
included) with ``namespace``/``deployment`` labels, a failed request in its own series with
``error_type="503"`` (OpenTelemetry's ``error.type``: the conventions have no failure counter),
``http_server_active_requests`` (requests in the gateway, queued or in service; the
OpenTelemetry HTTP server metric of that name), and
dcgm-exporter-named per-pod gauges ``DCGM_FI_DEV_GPU_UTIL`` (% of a card: busy fraction times
``min(s, s_sat)``) and ``DCGM_FI_DEV_FB_USED`` (MiB). ``/emulator/requests`` and
``/emulator/pods`` give the harness the ground truth to check against.

With ``engine: "vllm"`` the Deployment is an LLM server that batches continuously, run by the
simulator's own model (``actuators.sim.batching``, one ``BatchReplica`` per pod, advanced on
the wall clock every ``STEP_PERIOD_S``): each request draws a prompt and an output length
(the Azure LLM code trace's when ``token_trace`` names it), the gateway sends it to the ready
pod with the fewest requests in flight (an inference gateway routing on queue depth), and the
pod's scheduler queues, prefills and decodes it with the rest of its batch. ``/metrics`` then
writes what vLLM writes: ``vllm:e2e_request_latency_seconds`` and
``vllm:time_to_first_token_seconds`` (histograms, label ``model_name``),
``vllm:num_requests_running`` and ``vllm:num_requests_waiting``, beside the GPU gauges. The
request log's latency is the one the SLO's ``latency-metric`` names (time to first token for
``ttft``); the e2e latency is kept beside it.

Run: ``python -m loadtests.emulator --config FILE.json --port N`` (always on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from actuators.prometheus.profiles import (
    VLLM_HISTOGRAM,
    VLLM_RUNNING,
    VLLM_TTFT,
    VLLM_WAITING,
)
from actuators.sim.batching import BatchLimits, BatchReplica, ContinuousBatching, Finished
from actuators.sim.exporter import (
    ERROR_TYPE_LABEL,
    FAILED_ERROR_TYPE,
    HISTOGRAM_NAME,
    LATENCY_BUCKETS_S,
    latency_bounds_s,
)
from actuators.sim.tokens import load_token_lengths

ACTIVE_NAME = "http_server_active_requests"
STEP_PERIOD_S = 0.002
"""How often a ``vllm`` emulator runs its pods' batches up to the wall clock."""


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    namespace: str
    name: str
    t0_s: float
    s_sat_pct: float
    service_cv: float
    memory_mib: int
    cards: int
    card_memory_mib: int
    cold_start_s: float
    replicas: int
    slice_pct: int
    annotations: Mapping[str, str]
    gateway_timeout_s: float = 10.0
    seed: int = 1
    engine: str = "http"  # or "vllm": an LLM server batching continuously
    model_name: str = "emulated-llm"
    decode_s_per_token: float = 0.008  # vllm: a decode step with one sequence, whole card
    prefill_s_per_token: float = 0.000025  # vllm: a prompt token's prefill, whole card
    max_num_seqs: int = 32  # vllm: a whole card's batch
    kv_cache_tokens: int = 200_000
    step_growth: float = 0.1
    token_trace: str | None = None  # vllm: CSV of prompt and output lengths (Azure LLM trace)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EmulatorConfig:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def target_s(self) -> tuple[float, ...]:
        """The SLO's latency target, when its annotation gives one: a bucket bound of the
        histogram, so the SLI read from it is exact."""
        try:
            return (float(self.annotations["sloscale.io/latency-target-ms"]) / 1000.0,)
        except (KeyError, ValueError):
            return ()

    def mean_service_s(self, slice_pct: int) -> float:
        return self.s_sat_pct * self.t0_s / min(float(slice_pct), self.s_sat_pct)

    @property
    def latency_metric(self) -> str:
        """What the SLO judges (``sloscale.io/latency-metric``): ``e2e`` or ``ttft``."""
        return self.annotations.get("sloscale.io/latency-metric", "e2e").strip()

    def batch_limits(self, slice_pct: int) -> BatchLimits:
        """A ``vllm`` pod's batching on its slice (``actuators.sim.batching``)."""
        batching = ContinuousBatching(self.max_num_seqs, self.kv_cache_tokens, self.step_growth)
        return batching.limits(
            share=min(float(slice_pct), self.s_sat_pct) / self.s_sat_pct,
            step_s=self.decode_s_per_token,
            prefill_s_per_token=self.prefill_s_per_token,
        )

    def token_lengths(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Prompt and output lengths to draw from: the trace's, else a small fixed mix."""
        if self.token_trace is not None:
            return load_token_lengths(Path(self.token_trace))
        return (500, 1500, 2000, 3000, 5000), (10, 20, 30, 40, 60)


@dataclass(eq=False)
class Pod:
    """One replica: its slice, its card, its life (created, ready, deleted) and its queue."""

    name: str
    slice_pct: int
    card: int | None
    created_s: float
    ready_s: float
    deleted_s: float | None = None
    busy_s: float = 0.0
    pooled: bool = False  # in the gateway's free-pod queue (or serving a request from it)
    replica: BatchReplica | None = None  # a ``vllm`` pod's batch, from when it first serves

    def serving(self, now_s: float) -> bool:
        return self.deleted_s is None and self.card is not None and now_s >= self.ready_s


class EmulatedDeployment:
    """The Deployment, its pods and the cards they sit on; all times are passed in."""

    def __init__(self, config: EmulatorConfig, now_s: float) -> None:
        self.config = config
        self.replicas = config.replicas
        self.slice_pct = config.slice_pct
        self.pods: list[Pod] = []  # every pod ever, deleted ones included (the record)
        self._names = itertools.count(1)
        self.reconcile(now_s, initial=True)

    # --- the Deployment controller's part --------------------------------------------------
    def live(self) -> list[Pod]:
        return [p for p in self.pods if p.deleted_s is None]

    def reconcile(self, now_s: float, *, initial: bool = False) -> None:
        """Create or delete pods towards ``replicas`` x ``slice_pct``; new pods first."""
        current = [p for p in self.live() if p.slice_pct == self.slice_pct]
        for _ in range(self.replicas - len(current)):
            ready = now_s if initial else now_s + self.config.cold_start_s
            pod = Pod(self._pod_name(), self.slice_pct, None, now_s, ready)
            self.pods.append(pod)
            current.append(pod)
        if len(current) > self.replicas:
            # not-ready pods go first, then the newest (as a ReplicaSet picks victims)
            victims = sorted(current, key=lambda p: (p.serving(now_s), p.created_s))
            for pod in victims[: len(current) - self.replicas]:
                pod.deleted_s = now_s
        old = [p for p in self.live() if p.slice_pct != self.slice_pct]
        updated_ready = sum(
            1 for p in self.live() if p.slice_pct == self.slice_pct and p.serving(now_s)
        )
        if old and updated_ready >= self.replicas:
            for pod in old:
                pod.deleted_s = now_s
        self._place(now_s, initial)

    def _pod_name(self) -> str:
        return f"{self.config.name}-7d9f8b6c5-{next(self._names):05d}"

    def _place(self, now_s: float, initial: bool) -> None:
        """Best-fit: each pending pod on the fullest card that still holds it."""
        for pod in self.live():
            if pod.card is not None:
                continue
            used = self.used_pct_by_card()
            mib = self.used_mib_by_card()
            fits = [
                c
                for c in range(self.config.cards)
                if used[c] + pod.slice_pct <= 100
                and mib[c] + self.config.memory_mib <= self.config.card_memory_mib
            ]
            if fits:
                pod.card = max(fits, key=lambda c: (used[c], -c))
                pod.ready_s = now_s if initial else now_s + self.config.cold_start_s

    def used_pct_by_card(self) -> dict[int, int]:
        used = dict.fromkeys(range(self.config.cards), 0)
        for p in self.live():
            if p.card is not None:
                used[p.card] += p.slice_pct
        return used

    def used_mib_by_card(self) -> dict[int, int]:
        used = dict.fromkeys(range(self.config.cards), 0)
        for p in self.live():
            if p.card is not None:
                used[p.card] += self.config.memory_mib
        return used

    def apply(self, replicas: int, slice_pct: int, now_s: float) -> None:
        self.replicas = max(0, replicas)
        self.slice_pct = slice_pct
        self.reconcile(now_s)

    # --- what the cluster reports -----------------------------------------------------------
    def snapshot(self, now_s: float) -> dict[str, Any]:
        self.reconcile(now_s)
        live = self.live()
        cfg = self.config
        return {
            "time_s": now_s,
            "deployment": {
                "namespace": cfg.namespace,
                "name": cfg.name,
                "annotations": dict(cfg.annotations),
                "replicas": self.replicas,
                "ready_replicas": sum(1 for p in live if p.serving(now_s)),
                "slice_pct": self.slice_pct,
                "memory_mib": cfg.memory_mib,
                "rollout_in_progress": any(p.slice_pct != self.slice_pct for p in live),
            },
            "cards": [
                {"node": "emu-node-0", "index": c, "memory_mib": cfg.card_memory_mib}
                for c in range(cfg.cards)
            ],
            "allocations": [
                {
                    "owner": cfg.key,
                    "pod": p.name,
                    "card_id": f"emu-node-0/{p.card}",
                    "share_pct": p.slice_pct,
                    "memory_mib": cfg.memory_mib,
                    "ready": p.serving(now_s),
                }
                for p in live
                if p.card is not None
            ],
        }

    def newly_serving(self, now_s: float) -> list[Pod]:
        """Pods that serve now and have not joined the gateway's pool yet (they join once)."""
        self.reconcile(now_s)
        out = [p for p in self.live() if p.serving(now_s) and not p.pooled]
        for p in out:
            p.pooled = True
        return out


class RequestLog:
    """Every request's arrival and latency (``inf``: failed), and the histogram's counters;
    for an LLM, the e2e latency and the time-to-first-token histogram beside them."""

    def __init__(self, bounds_s: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.arrival_s: list[float] = []
        self.latency_s: list[float] = []
        self.e2e_s: list[float] = []
        self.bounds_s = bounds_s
        self._bounds = np.array(bounds_s)
        self.buckets = np.zeros(len(bounds_s) + 1)
        self.count = 0
        self.failed = 0
        self.sum_s = 0.0
        self.ttft_buckets = np.zeros(len(bounds_s) + 1)
        self.ttft_sum_s = 0.0

    def add(self, arrival_s: float, latency_s: float, e2e_s: float | None = None) -> None:
        """One request; ``latency_s`` is what the SLO judges, ``e2e_s`` the whole request's
        latency where that is another (the e2e histogram counts it)."""
        e2e = latency_s if e2e_s is None else e2e_s
        self.arrival_s.append(arrival_s)
        self.latency_s.append(latency_s)
        self.e2e_s.append(e2e)
        self.buckets[int(np.searchsorted(self._bounds, e2e, side="left"))] += 1
        self.count += 1
        if math.isfinite(e2e):
            self.sum_s += e2e
        else:
            self.failed += 1

    def add_ttft(self, ttft_s: float) -> None:
        self.ttft_buckets[int(np.searchsorted(self._bounds, ttft_s, side="left"))] += 1
        self.ttft_sum_s += ttft_s


def _labels(pairs: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def render_metrics(
    config: EmulatorConfig,
    log: RequestLog,
    gpu_used_pct: Mapping[str, float],
    memory_mib: Mapping[str, float],
    active_requests: int = 0,
) -> str:
    """Prometheus text exposition of the gateway histogram and per-pod GPU gauges."""
    base = {"namespace": config.namespace, "deployment": config.name}
    out = [f"# TYPE {ACTIVE_NAME} gauge", f"{ACTIVE_NAME}{_labels(base)} {active_requests}"]
    out.append(f"# TYPE {HISTOGRAM_NAME} histogram")
    les = [*(repr(b) for b in log.bounds_s), "+Inf"]
    cumulative = np.cumsum(log.buckets)
    cumulative[-1] -= log.failed  # the failed (latency inf) are in the error series only
    for le, count in zip(les, cumulative, strict=True):
        out.append(f"{HISTOGRAM_NAME}_bucket{_labels({**base, 'le': le})} {int(count)}")
    out.append(f"{HISTOGRAM_NAME}_count{_labels(base)} {log.count - log.failed}")
    out.append(f"{HISTOGRAM_NAME}_sum{_labels(base)} {log.sum_s!r}")
    if log.failed:
        failed = {**base, ERROR_TYPE_LABEL: FAILED_ERROR_TYPE}
        for le in les:
            count = log.failed if le == "+Inf" else 0
            out.append(f"{HISTOGRAM_NAME}_bucket{_labels({**failed, 'le': le})} {count}")
        out.append(f"{HISTOGRAM_NAME}_count{_labels(failed)} {log.failed}")
        out.append(f"{HISTOGRAM_NAME}_sum{_labels(failed)} 0")
    out += _gpu_lines(config, gpu_used_pct, memory_mib)
    return "\n".join(out) + "\n"


def render_vllm_metrics(
    config: EmulatorConfig,
    log: RequestLog,
    gpu_used_pct: Mapping[str, float],
    memory_mib: Mapping[str, float],
    running: int = 0,
    waiting: int = 0,
) -> str:
    """Prometheus text exposition of what a vLLM server writes (``vllm/engine/metrics.py``,
    ``vllm/v1/metrics/loggers.py``: label ``model_name``; requests that never completed are
    in no histogram) and the per-pod GPU gauges."""
    base = {"namespace": config.namespace, "deployment": config.name}
    model = {**base, "model_name": config.model_name}
    out = [f"# TYPE {VLLM_RUNNING} gauge", f"{VLLM_RUNNING}{_labels(model)} {running}"]
    out += [f"# TYPE {VLLM_WAITING} gauge", f"{VLLM_WAITING}{_labels(model)} {waiting}"]
    les = [*(repr(b) for b in log.bounds_s), "+Inf"]
    e2e = np.cumsum(log.buckets)
    e2e[-1] -= log.failed
    ttft = np.cumsum(log.ttft_buckets)
    for name, cumulative, total_s in (
        (VLLM_HISTOGRAM, e2e, log.sum_s),
        (VLLM_TTFT, ttft, log.ttft_sum_s),
    ):
        out.append(f"# TYPE {name} histogram")
        for le, count in zip(les, cumulative, strict=True):
            out.append(f"{name}_bucket{_labels({**model, 'le': le})} {int(count)}")
        out.append(f"{name}_count{_labels(model)} {int(cumulative[-1])}")
        out.append(f"{name}_sum{_labels(model)} {total_s!r}")
    out += _gpu_lines(config, gpu_used_pct, memory_mib)
    return "\n".join(out) + "\n"


def _gpu_lines(
    config: EmulatorConfig, gpu_used_pct: Mapping[str, float], memory_mib: Mapping[str, float]
) -> list[str]:
    out = ["# TYPE DCGM_FI_DEV_GPU_UTIL gauge"]
    for pod, pct in sorted(gpu_used_pct.items()):
        labels = _labels({"namespace": config.namespace, "pod": pod})
        out.append(f"DCGM_FI_DEV_GPU_UTIL{labels} {pct:.6g}")
    out.append("# TYPE DCGM_FI_DEV_FB_USED gauge")
    for pod, mib in sorted(memory_mib.items()):
        labels = _labels({"namespace": config.namespace, "pod": pod})
        out.append(f"DCGM_FI_DEV_FB_USED{labels} {mib:.6g}")
    return out


class Emulator:
    """The service: the Deployment, the request log and the GPU gauges' last readings."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.deployment = EmulatedDeployment(config, time.time())
        self.log = RequestLog(latency_bounds_s(config.target_s()))
        self.rng = np.random.default_rng(config.seed)
        self._last_busy: dict[str, tuple[float, float]] = {}
        self.active = 0  # requests in the gateway: queued or in service
        self._free: asyncio.Queue[Pod] | None = None  # created in the server's event loop
        self._llm = config.engine == "vllm"
        self._prompt, self._output = config.token_lengths() if self._llm else ((), ())
        self._requests = itertools.count()
        self._pending: dict[int, asyncio.Future[Finished]] = {}
        self._arrivals: dict[
            int, float
        ] = {}  # gateway arrival of each request before its first token

    @property
    def free(self) -> asyncio.Queue[Pod]:
        if self._free is None:
            self._free = asyncio.Queue()
        return self._free

    def admit_ready_pods(self) -> None:
        """Put pods that have just become ready into the free-pod queue."""
        for pod in self.deployment.newly_serving(time.time()):
            self.free.put_nowait(pod)

    async def admit_forever(self, period_s: float = 0.01) -> None:
        while True:
            self.admit_ready_pods()
            await asyncio.sleep(period_s)

    def service_time_s(self, slice_pct: int) -> float:
        mean = self.config.mean_service_s(slice_pct)
        cv = self.config.service_cv
        if cv <= 0:
            return mean
        shape = 1.0 / (cv * cv)
        return float(self.rng.gamma(shape, mean / shape))

    async def step_forever(self, period_s: float = STEP_PERIOD_S) -> None:
        """Run every ``vllm`` pod's batch (removed ones while they drain) to the wall clock."""
        while True:
            self.step(time.time())
            await asyncio.sleep(period_s)

    def step(self, now_s: float) -> None:
        for pod in self.deployment.pods:
            if pod.replica is not None and pod.replica.in_flight:
                self._resolve(pod.replica.advance(now_s))
                self._observe_first_tokens(pod.replica)
                pod.busy_s = pod.replica.busy_s

    def _observe_first_tokens(self, replica: BatchReplica) -> None:
        """The TTFT histogram counts a request when its first token comes, as vLLM's does
        (its output processor, on the first token): a scrape between a request's first token
        and its last already sees it, and one whose answer never completes is counted too."""
        for request, at_replica_s, first_token_s in replica.take_first_tokens():
            arrival_s = self._arrivals.pop(request, at_replica_s)  # at the gateway
            self.log.add_ttft(first_token_s - arrival_s)

    def _resolve(self, finished: list[Finished]) -> None:
        for f in finished:
            future = self._pending.pop(f.request, None)
            if future is not None and not future.done():
                future.set_result(f)

    def _llm_pod(self, now_s: float) -> Pod | None:
        """The ready pod with the fewest requests in flight (its batch started if new)."""
        serving = [p for p in self.deployment.live() if p.serving(now_s)]
        for pod in serving:
            if pod.replica is None:
                limits = self.config.batch_limits(pod.slice_pct)
                timeout = self.config.gateway_timeout_s
                pod.replica = BatchReplica(
                    limits, timeout_s=timeout, now_s=now_s, track_first_tokens=True
                )
        if not serving:
            return None
        return min(serving, key=lambda p: (p.replica.in_flight if p.replica else 0, p.name))

    async def serve_llm(self) -> tuple[int, dict[str, Any]]:
        """One request to the continuously batching LLM: routed, queued, prefilled, decoded."""
        arrival = time.time()
        self.active += 1
        try:
            pod = self._llm_pod(arrival)
            while pod is None and time.time() - arrival < self.config.gateway_timeout_s:
                await asyncio.sleep(0.01)
                self.deployment.reconcile(time.time())
                pod = self._llm_pod(time.time())
            if pod is None or pod.replica is None:
                self.log.add(arrival, math.inf)
                return 503, {"error": "no replica ready within the gateway timeout"}
            i = int(self.rng.integers(len(self._prompt)))
            request = next(self._requests)
            future: asyncio.Future[Finished] = asyncio.get_running_loop().create_future()
            self._pending[request] = future
            self._arrivals[request] = arrival
            now = time.time()
            self._resolve(pod.replica.submit(request, now, self._prompt[i], self._output[i]))
            self._observe_first_tokens(pod.replica)
            f = await future
            self._arrivals.pop(request, None)  # timed out before its first token
            ttft, e2e = f.first_token_s - arrival, f.done_s - arrival
            if not math.isfinite(e2e):
                self.log.add(arrival, math.inf)
                return 503, {"error": "not scheduled within the gateway timeout"}
            self.log.add(arrival, ttft if self.config.latency_metric == "ttft" else e2e, e2e)
            return 200, {"pod": pod.name, "latency_ms": 1000.0 * e2e, "ttft_ms": 1000.0 * ttft}
        finally:
            self.active -= 1

    async def serve(self) -> tuple[int, dict[str, Any]]:
        if self._llm:
            return await self.serve_llm()
        arrival = time.time()
        self.active += 1
        try:
            pod = await self._next_free_pod(arrival)
            if pod is None:
                self.log.add(arrival, math.inf)
                return 503, {"error": "no replica free within the gateway timeout"}
            try:
                start = time.time()
                await asyncio.sleep(self.service_time_s(pod.slice_pct))
                pod.busy_s += time.time() - start
            finally:
                self._release(pod)
            latency = time.time() - arrival
            self.log.add(arrival, latency)
            return 200, {"pod": pod.name, "latency_ms": 1000.0 * latency}
        finally:
            self.active -= 1

    async def _next_free_pod(self, arrival_s: float) -> Pod | None:
        """The oldest waiting request gets the next free pod (``asyncio.Queue`` is FIFO)."""
        while True:
            left = self.config.gateway_timeout_s - (time.time() - arrival_s)
            if left <= 0:
                return None
            try:
                pod = await asyncio.wait_for(self.free.get(), timeout=left)
            except TimeoutError:
                return None
            if pod.serving(time.time()):
                return pod
            pod.pooled = False  # removed or replaced while it waited: it leaves the pool

    def _release(self, pod: Pod) -> None:
        if pod.serving(time.time()):
            self.free.put_nowait(pod)
        else:
            pod.pooled = False

    def metrics(self) -> str:
        now = time.time()
        self.deployment.reconcile(now)
        used: dict[str, float] = {}
        memory: dict[str, float] = {}
        for pod in self.deployment.live():
            if not pod.serving(now):
                continue
            memory[pod.name] = float(self.config.memory_mib)
            before = self._last_busy.get(pod.name)
            self._last_busy[pod.name] = (now, pod.busy_s)
            if before is not None and now > before[0]:
                busy = min(1.0, (pod.busy_s - before[1]) / (now - before[0]))
                used[pod.name] = busy * min(float(pod.slice_pct), self.config.s_sat_pct)
        if self._llm:
            batches = [p.replica for p in self.deployment.pods if p.replica is not None]
            running = sum(r.batch_size for r in batches)
            waiting = sum(r.in_flight - r.batch_size for r in batches)
            return render_vllm_metrics(self.config, self.log, used, memory, running, waiting)
        return render_metrics(self.config, self.log, used, memory, self.active)

    def pods_record(self) -> list[dict[str, Any]]:
        return [
            {
                "name": p.name,
                "slice_pct": p.slice_pct,
                "placed": p.card is not None,
                "created_s": p.created_s,
                "ready_s": p.ready_s if p.card is not None else None,
                "deleted_s": p.deleted_s,
            }
            for p in self.deployment.pods
        ]


def create_app(config: EmulatorConfig) -> FastAPI:
    emulator = Emulator(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(emulator.admit_forever())]
        if config.engine == "vllm":
            tasks.append(asyncio.create_task(emulator.step_forever()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    app = FastAPI(title="sloscale GPU-inference emulator", lifespan=lifespan)

    @app.post("/v1/infer")
    async def infer() -> JSONResponse:
        status, body = await emulator.serve()
        return JSONResponse(body, status_code=status)

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(emulator.metrics(), media_type="text/plain; version=0.0.4")

    @app.get("/emulator/snapshot")
    async def snapshot() -> JSONResponse:
        return JSONResponse(emulator.deployment.snapshot(time.time()))

    @app.post("/emulator/apply")
    async def apply(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("namespace") != config.namespace or body.get("name") != config.name:
            return JSONResponse({"ok": False, "message": "no such Deployment"}, status_code=404)
        emulator.deployment.apply(int(body["replicas"]), int(body["slice_pct"]), time.time())
        return JSONResponse({"ok": True})

    @app.get("/emulator/requests")
    async def requests() -> JSONResponse:
        log = emulator.log
        latency = [x if math.isfinite(x) else None for x in log.latency_s]
        e2e = [x if math.isfinite(x) else None for x in log.e2e_s]
        return JSONResponse({"arrival_s": log.arrival_s, "latency_s": latency, "e2e_s": e2e})

    @app.get("/emulator/pods")
    async def pods() -> JSONResponse:
        return JSONResponse({"pods": emulator.pods_record(), "time_s": time.time()})

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"ok": True})

    return app


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m loadtests.emulator")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    config = EmulatorConfig.from_json(json.loads(args.config.read_text()))
    uvicorn.run(
        create_app(config), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
