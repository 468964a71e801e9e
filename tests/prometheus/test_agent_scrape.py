"""``sloscale agent`` scraped as deploy/agent's PodMonitor scrapes it, read by the controller
with deploy/base's flags.

The agent's own HTTP server, on a fake NVML (tests/agent/test_agent.py's node: a card shared
by two pods, a MIG card), is scraped by a real Prometheus with the PodMonitor's
``honorLabels`` and the target labels the Prometheus Operator gives a PodMonitor's target
(``namespace``, ``pod``, ``container`` of the agent's own pod, ``endpoint``). The source then
reads it with the GPU labels the controller Deployment's arguments give (no flag: ``chart``,
with detection), and each pod on the shared card gets its own share, not the card's.

Beside it, a dcgm-exporter with its pod mapping (``--kubernetes-virtual-gpus``), scraped as
its chart does, names the same two pods on the same card with copies of the card's value:
each pod is read from the agent's series all the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actuators.nvml.agent import Exporter, serve
from actuators.nvml.cgroup import StaticPodResolver
from actuators.nvml.collect import Collector
from actuators.prometheus import (
    PodInfo,
    PrometheusClient,
    PrometheusConfig,
    PrometheusMetricsSource,
    PromSample,
    SourceSettings,
)
from actuators.prometheus.gpu import EXPORTED, GpuLabels
from controller.domain import Observation
from sloscale.cli import build_parser, run_options
from tests.agent.test_agent import CGROUPS, PODS, install_fake_nvml
from tests.k8s.test_deploy import build
from tests.prometheus.conftest import SCRAPE_S, WINDOW_S, target
from tests.support.exporters import TextExporter
from tests.support.gpu_exposition import DCGM_HEAD, dcgm, service_monitor
from tests.support.prometheus import PrometheusServer, ScrapeJob, require_prometheus

NODE = "gpu-node-7"
POD_MAP = {
    ("shop", "web-6d9f8b7c5-abcde"): PodInfo("shop/web", 50, True, 100),
    ("shop", "search-5c4b3a291-qwert"): PodInfo("shop/search", 50, True, 100),
    ("llm", "chat-0"): PodInfo("llm/chat", 29, True, 29),
}
TARGETS = [target(k) for k in ("shop/web", "shop/search", "llm/chat")]


def podmonitor_target() -> tuple[bool, dict[str, str]]:
    """deploy/agent's ``honorLabels``, and the target labels the Operator gives one of its
    pods (``namespace``, ``pod``, ``container`` and ``endpoint``: the port's name)."""
    docs = build("agent")
    (monitor,) = [d for d in docs if d["kind"] == "PodMonitor"]
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (container,) = ds["spec"]["template"]["spec"]["containers"]
    labels = {
        "namespace": ds["metadata"]["namespace"],
        "pod": f"{ds['metadata']['name']}-x7k2p",
        "container": container["name"],
        "endpoint": endpoint["port"],
    }
    return bool(endpoint.get("honorLabels", False)), labels


def dcgm_beside_the_agent() -> str:
    """dcgm-exporter on the same node with ``--kubernetes-virtual-gpus``: one copy of GPU 0's
    series per pod on it (``vgpu``), each with the card's 63 % and 30 GiB."""
    web = dcgm(0, "GPU-gpu0", pod=("shop", "web-6d9f8b7c5-abcde"), vgpu="0")
    search = dcgm(0, "GPU-gpu0", pod=("shop", "search-5c4b3a291-qwert"), vgpu="1")
    return DCGM_HEAD + "".join(
        f"DCGM_FI_DEV_GPU_UTIL{lab} 63\nDCGM_FI_DEV_FB_USED{lab} 30720\n" for lab in (web, search)
    )


def controller_gpu_labels() -> GpuLabels:
    (dep,) = [d for d in build("base") if d["kind"] == "Deployment"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return run_options(build_parser().parse_args(c["args"])).gpu_labels


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    proc = tmp_path_factory.mktemp("proc")
    for pid, text in CGROUPS.items():
        (proc / str(pid)).mkdir()
        (proc / str(pid) / "cgroup").write_text(text)
    honor_labels, labels = podmonitor_target()
    with pytest.MonkeyPatch.context() as mp:
        install_fake_nvml(mp)
        # one collection, kept: the fake's per-process samples are only new the first time
        exporter = Exporter(Collector(StaticPodResolver(PODS), Path(proc)), NODE, 3600.0)
        exporter.body()
        server = serve(exporter, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        address = f"127.0.0.1:{server.server_address[1]}"
        body = dcgm_beside_the_agent()
        exporter_dcgm = TextExporter(lambda: body).start()
        dcgm_target = service_monitor("gpu-operator", "nvidia-dcgm-exporter-x7k2p", "dcgm-exporter")
        jobs = [
            ScrapeJob("sloscale-agent", {address: labels}, honor_labels=honor_labels),
            # the dcgm-exporter chart's serviceMonitor.honorLabels
            ScrapeJob("dcgm-exporter", {exporter_dcgm.address: dcgm_target}, honor_labels=False),
        ]
        prometheus = PrometheusServer(
            require_prometheus(),
            tmp_path_factory.mktemp("agent-prom"),
            scrape_interval_s=SCRAPE_S,
            jobs=jobs,
        )
        try:
            prometheus.start()
            prometheus.wait_for("count(up == 1) == 2", timeout_s=20)
            yield prometheus
        finally:
            prometheus.stop()
            exporter_dcgm.stop()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


class ReversedClient(PrometheusClient):
    """Prometheus's answers, series last to first: the order must not matter."""

    def query(
        self, promql: str, time_s: float, *, timeout_s: float | None = None
    ) -> list[PromSample]:
        return super().query(promql, time_s, timeout_s=timeout_s)[::-1]


@pytest.fixture(scope="module", params=["as-returned", "reversed"])
def observed(prom: PrometheusServer, request: pytest.FixtureRequest) -> Observation:
    client = PrometheusClient if request.param == "as-returned" else ReversedClient
    source = PrometheusMetricsSource(
        client(PrometheusConfig(prom.url, timeout_s=5.0)),
        SourceSettings(window_s=WINDOW_S, max_age_s=WINDOW_S, gpu_labels=controller_gpu_labels()),
        pods=lambda: POD_MAP,
    )
    try:
        time.sleep(2 * SCRAPE_S)
        return source.observe(TARGETS, time.time())
    finally:
        source.close()


def test_the_workloads_pods_arrive_as_exported_labels(prom: PrometheusServer) -> None:
    got = prom.query(
        'DCGM_FI_DEV_GPU_UTIL{job="sloscale-agent",exported_pod="web-6d9f8b7c5-abcde"}'
    )
    assert [r["metric"]["exported_namespace"] for r in got] == ["shop"]
    assert [r["metric"]["pod"] for r in got] == ["sloscale-agent-x7k2p"]  # the agent's own
    assert controller_gpu_labels().dcgm == EXPORTED


def test_card_series_name_the_node(prom: PrometheusServer) -> None:
    cards = prom.query('DCGM_FI_DEV_GPU_UTIL{job="sloscale-agent",exported_pod=""}')
    assert {r["metric"]["Hostname"] for r in cards} == {NODE}
    assert {r["metric"]["namespace"] for r in cards} == {"sloscale-agent"}


def test_dcgm_exporter_names_the_same_pods_on_the_same_card(prom: PrometheusServer) -> None:
    got = prom.query('DCGM_FI_DEV_GPU_UTIL{UUID="GPU-gpu0",exported_pod!=""}')
    pods = sorted((r["metric"]["exported_pod"], r["metric"]["job"]) for r in got)
    assert pods == [
        ("search-5c4b3a291-qwert", "dcgm-exporter"),
        ("search-5c4b3a291-qwert", "sloscale-agent"),
        ("web-6d9f8b7c5-abcde", "dcgm-exporter"),
        ("web-6d9f8b7c5-abcde", "sloscale-agent"),
    ]


def test_each_pod_on_the_shared_card_reads_its_own_share(observed: Observation) -> None:
    """The agent's series win over dcgm-exporter's copies of the card (63 %, 30 GiB)."""
    web, search = observed.get("shop/web"), observed.get("shop/search")
    assert web.gpu_util == pytest.approx(0.8)  # 40 % of the card for its 50 %
    assert search.gpu_util == pytest.approx(0.4)  # 20 % for its 50 %: not the card's 63 %
    assert web.gpu_memory_mib == pytest.approx(20 * 1024)
    assert search.gpu_memory_mib == pytest.approx(8 * 1024)
    assert not observed.errors


def test_a_mig_pods_memory_is_read(observed: Observation) -> None:
    chat = observed.get("llm/chat")
    assert chat.gpu_memory_mib == pytest.approx(10 * 1024)
    assert chat.gpu_util is None  # NVML has no per-process utilisation on MIG
