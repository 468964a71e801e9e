"""Knative's KPA decision (``autoscaler.go``): stable window, panic mode, rate bounds."""

from __future__ import annotations

from sloscale.bench.kpa import KpaSpec, KpaState

SPEC = KpaSpec(container_concurrency=1.0)  # target 0.7 in-flight requests per pod


def test_stable_mode_sizes_on_the_stable_window() -> None:
    # 2.0 in flight / 0.7 per pod = 2.86 -> 3; panic 2.1 / 0.7 = 3 < 2 x 4 ready: no panic
    assert KpaState().scale(SPEC, 4, 2.0, 2.1, now_s=0.0) == 3


def test_panic_mode_follows_the_panic_window_and_never_scales_down() -> None:
    state = KpaState()
    # panic: ceil(6.0 / 0.7) = 9 >= 2 x 4 ready pods
    assert state.scale(SPEC, 4, 2.0, 6.0, now_s=0.0) == 9
    # still within a stable window of the last panic reading: hold the high-water mark
    assert state.scale(SPEC, 9, 2.0, 2.0, now_s=30.0) == 9
    # a stable window (60 s) after the last over-threshold reading: back to stable, 3,
    # bounded by the max scale-down rate: floor(9 / 2) = 4
    assert state.scale(SPEC, 9, 2.0, 2.0, now_s=75.0) == 4
    assert state.panic_since_s is None


def test_min_scale_and_scale_down_rate() -> None:
    assert KpaState().scale(SPEC, 10, 0.0, 0.0, now_s=0.0) == 5  # floor(10 / 2)
    assert KpaState().scale(SPEC, 1, 0.0, 0.0, now_s=0.0) == 1  # min-scale 1
