"""A thin, typed client of the Prometheus HTTP API on top of ``prometheus-api-client``.

Why it exists: the metrics source needs exactly two calls (an instant ``/api/v1/query`` and a
``/api/v1/query_range``), each with its own timeout, the operator's auth settings and a count
of queries sent, and it needs their results as plain floats with the API's ``"NaN"`` and
``"+Inf"`` strings parsed, never guessed. ``prometheus-api-client`` does the HTTP; this module
turns its JSON (``{"metric": {...}, "value": [ts, "1.5"]}``, see
https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries) into
``PromSample``/``PromSeries`` values and every failure into one ``QueryError``.

Auth and TLS (``PrometheusConfig``): a bearer token (inline or read from a file at every
request, so a rotated service-account token is picked up), basic auth, a custom CA bundle or
``insecure_skip_verify``. Retries are off: the next tick is the retry.
"""

from __future__ import annotations

import ast
import json
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry


class QueryError(Exception):
    """A query that did not return a result: connection refused, timeout, HTTP or PromQL error.

    ``unreachable`` is true when no connection could be made: every other query would fail the
    same way, so callers that send many (the warm start's chunks) stop at the first.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True, slots=True)
class PrometheusConfig:
    """How to reach Prometheus. ``timeout_s`` bounds each query, server side and client side."""

    url: str
    timeout_s: float = 5.0
    bearer_token: str | None = None
    bearer_token_file: Path | None = None
    basic_auth: tuple[str, str] | None = None
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    method: str = "POST"  # POST keeps long batched selectors out of the URL
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus URL must start with http:// or https://: {self.url!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        if self.bearer_token and self.bearer_token_file:
            raise ValueError("give a bearer token or a token file, not both")
        if self.method not in ("GET", "POST"):
            raise ValueError(f"method must be GET or POST, got {self.method!r}")


@dataclass(frozen=True, slots=True)
class PromSample:
    """One series of an instant vector: its labels and its value (NaN stays NaN)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class PromSeries:
    """One series of a range result: sample times (unix seconds) and values, oldest first."""

    labels: Mapping[str, str]
    times_s: tuple[float, ...]
    values: tuple[float, ...]


def parse_value(text: object) -> float:
    """A sample value as the API writes it (``"1.5"``, ``"NaN"``, ``"+Inf"``); junk is NaN."""
    try:
        return float(str(text))
    except ValueError:
        return math.nan


def parse_vector(result: Sequence[Mapping[str, Any]]) -> list[PromSample]:
    """``data.result`` of an instant query (vector or scalar-less) into samples."""
    out = []
    for item in result:
        value = item.get("value")
        if not isinstance(value, list | tuple) or len(value) != 2:
            continue
        labels = {str(k): str(v) for k, v in dict(item.get("metric", {})).items()}
        out.append(PromSample(labels, parse_value(value[1])))
    return out


def parse_matrix(result: Sequence[Mapping[str, Any]]) -> list[PromSeries]:
    """``data.result`` of a range query into series."""
    out = []
    for item in result:
        points = item.get("values") or []
        labels = {str(k): str(v) for k, v in dict(item.get("metric", {})).items()}
        times = tuple(float(p[0]) for p in points)
        values = tuple(parse_value(p[1]) for p in points)
        out.append(PromSeries(labels, times, values))
    return out


class PrometheusClient:
    """Instant and range queries with a per-query timeout; thread-safe; counts what it sends."""

    def __init__(self, config: PrometheusConfig) -> None:
        self.config = config
        session = requests.Session()
        if config.insecure_skip_verify:
            session.verify = False
        elif config.ca_file is not None:
            session.verify = str(config.ca_file)
        self._prom = PrometheusConnect(
            url=config.url.rstrip("/"),
            headers=None,
            retry=Retry(total=0, connect=0, read=0, redirect=0, status=0),
            auth=config.basic_auth,
            session=session,
            method=config.method,
        )
        self._lock = threading.Lock()
        self.queries_total = 0
        self.range_queries_total = 0
        self.failures_total = 0

    def close(self) -> None:
        self._prom.close()

    # ---- queries -----------------------------------------------------------------------------

    def query(
        self, promql: str, time_s: float, *, timeout_s: float | None = None
    ) -> list[PromSample]:
        """``/api/v1/query`` at ``time_s``; raises ``QueryError`` on any failure."""
        timeout = timeout_s or self.config.timeout_s
        with self._lock:
            self.queries_total += 1
        try:
            self._set_headers()
            result = self._prom.custom_query(
                promql,
                params={"time": f"{time_s:.3f}", "timeout": _duration(timeout)},
                timeout=timeout,
            )
        except Exception as e:
            self._failed()
            raise self._error(e) from None
        return parse_vector(result or [])

    def query_range(
        self,
        promql: str,
        start_s: float,
        end_s: float,
        step_s: float,
        *,
        timeout_s: float | None = None,
    ) -> list[PromSeries]:
        """``/api/v1/query_range`` (start and end are whole seconds, as the library sends them)."""
        timeout = timeout_s or self.config.timeout_s
        with self._lock:
            self.range_queries_total += 1
        try:
            self._set_headers()
            result = self._prom.custom_query_range(
                promql,
                start_time=datetime.fromtimestamp(start_s, tz=UTC),
                end_time=datetime.fromtimestamp(end_s, tz=UTC),
                step=f"{step_s:g}",
                params={"timeout": _duration(timeout)},
                timeout=timeout,
            )
        except Exception as e:
            self._failed()
            raise self._error(e) from None
        return parse_matrix(result or [])

    # ---- helpers -----------------------------------------------------------------------------

    def _set_headers(self) -> None:
        headers = dict(self.config.extra_headers)
        token = self.config.bearer_token
        if self.config.bearer_token_file is not None:
            token = self.config.bearer_token_file.read_text().strip()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._prom.headers = headers or None

    def _failed(self) -> None:
        with self._lock:
            self.failures_total += 1

    def _error(self, e: Exception) -> QueryError:
        if isinstance(e, requests.ConnectionError):  # refused, no route, DNS, connect timeout
            return QueryError(f"cannot connect to Prometheus at {self.where}", unreachable=True)
        return QueryError(_describe(e))

    @property
    def where(self) -> str:
        """The configured URL without any user or password in it, for messages."""
        return redact_url(self.config.url)


def redact_url(url: str) -> str:
    """``url`` without its userinfo (``http://user:pass@host`` -> ``http://host``)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _duration(seconds: float) -> str:
    """A Prometheus duration in whole milliseconds (the API rejects ``5.0s``)."""
    return f"{max(1, round(seconds * 1000))}ms"


def _describe(e: Exception) -> str:
    """One line for the operator, without the library's multi-line reprs."""
    if isinstance(e, requests.Timeout):
        return "timed out"
    if isinstance(e, requests.ConnectionError):
        return "cannot connect to Prometheus"
    text = str(e) or type(e).__name__
    match = re.match(r"HTTP Status Code (\d+) \((b'.*'|b\".*\")\)$", text, re.DOTALL)
    if match:
        try:
            body = json.loads(ast.literal_eval(match.group(2)))
            return f"HTTP {match.group(1)}: {body.get('error', body)}"[:300]
        except (ValueError, SyntaxError, AttributeError):
            return f"HTTP {match.group(1)}"
    return text.replace("\\n", " ").splitlines()[0][:300]
