"""Closed loop over every exporter version: the real control loop reads a real Prometheus that
scrapes each serving engine and GPU exporter as deployed, for a pod on a shared card, a whole
card and a MIG slice (issue #28's acceptance).

The loop is ``sloscale run``'s own composition (``run_cluster``: ``SnapshotTap``, the
Prometheus source with the chart label presets, the controller, ticking on the wall clock),
over a ``FakeCluster`` in shadow mode (``dry_run``: decisions are made and reported, the
placement the exporters describe stays put). Prometheus scrapes every 0.25 s:

- one target per engine pod, as the PodMonitors in ``deploy/monitoring`` scrape them
  (``honor_labels: false``; ``namespace``, ``pod``, ``container``, ``endpoint`` and the
  relabelled ``deployment`` as target labels), each serving exposition shaped as its exporter
  version writes it (``tests/support/engine_exposition.py``);
- dcgm-exporter (two nodes: the chart's defaults, and one with ``--kubernetes-virtual-gpus``)
  and HAMi's vGPU monitor (2.8, 2.9+, 2.9+ with ``--legacy-metrics``) as their charts'
  ServiceMonitors scrape them (``honor_labels: false``, the exporter's own ``namespace``/
  ``pod`` as target labels, so the workloads' pods arrive as ``exported_*``;
  ``tests/support/gpu_exposition.py``).

**The matrix.** Every engine version runs three workloads, one per placement: *whole* (a
card of its own, dcgm-exporter ``DCGM_FI_DEV_GPU_UTIL``), *MIG* (a ``3g.40gb`` instance,
two per card, dcgm-exporter ``DCGM_FI_PROF_GR_ENGINE_ACTIVE``) and *shared* (a 30 % slice
beside an unmanaged 60 % tenant on one card). Whole cards and MIG instances are read from
dcgm-exporter only: HAMi does not partition them. The shared card is where the GPU
exporters differ, and the engine does not change what they read (the GPU and the serving
series meet only in the pod map), so each engine's shared card is read through a different
one, covering them all once instead of the meaningless 6 x 6 product:

=====================  ================================================================
engine                 shared card read through
=====================  ================================================================
vLLM 0.6.3 (V0)        HAMi 2.8 (legacy names)
vLLM V1                HAMi 2.9+
SGLang                 HAMi 2.9+ with ``--legacy-metrics`` (both names: counted once)
TGI                    dcgm-exporter, chart defaults (the card's series name one pod)
Triton, summaries      dcgm-exporter ``--kubernetes-virtual-gpus`` (one copy per pod)
Triton, no summaries   dcgm-exporter ``--kubernetes-virtual-gpus`` split per process
=====================  ================================================================

For each workload the test checks what the tick reports (rate, latency at the quantile,
good ratio, in flight, GPU utilisation, busy time, memory) against the arithmetic of the
exposition, and that the loop decided on it. Triton without ``summary_latencies`` has no
latency quantile (a mean is never passed off as one), so its workloads are held
(``MetricsUnavailable``) with their rate, queue and GPU signals read: that is the right
outcome, not a gap.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import pytest

from controller.domain import Card, Decision, MetricsProfile, Reason
from controller.report import Recorder, TickReport, WorkloadStatus
from sloscale.run import RunOptions, run_cluster
from tests.fakes import FakeClock, FakeCluster, slo_annotations
from tests.support.engine_exposition import (
    LLAMA,
    TritonModel,
    Uniform,
    sglang,
    tgi,
    triton,
    vllm_v0,
    vllm_v1,
)
from tests.support.exporters import TextExporter
from tests.support.gpu_exposition import (
    DCGM_HEAD,
    GIB,
    dcgm,
    hami_legacy,
    hami_new,
    service_monitor,
)
from tests.support.prometheus import PrometheusServer, ScrapeJob, require_prometheus

SCRAPE_S = 0.25
WINDOW_S = 2.0
"""The source's rate window and gauge age: eight scrapes."""
TICK_S = 0.5
TICKS_S = 4.5
"""How long the loop runs: nine or ten ticks. The checks read the last one, whose window must
start after the first tick ended: that tick warms the forecaster up while holding the GIL, so
the exporters (threads of this process) answer late and their scrapes fail or lag. On a slow
CI machine that stall lasted past 1 s, and a window that still held it read rates 10 % low."""
NS = "default"  # FakeCluster's namespace
SHARED_PCT, NEIGHBOUR_PCT, MIG_PCT = 30, 60, 40  # MIG 3g.40gb: 3 of 7 slices, 40 %
CARD_PCT = SHARED_PCT + NEIGHBOUR_PCT  # what a shared card's busy time is spread over


