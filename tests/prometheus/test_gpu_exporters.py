"""GPU exporters as deployed: exposition shaped as each version writes it, scraped as each
chart scrapes it, read through the source.

One real Prometheus scrapes six exporters. dcgm-exporter (4.x: whole cards and a time-shared
card; with ``--kubernetes-virtual-gpus``, card copies and the per-process split; MIG) and
HAMi's vGPU monitor (2.8 legacy names, 2.9+, 2.9+ with ``--legacy-metrics``) are scraped the
way their charts' ServiceMonitors do: ``honor_labels: false`` and the target labels a
ServiceMonitor gives (``namespace``, ``pod``, ``container``, ``service``, ``endpoint`` of the
exporter itself), so the exporters' ``pod``/``namespace`` arrive as ``exported_*``. One more
dcgm-exporter is scraped with ``honor_labels: true`` (a PodMonitor that sets it).

The label sets and formats, with the upstream sources they follow, are in
``tests/support/gpu_exposition.py`` (shared with the closed-loop test).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from actuators.prometheus import (
    PodInfo,
    PrometheusClient,
    PrometheusConfig,
    PrometheusMetricsSource,
    SourceSettings,
)
from actuators.prometheus.gpu import HONORED, GpuLabels
from controller.domain import Observation
from controller.ports import ObserveTarget
from tests.prometheus.conftest import SCRAPE_S, WINDOW_S, target
from tests.support.exporters import TextExporter
from tests.support.gpu_exposition import (
    DCGM_HEAD,
    dcgm,
    hami_legacy,
    hami_new,
    service_monitor,
)
from tests.support.prometheus import PrometheusServer, ScrapeJob, require_prometheus


def dcgm_4x() -> str:
    """dcgm-exporter 4.x, chart defaults (no virtual GPUs): a whole card, a time-shared card
    whose series carry one of its pods (the pod mapper keeps the last), a MIG instance (no
    ``GPU_UTIL`` there, ``GR_ENGINE_ACTIVE`` instead) and an idle card without a pod."""
    whole = dcgm(0, "GPU-0a1b", pod=("whole", "llm-7c9d8f6b5-abcde"))
    shared = dcgm(1, "GPU-1c2d", pod=("shared", "chat-6d5c4b3a2-aaaaa"))
    mig = dcgm(
        2,
        "GPU-2e3f",
        pod=("mig", "ocr-5b4a39281-ccccc"),
        GPU_I_PROFILE="3g.40gb",
        GPU_I_ID="2",
    )
    idle = dcgm(3, "GPU-3f4a")
    return (
        DCGM_HEAD
        + f"DCGM_FI_DEV_GPU_UTIL{whole} 62\n"
        + f"DCGM_FI_DEV_GPU_UTIL{shared} 45\n"
        + f"DCGM_FI_DEV_GPU_UTIL{idle} 0\n"
        + f"DCGM_FI_DEV_FB_USED{whole} 30000\n"
        + f"DCGM_FI_DEV_FB_USED{shared} 20000\n"
        + f"DCGM_FI_DEV_FB_USED{mig} 12000\n"
        + f"DCGM_FI_DEV_FB_USED{idle} 0\n"
        + f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{whole} 0.610000\n"
        + f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{shared} 0.440000\n"
        + f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{mig} 0.550000\n"
        + f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{idle} 0.000000\n"
    )


def dcgm_virtual_gpus() -> str:
    """``--kubernetes-virtual-gpus``: one copy of a card's series per sharing pod (``vgpu``),
    each with the card's value; where the exporter splits ``GPU_UTIL``/``FB_USED`` per process,
    each pod's own value instead (card ``GPU-5b6c``)."""
    a = dcgm(0, "GPU-4a5b", pod=("vgpu", "rerank-6b5a49382-ddddd"), vgpu="0")
    b = dcgm(0, "GPU-4a5b", pod=("vgpu", "rerank-6b5a49382-eeeee"), vgpu="1")
    c = dcgm(1, "GPU-5b6c", pod=("split", "asr-7a6b5c4d3-fffff"), vgpu="0")
    d = dcgm(1, "GPU-5b6c", pod=("split", "asr-7a6b5c4d3-ggggg"), vgpu="1")
    # split per process beside a tenant sloscale does not manage (card GPU-9a0b)
    e = dcgm(2, "GPU-9a0b", pod=("split", "tts-5e4d3c2b1-ppppp"), vgpu="0")
    f = dcgm(2, "GPU-9a0b", pod=("split", "batch-8f7e6d5c4-qqqqq"), vgpu="1")
    return (
        DCGM_HEAD
        + f"DCGM_FI_DEV_GPU_UTIL{a} 60\nDCGM_FI_DEV_GPU_UTIL{b} 60\n"
        + f"DCGM_FI_DEV_GPU_UTIL{c} 35\nDCGM_FI_DEV_GPU_UTIL{d} 15\n"
        + f"DCGM_FI_DEV_FB_USED{c} 9000\nDCGM_FI_DEV_FB_USED{d} 7000\n"
        + f"DCGM_FI_DEV_GPU_UTIL{e} 18\nDCGM_FI_DEV_GPU_UTIL{f} 40\n"
        + f"DCGM_FI_DEV_FB_USED{e} 9000\nDCGM_FI_DEV_FB_USED{f} 30000\n"
    )


