"""Adapters build ``WorkloadMetrics``: a non-finite reading is unavailable, never a number."""

import math

from hypothesis import given
from hypothesis import strategies as st

from controller.domain import WorkloadMetrics


def test_nan_and_infinity_are_unavailable_and_zero_stays_zero() -> None:
    m = WorkloadMetrics(request_rate_rps=math.nan, latency_ms=math.inf, good_ratio=0.0)
    assert m.request_rate_rps is None and m.latency_ms is None
    assert m.good_ratio == 0.0  # a real zero is a reading, not a gap
    assert set(m.missing) == {
        "request_rate_rps",
        "latency_ms",
        "gpu_util",
        "gpu_busy",
        "gpu_memory_mib",
        "data_samples",
    }
    assert not m.core_available()


@given(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
def test_a_signal_is_either_finite_or_none(value: float | None) -> None:
    m = WorkloadMetrics(request_rate_rps=value, gpu_util=value)
    for got in (m.request_rate_rps, m.gpu_util):
        assert got is None or math.isfinite(got)
    assert (m.request_rate_rps is None) == (value is None or not math.isfinite(value))