# ---- the engines: what each writes and what the loop must read --------------------------------


@dataclass(frozen=True)
class Engine:
    """One serving engine version, its load, and what the source must make of it."""

    name: str
    annotations: Mapping[str, str]
    render: Callable[[float], str]
    rate_rps: float
    latency_ms: float | None
    good_ratio: float | None
    in_flight: float
    rate_rel: float = 0.05  # integer counters (TGI, Triton) round over a short window
    latency_abs_ms: float = 1.0
    good_abs: float = 1e-6


ENGINES = (
    Engine(
        "vllm-v0",  # vLLM 0.6.3: buckets 1, 2.5, 5, ... s; 1.0-2.5 s requests, 5 s target
        slo_annotations(
            metrics_profile="vllm", model=LLAMA, latency_target_ms="5000", latency_quantile="0.95"
        ),
        vllm_v0(Uniform(10.0, 1.0, 2.5), running=3.0, waiting=1.0),
        rate_rps=10.0,
        latency_ms=2425.0,  # all in (1, 2.5]: 1 + 0.95 x 1.5 s
        good_ratio=1.0,
        in_flight=4.0,
    ),
    Engine(
        "vllm-v1",  # V1: two data-parallel engines, summed
        slo_annotations(
            metrics_profile="vllm", model=LLAMA, latency_target_ms="800", latency_quantile="0.95"
        ),
        vllm_v1(
            {"0": Uniform(6.0, 0.3, 0.5), "1": Uniform(4.0, 0.3, 0.5)}, running=2.0, waiting=1.0
        ),
        rate_rps=10.0,
        latency_ms=490.0,  # all in (0.3, 0.5]: 0.3 + 0.95 x 0.2 s
        good_ratio=1.0,
        in_flight=6.0,  # (2 running + 1 waiting) x 2 engines
    ),
    Engine(
        "sglang",
        slo_annotations(
            metrics_profile="sglang", model=LLAMA, latency_target_ms="600", latency_quantile="0.5"
        ),
        sglang(Uniform(8.0, 0.2, 0.4), running=5.0, queued=2.0),
        rate_rps=8.0,
        latency_ms=300.0,
        good_ratio=1.0,
        in_flight=7.0,
    ),
    Engine(
        "tgi",  # 18 rps succeed in 1-2 s, 2 rps fail: failures are never good
        slo_annotations(metrics_profile="tgi", latency_target_ms="3000", latency_quantile="0.5"),
        tgi(Uniform(18.0, 1.0, 2.0), 2.0, queued=4.0, running=3.0),
        rate_rps=20.0,
        latency_ms=1500.0,
        good_ratio=0.9,
        in_flight=7.0,
        rate_rel=0.1,
        latency_abs_ms=100.0,
        good_abs=0.03,
    ),
    Engine(
        "triton-summary",  # two models on the pod: the declared one is read
        slo_annotations(
            metrics_profile="triton",
            model="resnet50",
            latency_target_ms="35",
            latency_quantile="0.9",
        ),
        triton(
            [
                TritonModel("resnet50", 12.0, 4.0, {"0.5": 20000, "0.9": 30000, "0.99": 40000}),
                TritonModel("preprocess", 30.0, 9.0, {"0.5": 2000, "0.9": 90000, "0.99": 95000}),
            ],
            summary=True,
        ),
        rate_rps=12.0,
        latency_ms=30.0,  # resnet50's p90
        good_ratio=0.945,  # 35 ms between p90 (30) and p99 (40): 0.9 + 0.09 x 0.5
        in_flight=4.0,
        rate_rel=0.1,
        good_abs=1e-9,
    ),
    Engine(
        "triton-plain",  # no summary_latencies: rate and queue, no latency quantile
        slo_annotations(metrics_profile="triton", latency_target_ms="50"),
        triton([TritonModel("bert", 7.0, 2.0)], summary=False),
        rate_rps=7.0,
        latency_ms=None,
        good_ratio=None,
        in_flight=2.0,
        rate_rel=0.1,
    ),
)


