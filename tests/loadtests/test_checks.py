"""The load test's verdicts and shapes, on hand-made timelines (pure, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from loadtests.checks import (
    PodLife,
    Requests,
    ScaleEvent,
    Timing,
    check_attainment,
    check_flapping,
    check_scale_down,
    check_step_up,
    direction_changes,
    held_share,
    ready_share,
)
from loadtests.settings import LoadSettings, ServiceModel, TimeSettings
from loadtests.shapes import build_shape, diurnal_shape, step_shape, trace_shape, traces_dir

TIMING = Timing(
    tick_s=1.0,
    window_s=2.0,
    cold_start_s=5.0,
    scale_down_delay_s=20.0,
    speedup=12.0,
    target_ms=300.0,
    quantile=0.95,
    objective_pct=80.0,
)


def requests_with(latency_ms_at: list[tuple[float, float, float]]) -> Requests:
    """``(start_s, end_s, latency_ms)`` segments, 20 requests per second each."""
    arrival, latency = [], []
    for start, end, ms in latency_ms_at:
        for t in np.arange(start, end, 0.05):
            arrival.append(t)
            latency.append(ms / 1000.0)
    return Requests(np.array(arrival), np.array(latency))


PODS = (
    PodLife("a", 50, 0.0, 0.0, None),
    PodLife("b", 50, 0.0, 0.0, 70.0),
    PodLife("c", 50, 31.0, 36.0, 70.0),  # asked 1 s after the step, ready after 5 s cold start
)


def test_shares_follow_pod_lives() -> None:
    assert ready_share(PODS, 35.0) == 100  # c is still starting
    assert held_share(PODS, 35.0) == 150  # ... but holds its slice
    assert ready_share(PODS, 36.0) == 150
    assert held_share(PODS, 70.0) == 50


def test_step_up_passes_when_latency_recovers_within_three_ticks() -> None:
    # slow requests arrive until 34 s and complete by 36 s, when c is ready
    reqs = requests_with([(0, 30, 100), (30, 34, 2000), (34, 60, 120)])
    result = check_step_up(reqs, PODS, 30.0, 60.0, TIMING)
    assert result.ok, result.detail
    assert result.values["ready_after_s"] == pytest.approx(6.0)  # 36 - 30


def test_step_up_fails_when_latency_stays_high() -> None:
    reqs = requests_with([(0, 30, 100), (30, 42, 2000), (42, 60, 120)])
    result = check_step_up(reqs, PODS, 30.0, 60.0, TIMING)
    assert not result.ok
    assert "back under" in result.detail


def test_step_up_fails_without_new_capacity() -> None:
    reqs = requests_with([(0, 30, 100), (30, 60, 2000)])
    result = check_step_up(reqs, PODS[:2], 30.0, 60.0, TIMING)
    assert not result.ok
    assert "no new capacity" in result.detail


def test_step_up_passes_without_new_capacity_when_latency_holds() -> None:
    reqs = requests_with([(0, 60, 120)])
    result = check_step_up(reqs, PODS[:2], 30.0, 60.0, TIMING)
    assert result.ok and "no new capacity needed" in result.detail


def test_scale_down_within_stabilisation_plus_two_ticks() -> None:
    # the load falls at 48 s; c and b go at 70 s: 22 s <= 20 s + 2 ticks
    assert check_scale_down(PODS, 48.0, 90.0, TIMING).ok
    # falling at 47 s leaves 23 s > 22 s
    assert not check_scale_down(PODS, 47.0, 90.0, TIMING).ok


def test_attainment_is_request_weighted() -> None:
    reqs = requests_with([(0, 19, 100), (19, 20, 900)])  # 1 s of 20 bad: 95 %
    result = check_attainment(reqs, 0.0, 20.0, TIMING)
    assert result.values["attainment_pct"] == pytest.approx(95.0, abs=0.3)


def test_direction_changes_count_reversals_only() -> None:
    up, down = ScaleEvent(0, 100, 200), ScaleEvent(1, 200, 100)
    assert direction_changes([up, up, down, down]) == 1
    assert direction_changes([up, down, up, down]) == 3
    # 60 s at x12 is 12 min of the modelled world: no noise allowance on top of the shape's 2
    assert not check_flapping([up, down, up, down], 60.0, 2, TIMING).ok
    # 300 s is an hour: 3 more reversals allowed for a quiet load crossing a replica boundary
    assert check_flapping([up, down] * 3, 300.0, 2, TIMING).ok
    assert not check_flapping([up, down] * 4, 300.0, 2, TIMING).ok


def test_shapes_mark_their_steps() -> None:
    step = step_shape(100.0)
    assert (step.up_s, step.down_s) == (30.0, 65.0)
    assert step.multiplier(29.0) == 1.0 and step.multiplier(31.0) == 4.0
    assert step.multiplier(100.0) is None  # over: locust stops
    spike = build_shape("spike", 100.0)
    assert max(s.multiplier for s in spike.stages) == 8.0
    day = diurnal_shape(300.0)
    assert min(s.multiplier for s in day.stages) == pytest.approx(0.5, abs=0.05)
    assert max(s.multiplier for s in day.stages) == pytest.approx(3.0, abs=0.05)


def test_trace_shape_compresses_minutes() -> None:
    path = traces_dir() / "azure_llm2023_code_per_minute.csv"
    if not path.exists():
        pytest.skip(f"no trace at {path}")
    shape = trace_shape(50.0, 12.0, path)
    assert shape.stages[0].end_s == pytest.approx(5.0)  # one minute lasts 60 / 12 s
    assert np.mean([s.multiplier for s in shape.stages]) == pytest.approx(1.0, abs=0.01)


def test_compressed_times_and_model() -> None:
    t = TimeSettings(speedup=12.0)
    assert t.cold_start_s == 5.0 and t.scale_down_delay_s == 25.0 and t.tick_s == 1.25
    model = ServiceModel(t0_s=0.05, s_sat_pct=50.0)
    assert model.mean_service_s(25) == pytest.approx(0.1)  # half the saturating share
    assert model.mean_service_s(100) == pytest.approx(0.05)  # beyond s_sat buys nothing
    assert LoadSettings(base_rps=16, per_user_rps=0.5).users(4.0) == 128
