"""Small HTTP servers for tests: a ``/metrics`` exporter and a query-delaying proxy.

``TextExporter`` serves whatever its ``render`` callable returns (Prometheus text format
0.0.4), and can be made to fail (HTTP 500) to simulate a target going down.
``DelayProxy`` sits between a client and a real Prometheus and delays the queries whose
PromQL contains a given substring: a faithful "one slow query" for fault tests.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up (its timeout) is expected in fault tests


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread, stopped by ``stop()``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _ExporterHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        owner: TextExporter = self.server.owner  # type: ignore[attr-defined]
        if owner.failing:
            self.send_error(500, "exporter down")
            return
        body = owner.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", TEXT_FORMAT)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class TextExporter(_Server):
    """Serves ``render()`` on every path; ``failing = True`` answers 500 (target down)."""

    def __init__(self, render: Callable[[], str]) -> None:
        super().__init__(_ExporterHandler)
        self.render = render
        self.failing = False


class _ProxyHandler(BaseHTTPRequestHandler):
    def _forward(self, body: bytes | None) -> None:
        owner: DelayProxy = self.server.owner  # type: ignore[attr-defined]
        query = urllib.parse.urlsplit(self.path).query
        form = urllib.parse.parse_qs(query) | urllib.parse.parse_qs((body or b"").decode())
        promql = " ".join(form.get("query", []))
        owner.seen.append(promql)
        if owner.slow_match and owner.slow_match in promql:
            time.sleep(owner.delay_s)
        req = urllib.request.Request(
            owner.upstream + self.path,
            data=body,
            method=self.command,
            headers={
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("host", "accept-encoding", "connection")
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, payload, ctype = resp.status, resp.read(), resp.headers["Content-Type"]
        except urllib.error.HTTPError as e:
            status, payload, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        except (urllib.error.URLError, OSError):
            self.send_error(502, "upstream unreachable")
            return
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype or "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): that is the point of the delay

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self._forward(self.rfile.read(length))

    def log_message(self, format: str, *args: object) -> None:
        pass


class DelayProxy(_Server):
    """Forwards to ``upstream``; queries containing ``slow_match`` wait ``delay_s`` first."""

    def __init__(self, upstream: str) -> None:
        super().__init__(_ProxyHandler)
        self.upstream = upstream.rstrip("/")
        self.slow_match: str | None = None
        self.delay_s = 0.0
        self.seen: list[str] = []

    @property
    def url(self) -> str:
        return f"http://{self.address}"