# ---- the placements: where each workload's pod sits and what the GPU exporters say -------------


@dataclass(frozen=True)
class Gpu:
    """What the GPU exporters write for one workload's pod, and what the source must read."""

    exporter: str  # which scrape target writes it: dcgm, dcgm-vgpu, hami-2.8, hami-2.9, ...
    util: float
    busy: float | None
    memory_mib: float
    lines: Callable[[str, int], str] = field(repr=False)  # (pod, card index) -> exposition


def dcgm_whole(util_pct: float, engine_ratio: float, fb_mib: float) -> Gpu:
    """A card of the pod's own: ``GPU_UTIL`` is its utilisation and busy time (read in
    preference to the engine activity, which the chart's counters also carry)."""

    def lines(pod: str, card: int) -> str:
        lab = dcgm(card, f"GPU-{card:04x}-whole", pod=(NS, pod))
        return (
            f"DCGM_FI_DEV_GPU_UTIL{lab} {util_pct:g}\n"
            f"DCGM_FI_DEV_FB_USED{lab} {fb_mib:g}\n"
            f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{lab} {engine_ratio:f}\n"
        )

    return Gpu("dcgm", util_pct / 100, util_pct / 100, fb_mib, lines)


def dcgm_mig(instance: int, engine_ratio: float, fb_mib: float) -> Gpu:
    """A MIG instance: no ``GPU_UTIL``; its engine activity is the pod's own."""

    def lines(pod: str, card: int) -> str:
        lab = dcgm(
            card,
            f"GPU-{card:04x}-mig",
            pod=(NS, pod),
            GPU_I_PROFILE="3g.40gb",
            GPU_I_ID=str(instance),
        )
        return (
            f"DCGM_FI_DEV_FB_USED{lab} {fb_mib:g}\n"
            f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{lab} {engine_ratio:f}\n"
        )

    return Gpu("dcgm", engine_ratio, engine_ratio, fb_mib, lines)


def dcgm_time_shared(card_pct: float, fb_mib: float) -> Gpu:
    """Chart defaults: the shared card's series carry one of its pods (this one). The card's
    busy time is spread over the 90 % allocated on it; whose kernels ran is not known."""

    def lines(pod: str, card: int) -> str:
        lab = dcgm(card, f"GPU-{card:04x}-shared", pod=(NS, pod))
        return (
            f"DCGM_FI_DEV_GPU_UTIL{lab} {card_pct:g}\n"
            f"DCGM_FI_DEV_FB_USED{lab} {fb_mib:g}\n"
            f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{lab} {card_pct / 100 - 0.01:f}\n"
        )

    return Gpu("dcgm", card_pct / 100 / (CARD_PCT / 100), None, fb_mib, lines)


def dcgm_vgpu_copies(card_pct: float, fb_mib: float) -> Gpu:
    """``--kubernetes-virtual-gpus``: a copy of the card's value per sharing pod (``vgpu``),
    the neighbour's included."""

    def lines(pod: str, card: int) -> str:
        out = ""
        for vgpu, who in enumerate((pod, neighbour_pod(pod))):
            lab = dcgm(card, f"GPU-{card:04x}-vgpu", pod=(NS, who), vgpu=str(vgpu))
            out += f"DCGM_FI_DEV_GPU_UTIL{lab} {card_pct:g}\nDCGM_FI_DEV_FB_USED{lab} {fb_mib:g}\n"
        return out

    return Gpu("dcgm-vgpu", card_pct / 100 / (CARD_PCT / 100), None, fb_mib, lines)