def dcgm_honored() -> str:
    """A dcgm-exporter scraped with ``honor_labels: true``: its labels as written."""
    whole = dcgm(0, "GPU-6c7d", pod=("honored", "train-5d4c3b2a1-hhhhh"))
    # with --kubernetes-virtual-gpus: a card busy 60 %, copied to its two 50 % pods
    a = dcgm(1, "GPU-7d8e", pod=("honored", "rank-6b5a49382-mmmmm"), vgpu="0")
    b = dcgm(1, "GPU-7d8e", pod=("honored", "rank-6b5a49382-nnnnn"), vgpu="1")
    return (
        DCGM_HEAD
        + f"DCGM_FI_DEV_GPU_UTIL{whole} 30\nDCGM_FI_DEV_FB_USED{whole} 5000\n"
        + f"DCGM_FI_DEV_GPU_UTIL{a} 60\nDCGM_FI_DEV_GPU_UTIL{b} 60\n"
    )


HAMI_28 = hami_legacy("hami28", "chat-5c4b3a291-iiiii")
HAMI_29 = hami_new("hami29", "chat-5c4b3a291-jjjjj")
HAMI_29_LEGACY = hami_new("hamiboth", "chat-5c4b3a291-kkkkk") + hami_legacy(
    "hamiboth", "chat-5c4b3a291-kkkkk"
)


def pod(workload: str, share: int, card_share: int | None = None) -> PodInfo:
    return PodInfo(workload, share, True, card_share if card_share is not None else share)


POD_MAP = {
    ("whole", "llm-7c9d8f6b5-abcde"): pod("whole/llm", 100),
    # a time-shared card: chat 30 % and embed 60 %; dcgm-exporter labels it with chat only
    ("shared", "chat-6d5c4b3a2-aaaaa"): pod("shared/chat", 30, 90),
    ("shared", "embed-4e3d2c1b0-bbbbb"): pod("shared/embed", 60, 90),
    ("mig", "ocr-5b4a39281-ccccc"): pod("mig/ocr", 43),
    ("vgpu", "rerank-6b5a49382-ddddd"): pod("vgpu/rerank", 50, 100),
    ("vgpu", "rerank-6b5a49382-eeeee"): pod("vgpu/rerank", 50, 100),
    ("split", "asr-7a6b5c4d3-fffff"): pod("split/asr", 50, 100),
    ("split", "asr-7a6b5c4d3-ggggg"): pod("split/asr", 50, 100),
    # 30 % beside an unmanaged 60 % batch job: in the snapshot, not a managed workload
    ("split", "tts-5e4d3c2b1-ppppp"): pod("split/tts", 30, 90),
    ("hami28", "chat-5c4b3a291-iiiii"): pod("hami28/chat", 30),
    ("hami29", "chat-5c4b3a291-jjjjj"): pod("hami29/chat", 30),
    ("hamiboth", "chat-5c4b3a291-kkkkk"): pod("hamiboth/chat", 30),
    ("honored", "train-5d4c3b2a1-hhhhh"): pod("honored/train", 100),
    ("honored", "rank-6b5a49382-mmmmm"): pod("honored/rank", 50, 100),
    ("honored", "rank-6b5a49382-nnnnn"): pod("honored/rank", 50, 100),
}
TARGETS = [target(k) for k in sorted({info.workload for info in POD_MAP.values()})]


