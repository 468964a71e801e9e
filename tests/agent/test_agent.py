"""``sloscale agent`` against a fake NVML: pynvml's functions monkeypatched, /proc faked.

The node: GPU 0 is a whole card shared by two pods (pids 101 and 202, cgroup v1 and v2);
GPU 1 has MIG on with two instances, a third pod's process (pid 303) on GPU instance 1, and
an empty MIG slot; pid 404 runs outside Kubernetes.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pynvml
import pytest
from prometheus_client.parser import text_string_to_metric_families

from actuators.nvml.agent import AgentOptions, Exporter, node_hostname, run_agent, serve
from actuators.nvml.cgroup import PodIdentity, PodName, StaticPodResolver, parse_cgroup
from actuators.nvml.collect import Collector

GIB = 1024**3
UID_A = "11111111-2222-3333-4444-555555555555"
UID_B = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
UID_C = "99999999-8888-7777-6666-555555555555"
CID = "c" * 64

CGROUPS = {
    # cgroup v1, cgroupfs driver
    101: f"12:memory:/kubepods/burstable/pod{UID_A}/{CID}\n"
    f"11:cpu:/kubepods/burstable/pod{UID_A}/{CID}\n",
    # cgroup v2, systemd driver, containerd
    202: "0::/kubepods.slice/kubepods-burstable.slice/"
    f"kubepods-burstable-pod{UID_B.replace('-', '_')}.slice/cri-containerd-{CID}.scope\n",
    303: f"0::/kubepods.slice/kubepods-pod{UID_C.replace('-', '_')}.slice/crio-{CID}.scope\n",
    404: "0::/user.slice/user-1000.slice/session-1.scope\n",
}
PODS = {
    UID_A: PodName("shop", "web-6d9f8b7c5-abcde", "server"),
    UID_B: PodName("shop", "search-5c4b3a291-qwert", "server"),
    UID_C: PodName("llm", "chat-0", "vllm"),
}


class FakeNVMLError(Exception):
    pass


def install_fake_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two GPUs: a whole shared card and a MIG card; handles are plain strings."""
    ns = SimpleNamespace
    util = {"gpu0": 63}
    memory = {
        "gpu0": ns(used=30 * GIB, total=80 * GIB, free=50 * GIB),
        "gpu1": ns(used=12 * GIB, total=80 * GIB, free=68 * GIB),
        "mig1-1": ns(used=10 * GIB, total=int(19.5e9), free=0),
        "mig1-2": ns(used=2 * GIB, total=int(9.75e9), free=0),
    }
    procs = {
        "gpu0": [
            ns(pid=101, usedGpuMemory=20 * GIB, gpuInstanceId=0xFFFFFFFF),
            ns(pid=202, usedGpuMemory=8 * GIB, gpuInstanceId=0xFFFFFFFF),
            ns(pid=404, usedGpuMemory=2 * GIB, gpuInstanceId=0xFFFFFFFF),
        ],
        "gpu1": [ns(pid=303, usedGpuMemory=10 * GIB, gpuInstanceId=1)],
    }
    samples = {"gpu0": [ns(pid=101, smUtil=40, timeStamp=5), ns(pid=202, smUtil=20, timeStamp=6)]}

    def raise_if(cond: bool) -> None:
        if cond:
            raise FakeNVMLError("Not Supported")

    def process_utilization(h: str, last_seen: int) -> list[object]:
        raise_if(h not in samples)  # NVML: not supported on MIG
        return [s for s in samples[h] if s.timeStamp > last_seen]

    def mig_handle(h: str, i: int) -> str:
        raise_if(h != "gpu1" or i not in (0, 1))  # slots 2.. are empty: NVML_ERROR_NOT_FOUND
        return f"mig1-{i + 1}"

    fns = {
        "NVMLError": FakeNVMLError,
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlDeviceGetCount": lambda: 2,
        "nvmlDeviceGetHandleByIndex": lambda i: f"gpu{i}",
        "nvmlDeviceGetUUID": lambda h: f"GPU-{h}" if h.startswith("gpu") else f"MIG-{h}",
        "nvmlDeviceGetName": lambda h: "NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetUtilizationRates": lambda h: (
            ns(gpu=util[h], memory=10) if h in util else raise_if(True)
        ),
        "nvmlDeviceGetMemoryInfo": lambda h: memory[h],
        "nvmlDeviceGetPowerUsage": lambda h: 312500,
        "nvmlDeviceGetMigMode": lambda h: (1, 1) if h == "gpu1" else raise_if(True),
        "nvmlDeviceGetMaxMigDeviceCount": lambda h: 7,
        "nvmlDeviceGetMigDeviceHandleByIndex": mig_handle,
        "nvmlDeviceGetGpuInstanceId": lambda h: int(h.rsplit("-", 1)[1]),
        "nvmlDeviceGetComputeInstanceId": lambda h: 0,
        "nvmlDeviceGetAttributes": lambda h: ns(gpuInstanceSliceCount=2 if h == "mig1-1" else 1),
        "nvmlDeviceGetComputeRunningProcesses": lambda h: procs[h],
        "nvmlDeviceGetProcessUtilization": process_utilization,
    }
    for name, fn in fns.items():
        monkeypatch.setattr(pynvml, name, fn)


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    for pid, text in CGROUPS.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cgroup").write_text(text)
    return tmp_path


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def pick(text: str, name: str, **labels: str) -> list[float]:
    return [v for n, lab, v in samples(text) if n == name and labels.items() <= lab.items()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(CGROUPS[101], PodIdentity(UID_A, CID), id="v1-cgroupfs"),
        pytest.param(CGROUPS[202], PodIdentity(UID_B, CID), id="v2-systemd-containerd"),
        pytest.param(CGROUPS[303], PodIdentity(UID_C, CID), id="v2-systemd-crio-guaranteed"),
        pytest.param(CGROUPS[404], None, id="not-a-pod"),
    ],
)
def test_cgroup_paths_name_the_pod(text: str, expected: PodIdentity | None) -> None:
    assert parse_cgroup(text) == expected


