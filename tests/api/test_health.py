"""Probes that see a wedged loop: ``/readyz`` needs a recent tick, ``/healthz`` a live loop."""

from __future__ import annotations

import io
import re
import threading
import time
from dataclasses import dataclass, field

import httpx

from controller.domain import ClusterSnapshot
from sloscale.run import RunOptions, run_cluster
from tests.api.test_api import client_after
from tests.fakes import FakeClock, FakeCluster, slo_annotations


def test_readiness_needs_a_recent_tick_and_liveness_a_ticking_loop() -> None:
    client, ctl = client_after(1)
    clock = ctl.clock
    assert isinstance(clock, FakeClock)
    interval = ctl.config.interval_s
    assert client.get("/readyz").status_code == 200
    assert client.get("/healthz").status_code == 200

    clock.advance(3 * interval + 1)  # no tick for more than three intervals
    stale = client.get("/readyz")
    assert stale.status_code == 503, stale.json()
    assert "ago" in stale.json()["reason"]
    assert client.get("/healthz").status_code == 200  # late, not yet wedged

    clock.advance(300)  # no tick for twenty intervals: the loop is wedged
    wedged = client.get("/healthz")
    assert wedged.status_code == 503, wedged.json()
    assert "wedged" in wedged.json()["reason"]
    assert client.get("/readyz").status_code == 503

    ctl.tick()  # the loop ticks again: both recover
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


@dataclass
class StuckCluster(FakeCluster):
    """A cluster whose ``snapshot()`` hangs while ``stuck`` is set (a call without timeout)."""

    stuck: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def snapshot(self) -> ClusterSnapshot:
        if self.stuck.is_set():
            self.release.wait(30)
        return super().snapshot()


def _poll(url: str, status: int, timeout_s: float) -> httpx.Response | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=1.0)
            if r.status_code == status:
                return r
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    return None


def test_run_reports_a_tick_that_hangs_as_not_live() -> None:
    cluster = StuckCluster(FakeClock(time.time()))
    cluster.add("web", slo_annotations(), replicas=1)
    options = RunOptions(
        prometheus_url="http://127.0.0.1:9",
        cluster="custom",
        interval_s=0.2,
        query_timeout_s=0.2,
        port=0,
        duration_s=2.0,
        wedged_after_s=1.0,
    )
    err = io.StringIO()
    runner = threading.Thread(target=run_cluster, args=(cluster, options, err), daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not (m := re.search(r"API on http://([\d.:]+)", err.getvalue())):
            assert time.monotonic() < deadline, err.getvalue()
            time.sleep(0.02)
        base = f"http://{m.group(1)}"
        assert _poll(f"{base}/readyz", 200, 10) is not None
        cluster.stuck.set()  # the next tick hangs in discovery
        wedged = _poll(f"{base}/healthz", 503, 10)
        assert wedged is not None, "a hung tick never failed /healthz"
        assert "running" in wedged.json()["reason"]
        assert httpx.get(f"{base}/readyz").status_code == 503
    finally:
        cluster.release.set()
        runner.join(15)
    assert not runner.is_alive()
