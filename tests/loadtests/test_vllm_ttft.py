"""A vLLM workload with a TTFT SLO, sized by its time to first token in the closed loop (#28 E9).

The emulator serves an LLM that batches continuously (the simulator's model,
``actuators.sim.batching``) and writes vLLM's histograms; the controller reads
``vllm:time_to_first_token_seconds`` from a real Prometheus and holds a 500 ms p95 on it
through a x4 step, while whole answers take longer than that (the e2e p95 is over the target
at any size: an e2e SLO with this target could not be met). It sizes the step near what it
needs: a batching card's knee, learnt from rate and TTFT, not its card-seconds per request.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np

from actuators.sim.tokens import AZURE_CODE_TRACE
from controller.capacity import max_rate_per_replica
from loadtests.harness import run_loadtest
from loadtests.settings import vllm_ttft_settings
from loadtests.shapes import step_shape
from tests.loadtests.test_loadtest_run import assert_all_stopped
from tests.support.prometheus import require_prometheus

TRACES = Path(os.environ.get("SLOSCALE_TRACES_DIR", "../shared/traces"))


def test_a_ttft_slo_is_held_on_time_to_first_token(tmp_path: Path) -> None:
    require_prometheus()
    settings = vllm_ttft_settings(TRACES / AZURE_CODE_TRACE)
    shape = step_shape(80.0)
    result = run_loadtest(shape, settings, tmp_path, err=sys.stderr)
    assert_all_stopped(result)
    checks = {c.name: c for c in result.checks}
    # the step is absorbed on first tokens and 80 % of them are within 500 ms (the scale
    # down after the fall is not judged: 80 s leave it less than the stabilisation needs)
    assert checks["step up"].ok, checks["step up"].line()
    assert checks["SLO attainment"].ok, checks["SLO attainment"].line()
    requests = result.requests
    assert requests.e2e_s is not None
    done = np.isfinite(requests.e2e_s)
    ttft_p50 = float(np.percentile(requests.latency_s[done], 50))
    e2e_p95 = float(np.percentile(requests.e2e_s[done], 95))
    # answers: ~1 s; most first tokens: ~0.2-0.4 s. Not their p95: the objective is 80 %, and
    # a planner pacing its budget lets the step's tail pass the target (a CI run: 2.5 s)
    assert e2e_p95 > 0.5 > ttft_p50
    # what the controller read was time to first token, not the e2e latency
    read = [
        w.metrics.latency_ms
        for r in result.ticks
        for w in r.workloads
        if w.metrics.latency_ms is not None and r.time_s >= result.t0_s
    ]
    assert read and float(np.median(read)) < 0.6 * 1000.0 * e2e_p95
    # and sized on it: more cards for the step, within what its pool holds
    peak = max(
        (d.desired.replicas for r in result.ticks for d in r.decisions if d.desired), default=0
    )
    assert 2 < peak <= 12
    # near what the step needs: by the end of the x4 phase the loop has learnt a batching
    # card's knee, and serves the step's 64 rps on about 6 cards. Read one request at a time
    # (card-seconds per request) a card looked full at ~5 rps: 13 cards, more than the 12 it
    # may have, so it held max-replicas through the step and after it (#28)
    step_rps = 4.0 * settings.load.base_rps
    assert shape.down_s is not None
    high = [r for r in result.ticks if r.time_s < result.t0_s + shape.down_s]
    (status,) = high[-1].workloads
    per_card = max_rate_per_replica(status.capacity, 100, 0.95, settings.slo.latency_target_ms)
    assert per_card > 0 and math.ceil(step_rps / per_card) <= 8