def dcgm_vgpu_split(own_pct: float, own_mib: float, other_pct: float, other_mib: float) -> Gpu:
    """``--kubernetes-virtual-gpus`` where the exporter splits ``GPU_UTIL``/``FB_USED`` per
    process: each pod's own value, the neighbour's different from this one's."""

    def lines(pod: str, card: int) -> str:
        out = ""
        for vgpu, (who, pct, mib) in enumerate(
            ((pod, own_pct, own_mib), (neighbour_pod(pod), other_pct, other_mib))
        ):
            lab = dcgm(card, f"GPU-{card:04x}-split", pod=(NS, who), vgpu=str(vgpu))
            out += f"DCGM_FI_DEV_GPU_UTIL{lab} {pct:g}\nDCGM_FI_DEV_FB_USED{lab} {mib:g}\n"
        return out

    return Gpu("dcgm-vgpu", own_pct / SHARED_PCT, None, own_mib, lines)


def hami(version: str, util_pct: float, memory_gib: float) -> Gpu:
    """HAMi's per-container numbers (``util_pct`` of the card) for the pod and its neighbour;
    2.8 writes the legacy names, 2.9+ the new ones, 2.9+ ``--legacy-metrics`` both."""
    writers = {
        "hami-2.8": (hami_legacy,),
        "hami-2.9": (hami_new,),
        "hami-2.9-legacy": (hami_new, hami_legacy),
    }[version]

    def lines(pod: str, card: int) -> str:
        uuid = f"GPU-{card:04x}-hami"
        return "".join(
            write(NS, pod, util_pct=util_pct, memory_bytes=memory_gib * GIB, uuid=uuid)
            + write(NS, neighbour_pod(pod), util_pct=50, memory_bytes=30 * GIB, uuid=uuid)
            for write in writers
        )

    return Gpu(version, util_pct / SHARED_PCT, None, memory_gib * 1024, lines)


SHARED = {
    "vllm-v0": hami("hami-2.8", 24, 8),
    "vllm-v1": hami("hami-2.9", 15, 10),
    "sglang": hami("hami-2.9-legacy", 21, 12),
    "tgi": dcgm_time_shared(45, 20000),
    "triton-summary": dcgm_vgpu_copies(72, 50000),
    "triton-plain": dcgm_vgpu_split(18, 9000, 40, 30000),
}


@dataclass(frozen=True)
class Case:
    engine: Engine
    placement: str  # shared, whole, mig
    gpu: Gpu
    slice_pct: int

    @property
    def name(self) -> str:
        return f"{self.engine.name}-{self.placement}"

    @property
    def pod(self) -> str:
        return f"{self.name}-0"  # FakeCluster's pod name for the first replica

    @property
    def key(self) -> str:
        return f"{NS}/{self.name}"


def neighbour_name(name: str) -> str:
    return f"batch-{name}"


def neighbour_pod(pod: str) -> str:
    """The unmanaged tenant beside a shared pod ``<name>-0``: ``batch-<name>-0``."""
    return f"batch-{pod}"


CASES = tuple(
    [Case(e, "shared", SHARED[e.name], SHARED_PCT) for e in ENGINES]
    + [
        Case(e, "whole", dcgm_whole(40 + 5 * i, (39 + 5 * i) / 100, 30000 + 1000 * i), 100)
        for i, e in enumerate(ENGINES)
    ]
    + [
        Case(e, "mig", dcgm_mig(1 + i % 2, (50 + 4 * i) / 100, 12000 + 500 * i), MIG_PCT)
        for i, e in enumerate(ENGINES)
    ]
)


def cluster() -> tuple[FakeCluster, dict[str, int]]:
    """The cluster, and each case's card. First-fit in this order: each shared 30 % slice and
    its 60 % neighbour on one card (0-5), the whole cards (6-11), two MIG instances per card
    (12-14)."""
    fake = FakeCluster(WallClock(), cards=tuple(Card("node-a", i, 81920) for i in range(15)))
    cards: dict[str, int] = {}
    for case in CASES:
        extra = {"sloscale.io/slice-dialect": "mig"} if case.placement == "mig" else {}
        fake.add(case.name, {**case.engine.annotations, **extra}, slice_pct=case.slice_pct)
        if case.placement == "shared":
            fake.add(neighbour_name(case.name), {}, slice_pct=NEIGHBOUR_PCT)
    snapshot = fake.snapshot()
    for a in snapshot.inventory.allocations:
        cards[a.pod] = int(a.card_id.rsplit("/", 1)[1])
    return fake, cards