@pytest.fixture
def exposition(monkeypatch: pytest.MonkeyPatch, proc_root: Path) -> str:
    install_fake_nvml(monkeypatch)
    collector = Collector(StaticPodResolver(PODS), proc_root)
    return Exporter(collector, "node-a", min_interval_s=0).body()


def test_card_level_series_use_dcgm_names(exposition: str) -> None:
    util = [
        v for n, lab, v in samples(exposition) if n == "DCGM_FI_DEV_GPU_UTIL" and "pod" not in lab
    ]
    assert util == [63.0]  # the MIG card has no whole-device utilisation
    assert pick(exposition, "DCGM_FI_DEV_FB_USED", gpu="0", UUID="GPU-gpu0")[0] == 30 * 1024
    assert pick(exposition, "DCGM_FI_DEV_FB_FREE", gpu="0")[0] == 50 * 1024
    assert pick(exposition, "DCGM_FI_DEV_POWER_USAGE", gpu="1")[0] == pytest.approx(312.5)
    assert pick(
        exposition,
        "DCGM_FI_DEV_GPU_UTIL",
        gpu="0",
        Hostname="node-a",
        modelName="NVIDIA H100 80GB HBM3",
    )


def test_shared_card_is_split_per_pod_from_process_accounting(exposition: str) -> None:
    web = {"pod": "web-6d9f8b7c5-abcde", "namespace": "shop", "container": "server"}
    search = {"pod": "search-5c4b3a291-qwert", "namespace": "shop"}
    assert pick(exposition, "DCGM_FI_DEV_GPU_UTIL", gpu="0", **web) == [40.0]
    assert pick(exposition, "DCGM_FI_DEV_GPU_UTIL", gpu="0", **search) == [20.0]
    assert pick(exposition, "DCGM_FI_DEV_FB_USED", gpu="0", **web) == [20 * 1024]
    assert pick(exposition, "DCGM_FI_DEV_FB_USED", gpu="0", **search) == [8 * 1024]
    # pid 404 is no pod's: counted on the card, never attributed to a pod
    bare = pick(exposition, "sloscale_agent_process_gpu_memory_bytes", pid="404")
    assert bare == [2 * GIB]
    assert not [
        lab for n, lab, _ in samples(exposition) if lab.get("pid") == "404" and "pod" in lab
    ]


