"""A real Prometheus server for tests: temp config, temp TSDB, 127.0.0.1, a free port.

Usage::

    binaries = require_prometheus()          # installs Debian's package or skips, once
    with PrometheusServer(binaries, tmp_path, targets=["127.0.0.1:9100"]) as prom:
        prom.wait_for("up == 1")
        ...                                   # query prom.url

``backfill_openmetrics`` writes history with ``promtool tsdb create-blocks-from openmetrics``
into a TSDB directory *before* the server starts on it (Prometheus loads blocks at start-up).
Everything is stopped reliably: ``stop()`` terminates, then kills, and closes the log file.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "install-prometheus"
_install_attempted = False


@dataclass(frozen=True, slots=True)
class PrometheusBinaries:
    prometheus: str
    promtool: str


def find_prometheus() -> PrometheusBinaries | None:
    """The ``prometheus`` and ``promtool`` on ``PATH`` (or ``/usr/bin``), if both exist."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/bin"
    prometheus = shutil.which("prometheus", path=path)
    promtool = shutil.which("promtool", path=path)
    if prometheus and promtool:
        return PrometheusBinaries(prometheus, promtool)
    return None


def require_prometheus() -> PrometheusBinaries:
    """Both binaries, installing them once with ``scripts/install-prometheus`` if missing.

    Skips the calling test, with the installer's reason, only when installing fails.
    """
    global _install_attempted
    found = find_prometheus()
    if found is not None:
        return found
    reason = "prometheus/promtool not installed"
    if not _install_attempted and INSTALL_SCRIPT.exists():
        _install_attempted = True
        proc = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
        )
        found = find_prometheus()
        if found is not None:
            return found
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        reason = f"{reason} and scripts/install-prometheus failed: {lines[-1] if lines else '?'}"
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


@dataclass(frozen=True, slots=True)
class ScrapeJob:
    """One scrape job: its targets, each with the target labels service discovery would give
    it (a ServiceMonitor's ``namespace``, ``pod``, ``service``, ...), and ``honor_labels``."""

    name: str
    targets: Mapping[str, Mapping[str, str]]  # host:port -> target labels
    honor_labels: bool = True


def render_config(
    targets: Sequence[str],
    scrape_interval_s: float,
    *,
    job: str = "test",
    honor_labels: bool = True,
    jobs: Sequence[ScrapeJob] = (),
) -> str:
    """A minimal ``prometheus.yml`` scraping ``targets`` (host:port) at ``/metrics``, and each
    of ``jobs`` with its own settings."""
    lines = [
        "global:",
        f"  scrape_interval: {_duration(scrape_interval_s)}",
        f"  scrape_timeout: {_duration(scrape_interval_s * 0.8)}",
        f"  evaluation_interval: {_duration(max(1.0, scrape_interval_s))}",
        "scrape_configs:",
    ]
    all_jobs = [*jobs]
    if targets or not jobs:
        all_jobs.insert(0, ScrapeJob(job, {t: {} for t in targets}, honor_labels))
    for j in all_jobs:
        lines += [
            f"  - job_name: {j.name}",
            f"    honor_labels: {'true' if j.honor_labels else 'false'}",
            "    metrics_path: /metrics",
            "    static_configs:",
        ]
        if not j.targets:
            lines.append("      - targets: []")
        for address, labels in j.targets.items():
            lines.append(f"      - targets: [{address!r}]")
            if labels:
                lines.append("        labels:")
                lines += [f"          {k}: {v!r}" for k, v in labels.items()]
    return "\n".join(lines) + "\n"


class PrometheusServer:
    """One ``prometheus`` process on 127.0.0.1 with its own config and TSDB under ``workdir``."""

    def __init__(
        self,
        binaries: PrometheusBinaries,
        workdir: Path,
        *,
        targets: Sequence[str] = (),
        scrape_interval_s: float = 0.5,
        tsdb_dir: Path | None = None,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        jobs: Sequence[ScrapeJob] = (),
    ) -> None:
        self.binaries = binaries
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.targets = list(targets)
        self.scrape_interval_s = scrape_interval_s
        self.tsdb_dir = tsdb_dir or workdir / "tsdb"
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.jobs = list(jobs)
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- lifecycle ---------------------------------------------------------------------------

    def config_text(self) -> str:
        """The ``prometheus.yml`` written at start; a subclass may scrape differently."""
        return render_config(self.targets, self.scrape_interval_s, jobs=self.jobs)

    def start(self, timeout_s: float = 30.0) -> Self:
        self.config_path.write_text(self.config_text())
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                self.binaries.prometheus,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.tsdb_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=30d",
                "--log.level=warn",
                *self.extra_args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"prometheus exited at start-up:\n{self.log_tail()}")
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"prometheus not ready in {timeout_s} s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def set_targets(self, targets: Sequence[str]) -> None:
        """Rewrite the scrape targets and reload the configuration."""
        self.targets = list(targets)
        self.config_path.write_text(
            render_config(self.targets, self.scrape_interval_s, jobs=self.jobs)
        )
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    # ---- queries for tests -------------------------------------------------------------------

    def query(self, promql: str, time_s: float | None = None) -> list[dict[str, Any]]:
        """An instant query straight to the API (not through the code under test)."""
        params = {"query": promql}
        if time_s is not None:
            params["time"] = f"{time_s:.3f}"
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout_s: float = 15.0,
    ) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``predicate(result)`` holds; fail the test on timeout."""
        deadline = time.monotonic() + timeout_s
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                result = self.query(promql)
            except (urllib.error.URLError, OSError):
                result = []
            if predicate(result):
                return result
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {promql!r}; last result {result!r}")

    def self_metric(self, name: str, **labels: str) -> float:
        """A sample of Prometheus' own ``/metrics`` (summed over matching series)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False


def backfill_openmetrics(
    binaries: PrometheusBinaries, openmetrics: str, tsdb_dir: Path, workdir: Path
) -> None:
    """Write ``openmetrics`` (must end with ``# EOF``) as TSDB blocks into ``tsdb_dir``.

    Runs ``promtool tsdb create-blocks-from openmetrics``; start the server on ``tsdb_dir``
    afterwards. Samples need explicit timestamps (seconds) in the past.
    """
    tsdb_dir.mkdir(parents=True, exist_ok=True)
    source = workdir / "backfill.om"
    source.write_text(openmetrics if openmetrics.endswith("\n") else openmetrics + "\n")
    proc = subprocess.run(
        [
            binaries.promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(source),
            str(tsdb_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {proc.stderr.strip() or proc.stdout}")