class WallClock(FakeClock):
    """The snapshot's time is the wall clock's, as the loop's is (``run_cluster``)."""

    def now(self) -> float:
        return time.time()


class Keep(Recorder):
    def __init__(self) -> None:
        self.reports: list[TickReport] = []

    def record(self, report: TickReport) -> None:
        self.reports.append(report)


# ---- the rig: exporters, Prometheus, the loop --------------------------------------------------


def gpu_bodies(cards: Mapping[str, int]) -> dict[str, str]:
    """Each GPU exporter's exposition: every case's lines on the target its exporter is."""
    bodies: dict[str, str] = {}
    for case in CASES:
        body = case.gpu.lines(case.pod, cards[case.pod])
        bodies[case.gpu.exporter] = bodies.get(case.gpu.exporter, "") + body
    return {k: (DCGM_HEAD + v if k.startswith("dcgm") else v) for k, v in bodies.items()}


def constant(body: str) -> Callable[[], str]:
    return lambda: body


def pod_monitor(case: Case) -> dict[str, str]:
    """The target labels a PodMonitor of ``deploy/monitoring`` gives an engine pod."""
    return {
        "namespace": NS,
        "pod": case.pod,
        "container": "server",
        "endpoint": "metrics",
        "deployment": case.name,
    }


@dataclass
class Run:
    reports: list[TickReport]

    def status(self, case: Case) -> WorkloadStatus:
        last = self.reports[-1]
        return next(w for w in last.workloads if w.key == case.key)

    def decisions(self, case: Case) -> list[Decision]:
        return [d for r in self.reports for d in r.decisions if d.target == case.key]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    binaries = require_prometheus()
    fake, cards = cluster()
    started = time.time()

    def since_start(render: Callable[[float], str]) -> Callable[[], str]:
        return lambda: render(time.time() - started)

    engines = {c.name: TextExporter(since_start(c.engine.render)).start() for c in CASES}
    gpus = {name: TextExporter(constant(body)).start() for name, body in gpu_bodies(cards).items()}
    jobs = [
        ScrapeJob(
            "podmonitor/sloscale-engines",
            {engines[c.name].address: pod_monitor(c) for c in CASES},
            honor_labels=False,
        ),
        ScrapeJob(
            "dcgm-exporter",
            {
                gpus["dcgm"].address: service_monitor(
                    "gpu-operator", "nvidia-dcgm-exporter-x7k2p", "nvidia-dcgm-exporter"
                ),
                gpus["dcgm-vgpu"].address: service_monitor(
                    "gpu-operator", "nvidia-dcgm-exporter-m4n5q", "nvidia-dcgm-exporter"
                ),
            },
            honor_labels=False,  # the chart's serviceMonitor.honorLabels
        ),
        ScrapeJob(
            "hami-device-plugin",
            {
                gpus[v].address: service_monitor("kube-system", f"hami-device-plugin-{i}", "m")
                for i, v in enumerate(("hami-2.8", "hami-2.9", "hami-2.9-legacy"))
            },
            honor_labels=False,  # HAMi's chart ServiceMonitor sets none
        ),
    ]
    prom = PrometheusServer(
        binaries, tmp_path_factory.mktemp("closed-loop"), scrape_interval_s=SCRAPE_S, jobs=jobs
    )
    keep = Keep()
    try:
        prom.start()
        targets = len(engines) + len(gpus)
        # a full window of scrapes on every target before the loop starts
        prom.wait_for(
            f"count_over_time(up[{int((WINDOW_S + SCRAPE_S) * 1000)}ms]) >= 9",
            lambda r: len(r) == targets,
            timeout_s=30,
        )
        options = RunOptions(
            prometheus_url=prom.url,
            interval_s=TICK_S,
            window_s=WINDOW_S,
            query_timeout_s=2.0,
            serve=False,
            dry_run=True,  # shadow mode: the placement the exporters describe stays put
            duration_s=TICKS_S,
        )
        assert run_cluster(fake, options, io.StringIO(), recorders=[keep]) == 0
        yield Run(keep.reports)
    finally:
        prom.stop()
        for e in (*engines.values(), *gpus.values()):
            e.stop()


