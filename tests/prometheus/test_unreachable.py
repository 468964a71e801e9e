"""``sloscale run`` with Prometheus unreachable: one line naming the URL, not a flood.

Before: 21 warm-start warnings (one per ``query_range`` chunk) and 9 warnings a tick (one per
query), none naming the URL.
"""

from __future__ import annotations

import logging

import pytest

from actuators.prometheus import PrometheusClient, PrometheusConfig, QueryError
from sloscale.run import RunOptions, run
from tests.support.prometheus import free_port


def test_run_says_once_which_url_it_cannot_reach(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    options = RunOptions(
        prometheus_url=url,
        interval_s=0.5,
        query_timeout_s=1.0,
        serve=False,
        sim_step_s=0.1,
        duration_s=3.0,  # five or six ticks
        critical_namespaces=frozenset({"demo"}),
    )
    with caplog.at_level(logging.WARNING, logger="sloscale"):
        assert run(options) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    warm = [w for w in warnings if w.startswith("warm start")]
    assert len(warm) == 1, warnings
    assert f"cannot connect to Prometheus at {url}" in warm[0]
    ticks = [w for w in warnings if not w.startswith("warm start")]
    # the first tick says it, the next ones within the backoff (1 min) do not repeat it
    assert len(ticks) == 1, warnings
    assert f"cannot connect to Prometheus at {url}" in ticks[0]
    assert "9 queries failed" in ticks[0]


def test_the_url_in_messages_carries_no_password() -> None:
    port = free_port()
    client = PrometheusClient(PrometheusConfig(f"http://ops:s3cret@127.0.0.1:{port}/prom"))
    try:
        with pytest.raises(QueryError) as e:
            client.query("up", 0.0)
    finally:
        client.close()
    assert e.value.unreachable
    assert str(e.value) == f"cannot connect to Prometheus at http://127.0.0.1:{port}/prom"
