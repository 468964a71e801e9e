"""``sloscale agent``: the GPU node exporter on ``/metrics``.

Composition: ``nvmlInit`` once, then each scrape collects (``collect.Collector``) and renders
(``exposition.render``), at most once per ``min_interval_s`` (scrapes in between get the
cached body). Without an NVIDIA driver, NVML cannot initialise: the agent says so in one line
and exits 1.

The ``Hostname`` label is ``$NODE_NAME`` when set (deploy/agent sets it to the pod's
``spec.nodeName``), else the host name, as dcgm-exporter writes it
(``internal/pkg/hostname/hostname.go``): a pod's own host name is the pod's name, not the
node's, unless it shares the node's network.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TextIO

from actuators.nvml.cgroup import KubeletPodResolver, PodResolver
from actuators.nvml.collect import Collector, nvml
from actuators.nvml.exposition import render

log = logging.getLogger("sloscale.agent")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class AgentOptions:
    host: str = "0.0.0.0"
    port: int = 9400
    proc_root: Path = Path("/proc")
    kubelet_url: str | None = "https://127.0.0.1:10250/pods"
    min_interval_s: float = 1.0
    once: bool = False  # print one exposition to stdout and exit


def node_hostname(environ: Mapping[str, str] | None = None) -> str:
    """The ``Hostname`` label: ``$NODE_NAME``, else this host's name (dcgm-exporter's rule)."""
    environ = os.environ if environ is None else environ
    return environ.get("NODE_NAME") or socket.gethostname()


class NoDriverError(Exception):
    """NVML did not initialise (no driver, no library, no device access)."""


def init_nvml() -> None:
    """``nvmlInit``; any NVML or loading failure becomes ``NoDriverError`` with its reason."""
    try:
        module = nvml()
    except ImportError as e:
        raise NoDriverError(f"nvidia-ml-py is not installed: {e}") from None
    try:
        module.nvmlInit()
    except module.NVMLError as e:
        raise NoDriverError(str(e) or type(e).__name__) from None
    except OSError as e:
        raise NoDriverError(str(e)) from None


class Exporter:
    """Collects on demand, caching the rendered body for ``min_interval_s``."""

    def __init__(self, collector: Collector, hostname: str, min_interval_s: float = 1.0):
        self.collector = collector
        self.hostname = hostname
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._body = ""
        self._at = -float("inf")

    def body(self) -> str:
        with self._lock:
            now = time.monotonic()
            if now - self._at >= self.min_interval_s:
                self._body = render(self.collector.collect(), self.hostname)
                self._at = now
            return self._body


def serve(exporter: Exporter, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server answering ``/metrics`` (and ``/healthz``); call ``serve_forever``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/healthz":
                payload, ctype, status = b"ok\n", "text/plain", 200
            elif self.path.split("?")[0] == "/metrics":
                try:
                    payload, ctype, status = exporter.body().encode(), CONTENT_TYPE, 200
                except Exception as e:  # a failed read is a 500 for this scrape, not a crash
                    log.exception("collect failed")
                    payload, ctype, status = f"collect failed: {e}\n".encode(), "text/plain", 500
            else:
                payload, ctype, status = b"not found\n", "text/plain", 404
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def run_agent(options: AgentOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        init_nvml()
    except NoDriverError as e:
        print(f"sloscale agent: error: no usable NVIDIA driver (NVML: {e})", file=err)
        return 1
    resolver: PodResolver | None = (
        KubeletPodResolver(options.kubelet_url) if options.kubelet_url else None
    )
    exporter = Exporter(
        Collector(resolver, options.proc_root), node_hostname(), options.min_interval_s
    )
    try:
        if options.once:
            out.write(exporter.body())
            return 0
        server = serve(exporter, options.host, options.port)
        print(
            f"sloscale agent on http://{options.host}:{server.server_address[1]}/metrics", file=err
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0
    finally:
        try:
            nvml().nvmlShutdown()
        except Exception:
            log.debug("nvmlShutdown failed", exc_info=True)
