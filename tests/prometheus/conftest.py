"""Fixtures: a real Prometheus scraping a synthetic exporter every 0.5 s, and specs to read it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from actuators.prometheus import PrometheusClient, PrometheusConfig
from controller.domain import MetricsProfile, SloSpec, WorkloadRef
from controller.ports import ObserveTarget
from tests.prometheus.synthetic import Synthetic
from tests.support.exporters import TextExporter
from tests.support.prometheus import PrometheusServer, require_prometheus

SCRAPE_S = 0.5
WINDOW_S = 3.0
"""Rate window of the source under test: six scrapes."""


def target(
    key: str,
    profile: MetricsProfile = MetricsProfile.HTTP,
    *,
    target_ms: float = 250.0,
    quantile: float = 0.99,
    **queries: str,
) -> ObserveTarget:
    namespace, name = key.split("/")
    spec = SloSpec(
        latency_target_ms=target_ms,
        latency_quantile=quantile,
        metrics_profile=profile,
        **queries,  # type: ignore[arg-type]
    )
    return ObserveTarget(WorkloadRef(namespace, name), spec)


@dataclass
class Stack:
    synthetic: Synthetic
    exporter: TextExporter
    prom: PrometheusServer

    def client(self, url: str | None = None, timeout_s: float = 5.0) -> PrometheusClient:
        return PrometheusClient(PrometheusConfig(url or self.prom.url, timeout_s=timeout_s))


@pytest.fixture(scope="module")
def stack_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[Stack]]:
    """Stacks started by ``start_stack`` in this module; all stopped at its end."""
    stacks: list[Stack] = []
    yield stacks
    for s in stacks:
        s.prom.stop()
        s.exporter.stop()


def start_stack(stacks: list[Stack], workdir: Path, synthetic: Synthetic) -> Stack:
    binaries = require_prometheus()
    exporter = TextExporter(synthetic.render).start()
    prom = PrometheusServer(
        binaries, workdir, targets=[exporter.address], scrape_interval_s=SCRAPE_S
    )
    try:
        prom.start()
    except Exception:
        exporter.stop()
        raise
    stack = Stack(synthetic, exporter, prom)
    stacks.append(stack)
    prom.wait_for("up == 1")
    return stack