def _constant(body: str) -> Callable[[], str]:
    return lambda: body


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    bodies = {
        "dcgm": dcgm_4x(),
        "vgpu": dcgm_virtual_gpus(),
        "honored": dcgm_honored(),
        "hami28": HAMI_28,
        "hami29": HAMI_29,
        "hamiboth": HAMI_29_LEGACY,
    }
    exporters = {k: TextExporter(_constant(body)).start() for k, body in bodies.items()}
    dcgm_target = service_monitor("gpu-operator", "nvidia-dcgm-exporter-x7k2p", "dcgm-exporter")
    hami_target = service_monitor("kube-system", "hami-device-plugin-q9w8e", "vgpu-monitor")
    jobs = [
        ScrapeJob(
            "dcgm-exporter",
            {exporters[k].address: dcgm_target for k in ("dcgm", "vgpu")},
            honor_labels=False,  # the chart's serviceMonitor.honorLabels
        ),
        ScrapeJob(
            "hami-device-plugin",
            {exporters[k].address: hami_target for k in ("hami28", "hami29", "hamiboth")},
            honor_labels=False,  # the HAMi chart's ServiceMonitor sets none
        ),
        ScrapeJob("dcgm-podmonitor", {exporters["honored"].address: {}}, honor_labels=True),
    ]
    server = PrometheusServer(
        require_prometheus(),
        tmp_path_factory.mktemp("gpu-prom"),
        scrape_interval_s=SCRAPE_S,
        jobs=jobs,
    )
    try:
        server.start()
        server.wait_for("count(up == 1) == 6", timeout_s=20)
        yield server
    finally:
        server.stop()
        for e in exporters.values():
            e.stop()


def observe(
    prom: PrometheusServer,
    labels: GpuLabels | None = None,
    targets: Sequence[ObserveTarget] = TARGETS,
) -> Observation:
    source = PrometheusMetricsSource(
        PrometheusClient(PrometheusConfig(prom.url, timeout_s=5.0)),
        SourceSettings(window_s=WINDOW_S, max_age_s=WINDOW_S, gpu_labels=labels or GpuLabels()),
        pods=lambda: POD_MAP,
    )
    try:
        return source.observe(targets, time.time())
    finally:
        source.close()


@pytest.fixture(scope="module")
def observed(prom: PrometheusServer) -> Observation:
    return observe(prom)


# ---- E2: label mapping -----------------------------------------------------------------------


def test_chart_scrape_renames_pod_labels(prom: PrometheusServer) -> None:
    """The premise: with the chart's settings the workload's pod is in ``exported_pod``."""
    got = prom.query('DCGM_FI_DEV_GPU_UTIL{exported_pod="llm-7c9d8f6b5-abcde"}')
    assert [r["metric"]["pod"] for r in got] == ["nvidia-dcgm-exporter-x7k2p"]
    assert [r["metric"]["exported_namespace"] for r in got] == ["whole"]


def test_dcgm_scraped_with_the_chart_settings_is_read(observed: Observation) -> None:
    llm = observed.get("whole/llm")
    assert llm.gpu_util == pytest.approx(0.62)  # 62 % of its own whole card
    assert llm.gpu_busy == pytest.approx(0.62)
    assert llm.gpu_memory_mib == pytest.approx(30000.0)
    assert not observed.errors


def test_each_series_picks_its_label_set(observed: Observation) -> None:
    """A second job scraping with ``honor_labels: true`` is read too (detected per series)."""
    assert observed.get("honored/train").gpu_util == pytest.approx(0.30)
    assert observed.get("honored/train").gpu_memory_mib == pytest.approx(5000.0)


def test_without_detection_only_the_configured_labels_are_read(prom: PrometheusServer) -> None:
    obs = observe(prom, GpuLabels(dcgm=HONORED, detect=False))
    assert obs.get("honored/train").gpu_util == pytest.approx(0.30)
    assert obs.get("whole/llm").gpu_util is None  # its pod is in exported_pod


# ---- E3: HAMi names by version ---------------------------------------------------------------


def test_hami_2_9_names_are_read_as_percent_of_the_card(observed: Observation) -> None:
    chat = observed.get("hami29/chat")
    assert chat.gpu_util == pytest.approx(0.8)  # "ratio" 24 is % of the card: 0.24 / 0.30
    assert chat.gpu_memory_mib == pytest.approx(8192.0)


def test_hami_2_8_legacy_names_are_still_read(observed: Observation) -> None:
    chat = observed.get("hami28/chat")
    assert chat.gpu_util == pytest.approx(0.8)
    assert chat.gpu_memory_mib == pytest.approx(8192.0)


