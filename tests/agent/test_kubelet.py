"""``KubeletPodResolver`` against a fake kubelet: an in-test HTTP server that counts requests.

The node is tests/agent/test_agent.py's (three GPU processes in three pods, one outside
Kubernetes). A kubelet that refuses the pod list (403: an older kubelet that authorises
``/pods`` as ``nodes/proxy`` only) or does not list a pod must cost one request per refresh
interval, not one per GPU process per scrape; the card-level series are served meanwhile and
the refusal is logged once, with what to grant.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from actuators.nvml.agent import Exporter
from actuators.nvml.cgroup import REFRESH_INTERVAL_S, KubeletPodResolver, PodName
from actuators.nvml.collect import Collector
from tests.agent.test_agent import CGROUPS, CID, PODS, install_fake_nvml, pick

TOKEN = "service-account-token"


@dataclass
class FakeKubelet:
    """``GET /pods``: ``status`` (200 with ``pods`` as a PodList, or the error code)."""

    status: int = 200
    pods: dict[str, PodName] = field(default_factory=dict)
    requests: list[str | None] = field(default_factory=list)  # each request's Authorization

    def body(self) -> bytes:
        items = [
            {
                "metadata": {"uid": uid, "namespace": p.namespace, "name": p.name},
                "status": {
                    "containerStatuses": [{"name": p.container, "containerID": f"cri-o://{CID}"}]
                },
            }
            for uid, p in self.pods.items()
        ]
        return json.dumps({"kind": "PodList", "apiVersion": "v1", "items": items}).encode()


@pytest.fixture
def kubelet() -> Iterator[tuple[FakeKubelet, str]]:
    fake = FakeKubelet()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append(self.headers.get("Authorization"))
            if fake.status == 200:
                payload, ctype = fake.body(), "application/json"
            else:
                payload, ctype = b"Forbidden (user=system:serviceaccount:...)\n", "text/plain"
            self.send_response(fake.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/pods"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    """The fake NVML, the node's /proc, and a ServiceAccount token file."""
    install_fake_nvml(monkeypatch)
    proc = tmp_path / "proc"
    for pid, text in CGROUPS.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cgroup").write_text(text)
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    return proc, token


def exporter(
    url: str, node: tuple[Path, Path], clock: Clock
) -> tuple[Exporter, KubeletPodResolver]:
    proc, token = node
    resolver = KubeletPodResolver(url, token_file=token, clock=clock)
    return Exporter(Collector(resolver, proc), "node-a", min_interval_s=0), resolver


WEB = {"pod": "web-6d9f8b7c5-abcde", "namespace": "shop"}


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        pytest.param(403, "nodes/pods", id="403-older-kubelet"),
        pytest.param(401, "token", id="401-token-refused"),
    ],
)
def test_a_refusing_kubelet_is_asked_once_per_interval_and_logged_once(
    kubelet: tuple[FakeKubelet, str],
    node: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
    status: int,
    hint: str,
) -> None:
    fake, url = kubelet
    fake.status = status
    clock = Clock()
    agent, resolver = exporter(url, node, clock)
    caplog.set_level(logging.DEBUG, logger="sloscale.agent")
    assert resolver.min_refresh_interval_s == REFRESH_INTERVAL_S == 30.0

    for _ in range(5):  # three unknown pod UIDs per scrape
        body = agent.body()
        assert pick(body, "DCGM_FI_DEV_GPU_UTIL", gpu="0") == [63.0]  # the card's, served
        assert pick(body, "DCGM_FI_DEV_GPU_UTIL", **WEB) == []  # no pod named
        # the processes keep their pod UID
        assert len(pick(body, "sloscale_agent_process_gpu_memory_bytes", pid="101")) == 1
        clock.now_s += 5.0
    assert len(fake.requests) == 1
    assert fake.requests == [f"Bearer {TOKEN}"]

    clock.now_s += REFRESH_INTERVAL_S  # an interval later: asked once more
    agent.body()
    agent.body()
    assert len(fake.requests) == 2

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"HTTP {status}" in warnings[0]
    assert hint in warnings[0]
    if status == 403:
        assert "deploy/agent" in warnings[0]


def test_once_granted_the_pods_are_named_at_the_next_refresh(
    kubelet: tuple[FakeKubelet, str],
    node: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, url = kubelet
    fake.status = 403
    clock = Clock()
    agent, resolver = exporter(url, node, clock)
    caplog.set_level(logging.WARNING, logger="sloscale.agent")
    agent.body()
    fake.status, fake.pods = 200, dict(PODS)  # the ClusterRole is bound
    assert pick(agent.body(), "DCGM_FI_DEV_FB_USED", **WEB) == []  # not asked again yet
    clock.now_s += REFRESH_INTERVAL_S
    assert pick(agent.body(), "DCGM_FI_DEV_FB_USED", **WEB) == [20 * 1024]
    assert len(fake.requests) == 2
    # refused again after a success: said again
    fake.status = 403
    resolver.refresh()
    assert len([r for r in caplog.records if "HTTP 403" in r.getMessage()]) == 2


def test_uids_the_kubelet_does_not_list_cost_one_request_per_interval(
    kubelet: tuple[FakeKubelet, str], node: tuple[Path, Path]
) -> None:
    """The kubelet lists only the web pod (the others: gone, or not its pods): the web pod is
    named, the other two processes are not, and they do not send the agent back to the
    kubelet on every scrape."""
    fake, url = kubelet
    uid_web = next(uid for uid, p in PODS.items() if p.name == WEB["pod"])
    fake.pods = {uid_web: PODS[uid_web]}
    clock = Clock()
    agent, _ = exporter(url, node, clock)
    for _ in range(4):
        body = agent.body()
        assert pick(body, "DCGM_FI_DEV_FB_USED", container="server", **WEB) == [20 * 1024]
        assert pick(body, "DCGM_FI_DEV_FB_USED", pod="search-5c4b3a291-qwert") == []
    assert len(fake.requests) == 1
    fake.pods = dict(PODS)  # a pod the kubelet now lists is named after the interval
    clock.now_s += REFRESH_INTERVAL_S
    body = agent.body()
    assert len(fake.requests) == 2
    assert pick(body, "DCGM_FI_DEV_FB_USED", pod="search-5c4b3a291-qwert") == [8 * 1024]
    agent.body()
    assert len(fake.requests) == 2  # every UID known: no request
