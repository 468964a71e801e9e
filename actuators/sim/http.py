"""Serve the simulated workloads' metrics over HTTP, for a real Prometheus to scrape.

Why it exists: ``sloscale run --prometheus-url URL --cluster sim`` runs the real loop reading a
real Prometheus while the workloads are simulated. The simulator's exporters are published
here in the ``http`` profile (``render_openmetrics``: ``http_server_request_duration_seconds``
with ``namespace``/``deployment`` labels; an LLM's TTFT or TPOT histogram under vLLM's name)
plus dcgm-exporter-named per-pod GPU gauges
(``DCGM_FI_DEV_GPU_UTIL`` in % of a card, ``DCGM_FI_DEV_FB_USED`` in MiB, labelled
``namespace``/``pod``), so the Prometheus source reads them exactly as on a real cluster.

Thread-safety: the simulation thread calls ``publish(cluster)`` after advancing; the HTTP
thread only serves the last published text.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from actuators.sim.cluster import SimulatedCluster
from actuators.sim.exporter import Scrape, render_openmetrics

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def render_with_gpu(scrape: Scrape, previous: Scrape | None, pods: dict[str, list[str]]) -> str:
    """The scrape in OpenMetrics plus per-pod DCGM gauges; ``pods``: workload -> pod names.

    Purely computational. A workload's utilisation is its used card-seconds over the interval
    since ``previous``, split evenly over its pods (the simulator does not track pods apart).
    """
    text = render_openmetrics(scrape).removesuffix("# EOF\n")
    util = ["# TYPE DCGM_FI_DEV_GPU_UTIL gauge"]
    memory = ["# TYPE DCGM_FI_DEV_FB_USED gauge"]
    dt = scrape.time_s - previous.time_s if previous is not None else 0.0
    for key, series in sorted(scrape.series.items()):
        names = pods.get(key, [])
        before = previous.series.get(key) if previous is not None else None
        if names and before is not None and dt > 0:
            used = (series.gpu_used_share_s - before.gpu_used_share_s) / dt
            for pod in names:
                labels = f'{{namespace="{series.namespace}",pod="{pod}"}}'
                util.append(f"DCGM_FI_DEV_GPU_UTIL{labels} {100.0 * used / len(names):.6g}")
        for pod, mib in sorted(series.gpu_memory_mib_by_pod.items()):
            labels = f'{{namespace="{series.namespace}",pod="{pod}"}}'
            memory.append(f"DCGM_FI_DEV_FB_USED{labels} {mib:.6g}")
    return text + "\n".join(util + memory) + "\n# EOF\n"


class SimMetricsServer:
    """``/metrics`` of every simulated workload on ``host:port`` (0 = any free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._body = b"# EOF\n"
        self._previous: Scrape | None = None
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                with owner._lock:
                    body = owner._body
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def publish(self, cluster: SimulatedCluster) -> None:
        """Render the cluster's exporters now; call from the thread that advances it."""
        scrape = cluster.scrape()
        pods: dict[str, list[str]] = {}
        for a in cluster.snapshot().inventory.allocations:
            if a.ready:
                pods.setdefault(a.owner, []).append(a.pod)
        body = render_with_gpu(scrape, self._previous, pods).encode()
        self._previous = scrape
        with self._lock:
            self._body = body
