"""Load patterns: the day/night curve, seeded bursts, and trace replay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actuators.sim.load import DiurnalPattern, TracePattern
from forecasting.traces import Trace

HOUR_S = 3600.0


def test_diurnal_curve_peaks_at_the_peak_hour_and_bottoms_twelve_hours_later() -> None:
    p = DiurnalPattern(base_rps=10.0, peak_rps=50.0, peak_hour=14.0, bursts_per_day=0.0)
    assert p.rate_rps(14 * HOUR_S) == pytest.approx(50.0)
    assert p.rate_rps(2 * HOUR_S) == pytest.approx(10.0)
    assert p.rate_rps(8 * HOUR_S) == pytest.approx(30.0)  # halfway: 10 + 40 * 0.5
    assert p.rate_rps(38 * HOUR_S) == pytest.approx(50.0)  # periodic


def test_diurnal_rates_are_vectorised_midpoint_means() -> None:
    p = DiurnalPattern(base_rps=10.0, peak_rps=50.0, seed=4)
    rates = p.rates(0.0, 600.0, 60.0)
    assert len(rates) == 10
    assert rates[3] == pytest.approx(p.rate_rps(210.0))


def test_bursts_are_seeded_and_within_their_bounds() -> None:
    a = DiurnalPattern(base_rps=10.0, peak_rps=50.0, bursts_per_day=5.0, seed=1)
    b = DiurnalPattern(base_rps=10.0, peak_rps=50.0, bursts_per_day=5.0, seed=1)
    c = DiurnalPattern(base_rps=10.0, peak_rps=50.0, bursts_per_day=5.0, seed=2)
    assert a.bursts_of_day(0) == b.bursts_of_day(0)
    assert a.bursts_of_day(0) != c.bursts_of_day(0)
    t = np.arange(0.0, 7 * 86400.0, 10.0)
    factor = a.rates(0.0, 7 * 86400.0, 10.0) / a.curve_rps(t + 5.0)
    assert factor.min() == pytest.approx(1.0)
    assert 1.5 <= factor.max() <= 3.0
    bursting = np.count_nonzero(factor > 1.0) * 10.0
    # ~5 bursts a day of 2-10 minutes: some minutes a day, nowhere near all of it
    assert 7 * 600.0 < bursting < 7 * 5 * 3 * 600.0
    for burst in a.bursts_of_day(3):
        assert 120.0 <= burst.end_s - burst.start_s <= 600.0


def trace(counts: list[float], step_s: float = 60.0, start_s: float = 1_000.0) -> Trace:
    return Trace(name="t", start_s=start_s, step_s=step_s, counts=np.array(counts))


def test_trace_rate_is_constant_within_a_step_and_scaled() -> None:
    p = TracePattern(trace([60.0, 120.0, 30.0]), scale=2.0)
    # per-minute counts 60, 120, 30 -> 1, 2, 0.5 rps, times 2
    np.testing.assert_allclose(p.rates(0.0, 180.0, 60.0), [2.0, 4.0, 1.0])
    assert p.rates(30.0, 90.0, 60.0)[0] == pytest.approx(3.0)  # half of each step
    assert p.rate_rps(61.0) == pytest.approx(4.0)


def test_trace_nan_step_is_missing_data_and_takes_the_previous_rate() -> None:
    p = TracePattern(trace([60.0, math.nan, 30.0]))
    np.testing.assert_allclose(p.rates(0.0, 180.0, 60.0), [1.0, 1.0, 0.5])
    assert p.missing_steps == 1
    leading = TracePattern(trace([math.nan, 120.0, 60.0]))
    assert leading.rate_rps(0.0) == pytest.approx(2.0)


def test_trace_time_can_follow_the_trace_timestamps() -> None:
    p = TracePattern(trace([60.0, 120.0]), start_at_zero=False)  # trace starts at t = 1000
    assert p.rate_rps(500.0) == 0.0
    assert p.rate_rps(1_000.0) == pytest.approx(1.0)
    assert p.rate_rps(1_070.0) == pytest.approx(2.0)


def test_trace_ends_with_silence_unless_repeated() -> None:
    once = TracePattern(trace([60.0, 120.0]))
    looped = TracePattern(trace([60.0, 120.0]), repeat=True)
    assert once.rate_rps(150.0) == 0.0
    assert looped.rate_rps(150.0) == pytest.approx(1.0)
    np.testing.assert_allclose(looped.rates(0.0, 360.0, 60.0), [1.0, 2.0] * 3)
    np.testing.assert_allclose(once.rates(60.0, 240.0, 60.0), [2.0, 0.0, 0.0])


def test_trace_with_a_coarser_step() -> None:
    p = TracePattern(trace([3000.0, 600.0], step_s=300.0))  # 10 rps, then 2 rps
    np.testing.assert_allclose(p.rates(0.0, 600.0, 60.0), [10.0] * 5 + [2.0] * 5)
    assert p.rates(270.0, 330.0, 60.0)[0] == pytest.approx(6.0)