def test_hami_with_both_names_counts_once(observed: Observation) -> None:
    chat = observed.get("hamiboth/chat")
    assert chat.gpu_util == pytest.approx(0.8)  # not 1.6: the new names win, legacy unread
    assert chat.gpu_memory_mib == pytest.approx(8192.0)


# ---- E4: a shared card's value ---------------------------------------------------------------


def test_a_time_shared_card_is_spread_over_its_slices(observed: Observation) -> None:
    chat = observed.get("shared/chat")
    # the card ran 45 % of the time, for 30 % + 60 % of it allocated: 0.45 / 0.90 = 0.5,
    # not 0.45 / 0.30 = 1.5 (the whole card's busy time charged to chat's 30 %)
    assert chat.gpu_util == pytest.approx(0.5)
    assert chat.gpu_busy is None  # whose kernels ran is not known
    assert observed.get("shared/embed").gpu_util is None  # no series names it


def test_virtual_gpu_copies_are_not_counted_twice(observed: Observation) -> None:
    rerank = observed.get("vgpu/rerank")
    # two pods of 50 % share a card busy 60 %: 0.6, not (0.6 + 0.6) / (0.5 + 0.5) = 1.2
    assert rerank.gpu_util == pytest.approx(0.6)
    assert rerank.gpu_busy is None


def test_copies_scraped_with_honored_labels_are_not_overstated(observed: Observation) -> None:
    """The same as above where the old rule could read the pods at all (``honor_labels``)."""
    assert observed.get("honored/rank").gpu_util == pytest.approx(0.6)  # not 1.2


def test_a_per_process_split_is_each_pods_own(observed: Observation) -> None:
    asr = observed.get("split/asr")
    assert asr.gpu_util == pytest.approx(0.5)  # (0.35 + 0.15) / (0.5 + 0.5)
    assert asr.gpu_memory_mib == pytest.approx(8000.0)  # mean of 9000 and 7000 MiB


def test_a_per_process_split_beside_an_unmanaged_tenant_is_the_pods_own(
    observed: Observation,
) -> None:
    """The other tenant's series tell the split from copies even though sloscale does not
    manage it: 18 % of the card is tts's own use of its 30 %, not the card's busy time."""
    tts = observed.get("split/tts")
    assert tts.gpu_util == pytest.approx(0.6)  # 0.18 / 0.30, not 0.18 / 0.90 = 0.2
    assert tts.gpu_memory_mib == pytest.approx(9000.0)


# ---- E5: MIG ---------------------------------------------------------------------------------


def test_mig_utilisation_is_the_engine_activity_ratio(observed: Observation) -> None:
    ocr = observed.get("mig/ocr")
    assert ocr.gpu_util == pytest.approx(0.55)  # GR_ENGINE_ACTIVE 0.55 of its own instance
    assert ocr.gpu_busy == pytest.approx(0.55)
    assert ocr.gpu_memory_mib == pytest.approx(12000.0)


def test_whole_cards_prefer_gpu_util_over_engine_activity(observed: Observation) -> None:
    assert observed.get("whole/llm").gpu_util == pytest.approx(0.62)  # not 0.61


# ---- what the log says of the exporters ---------------------------------------------------------


def test_dcgm_without_hami_is_no_warning(
    prom: PrometheusServer, caplog: pytest.LogCaptureFixture
) -> None:
    """dcgm-exporter alone is a complete setup (and what ``run --cluster sim`` serves): no
    HAMi series at all is not a label problem. It was a warning that no hami series names a
    managed pod under three label sets, on every start."""
    with caplog.at_level(logging.INFO, logger="sloscale.prometheus"):
        observe(prom, targets=[target("whole/llm")])
    said = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert not [line for level, line in said if level >= logging.WARNING], said
    assert [line for level, line in said if level == logging.INFO] == [
        "dcgm series name their pods with: exported_namespace,exported_pod",
        "no hami series at all: its exporter is not deployed or not scraped",
    ]


def test_no_gpu_series_at_all_is_one_warning(
    prom: PrometheusServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sloscale.prometheus"):
        observe(prom, targets=[target("nowhere/svc")])
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            "no dcgm or hami series at all in the workloads' namespaces: GPU use is unknown "
            "(is an exporter scraped?)",
        )
    ]
