"""``sloscale loadtest --duration``: a run too short for its own checks is refused up front.

Before, ``--duration 30s`` started Prometheus, locust and the loop and then failed the step-up
and scale-down checks, which cannot pass in 30 s at the default speedup.
"""

from __future__ import annotations

import pytest

from loadtests.checks import minimum_duration_s
from loadtests.harness import timing_of
from loadtests.settings import LoadTestSettings
from loadtests.shapes import DEFAULT_DURATION_S, build_shape
from sloscale.cli import main

TIMING = timing_of(LoadTestSettings())  # speedup 12: tick 1.25 s, cold start 5 s, window 2.5 s


def test_the_minimum_is_the_checks_arithmetic() -> None:
    # step: 35 % high, 35 % after the fall
    # scale-up room 2.5 + 5 + 5 x 1.25 = 13.75 s -> 39.3 s; scale-down 25 + 3 x 1.25 = 28.75 s
    # in 35 % -> 82.1 s
    assert minimum_duration_s(build_shape("step", 100.0), TIMING) == pytest.approx(28.75 / 0.35)
    # spike: 10 % high -> 137.5 s
    assert minimum_duration_s(build_shape("spike", 240.0), TIMING) == pytest.approx(137.5)
    assert minimum_duration_s(build_shape("diurnal", 300.0), TIMING) == pytest.approx(42.5)


@pytest.mark.parametrize("shape", ["step", "spike", "diurnal"])
def test_every_default_duration_is_long_enough(shape: str) -> None:
    default = DEFAULT_DURATION_S[shape]
    assert default >= minimum_duration_s(build_shape(shape, default), TIMING)


def test_a_too_short_duration_is_refused_with_the_minimum(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["loadtest", "--duration", "30s"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("sloscale loadtest: error: --duration 30s is too short")
    assert "at least 83s" in captured.err
    assert captured.out == ""