# ---- what the loop read, per engine version and placement ---------------------------------------


def test_the_loop_ticked_without_errors(run: Run) -> None:
    assert len(run.reports) >= 4
    assert not run.reports[-1].errors, run.reports[-1].errors
    assert {c.key for c in CASES} <= {w.key for w in run.reports[-1].workloads}


def test_each_pod_sits_where_its_exporters_say(run: Run) -> None:
    """Shared: a 30 % slice and its 60 % neighbour on one card; whole: a card of its own;
    MIG: an instance beside another one (what the GPU series were written for)."""
    snapshot = run.reports[-1].snapshot
    assert snapshot is not None
    on_card: dict[str, list[str]] = {}
    card_of: dict[str, str] = {}
    for a in snapshot.inventory.allocations:
        on_card.setdefault(a.card_id, []).append(a.pod)
        card_of[a.pod] = a.card_id
    for case in CASES:
        tenants = sorted(on_card[card_of[case.pod]])
        if case.placement == "shared":
            assert tenants == sorted([case.pod, neighbour_pod(case.pod)]), tenants
        elif case.placement == "whole":
            assert tenants == [case.pod], tenants
        else:
            assert len(tenants) == 2 and all(t.endswith("-mig-0") for t in tenants), tenants


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.name}[{c.gpu.exporter}]")
def test_reads_the_engine_and_gpu_and_decides(run: Run, case: Case) -> None:
    status = run.status(case)
    assert not status.errors
    m, e, g = status.metrics, case.engine, case.gpu
    # the serving engine: rate, latency at the workload's quantile, good ratio, queue
    assert m.request_rate_rps == pytest.approx(e.rate_rps, rel=e.rate_rel)
    assert not m.rate_partial
    if e.latency_ms is None:
        assert m.latency_ms is None
    else:
        assert m.latency_ms == pytest.approx(e.latency_ms, abs=e.latency_abs_ms)
    if e.good_ratio is None:
        assert m.good_ratio is None
    else:
        assert m.good_ratio == pytest.approx(e.good_ratio, abs=e.good_abs)
    assert m.unresolved_target is None
    assert m.in_flight == pytest.approx(e.in_flight)
    # the GPU: its utilisation of the allocated share, busy time where known, memory per pod
    assert m.gpu_util == pytest.approx(g.util, rel=1e-6)
    if g.busy is None:
        assert m.gpu_busy is None
    else:
        assert m.gpu_busy == pytest.approx(g.busy, rel=1e-6)
    assert m.gpu_memory_mib == pytest.approx(g.memory_mib, rel=1e-6)
    # and the loop decided on it, every tick: only a workload without a quantile holds
    decisions = run.decisions(case)
    assert len(decisions) == len(run.reports)
    held = {d.reason is Reason.METRICS_UNAVAILABLE for d in decisions}
    assert held == {e.latency_ms is None}, [(d.reason, d.message) for d in decisions]


def test_the_matrix_covers_every_exporter_version() -> None:
    engines = {c.engine.name for c in CASES}
    assert engines == {"vllm-v0", "vllm-v1", "sglang", "tgi", "triton-summary", "triton-plain"}
    assert {c.placement for c in CASES if c.engine.name == "tgi"} == {"shared", "whole", "mig"}
    assert {c.gpu.exporter for c in CASES} == {
        "dcgm",
        "dcgm-vgpu",
        "hami-2.8",
        "hami-2.9",
        "hami-2.9-legacy",
    }
    profiles = {c.engine.annotations["sloscale.io/metrics-profile"] for c in CASES}
    assert profiles == {p.value for p in MetricsProfile} - {"http", "custom"}