def test_mig_devices_and_their_pods(exposition: str) -> None:
    mig = pick(exposition, "DCGM_FI_DEV_FB_USED", gpu="1", GPU_I_ID="1")
    # the instance itself (10 GiB used) and the chat pod on it (10 GiB)
    assert sorted(mig) == [10 * 1024, 10 * 1024]
    profiles = {lab["GPU_I_PROFILE"] for n, lab, _ in samples(exposition) if "GPU_I_PROFILE" in lab}
    assert profiles == {"2g.20gb", "1g.10gb"}
    chat = pick(exposition, "DCGM_FI_DEV_FB_USED", pod="chat-0", namespace="llm", GPU_I_ID="1")
    assert chat == [10 * 1024]
    # no per-process utilisation on MIG: unavailable, not 0
    assert pick(exposition, "DCGM_FI_DEV_GPU_UTIL", pod="chat-0") == []


def test_prometheus_source_queries_select_the_agent_pod_series(exposition: str) -> None:
    """The source reads ``DCGM_FI_DEV_GPU_UTIL{pod!=""}`` grouped by namespace and pod."""
    pod_series = [
        (lab["namespace"], lab["pod"])
        for n, lab, _ in samples(exposition)
        if n == "DCGM_FI_DEV_GPU_UTIL" and lab.get("pod")
    ]
    assert sorted(pod_series) == [
        ("shop", "search-5c4b3a291-qwert"),
        ("shop", "web-6d9f8b7c5-abcde"),
    ]


def test_agent_serves_metrics_over_http(monkeypatch: pytest.MonkeyPatch, proc_root: Path) -> None:
    import threading

    install_fake_nvml(monkeypatch)
    exporter = Exporter(Collector(StaticPodResolver(PODS), proc_root), "node-a", 0)
    server = serve(exporter, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read().decode()
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert pick(body, "DCGM_FI_DEV_GPU_UTIL", pod="web-6d9f8b7c5-abcde") == [40.0]


def test_once_prints_the_exposition(
    monkeypatch: pytest.MonkeyPatch, proc_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install_fake_nvml(monkeypatch)
    assert run_agent(AgentOptions(once=True, proc_root=proc_root, kubelet_url=None)) == 0
    out = capsys.readouterr().out
    assert pick(out, "DCGM_FI_DEV_GPU_UTIL", gpu="0") == [63.0]  # no resolver: no pod series


def test_hostname_is_the_node_name_when_given(
    monkeypatch: pytest.MonkeyPatch, proc_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As dcgm-exporter: ``$NODE_NAME`` (deploy/agent sets it from ``spec.nodeName``), else
    the host name, which in a pod on the pod network is the pod's name."""
    import socket

    assert node_hostname({"NODE_NAME": "gpu-node-7"}) == "gpu-node-7"
    assert node_hostname({}) == socket.gethostname()
    assert node_hostname({"NODE_NAME": ""}) == socket.gethostname()

    install_fake_nvml(monkeypatch)
    monkeypatch.setenv("NODE_NAME", "gpu-node-7")
    assert run_agent(AgentOptions(once=True, proc_root=proc_root, kubelet_url=None)) == 0
    hosts = {lab["Hostname"] for _, lab, _ in samples(capsys.readouterr().out)}
    assert hosts == {"gpu-node-7"}


def test_no_driver_is_one_line_and_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_library() -> None:
        raise pynvml.NVMLError_LibraryNotFound(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_library)
    assert run_agent(AgentOptions(once=True)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sloscale agent: error: no usable NVIDIA driver")
