"""A real Prometheus for one load test: temp config and TSDB, 127.0.0.1, a free port.

It scrapes the emulator's ``/metrics`` every ``scrape_interval_s`` with ``honor_labels`` (the
emulator's ``namespace``/``deployment``/``pod`` labels are the ones a Kubernetes scrape config
would attach). Started and stopped through ``loadtests.processes``.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from loadtests.processes import Child, Processes


class PrometheusMissingError(RuntimeError):
    """No ``prometheus`` binary: install it (``bash scripts/install-prometheus``)."""


def find_prometheus() -> str:
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/bin"
    found = shutil.which("prometheus", path=path)
    if found is None:
        raise PrometheusMissingError(
            "prometheus is not installed: run `bash scripts/install-prometheus` first"
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def render_config(target: str, scrape_interval_s: float) -> str:
    return "\n".join(
        [
            "global:",
            f"  scrape_interval: {_ms(scrape_interval_s)}",
            f"  scrape_timeout: {_ms(scrape_interval_s * 0.8)}",
            f"  evaluation_interval: {_ms(max(1.0, scrape_interval_s))}",
            "scrape_configs:",
            "  - job_name: inference",
            "    honor_labels: true",
            "    metrics_path: /metrics",
            "    static_configs:",
            f"      - targets: ['{target}']",
            "",
        ]
    )


def start_prometheus(
    processes: Processes, workdir: Path, target: str, scrape_interval_s: float, timeout_s: float
) -> tuple[Child, str]:
    """Start Prometheus scraping ``target``; return it and its URL once ready."""
    binary = find_prometheus()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(render_config(target, scrape_interval_s))
    port = free_port()
    child = processes.start(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        workdir / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(child, f"{url}/-/ready", timeout_s)
    return child, url


def wait_http(child: Child, url: str, timeout_s: float) -> None:
    """Poll ``url`` until it answers 200; raise with the child's log if it dies or hangs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.running():
            raise RuntimeError(f"{child.name} exited at start-up:\n{child.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{child.name} not ready in {timeout_s:g} s:\n{child.log_tail()}")
