"""SLO arithmetic: burn rate, budget remaining and the rolling window."""

import math

import pytest

from controller.slo import ErrorBudget, SliSample, budget_remaining, burn_rate, sli_sample


@pytest.mark.parametrize(
    ("bad_ratio", "objective", "expected"),
    [
        pytest.param(0.01, 0.99, 1.0, id="spending-exactly-the-budget"),
        pytest.param(0.144, 0.99, 14.4, id="page-burn-rate"),
        pytest.param(0.0, 0.99, 0.0, id="no-errors"),
        pytest.param(0.05, 0.95, 1.0, id="looser-objective"),
    ],
)
def test_burn_rate(bad_ratio: float, objective: float, expected: float) -> None:
    assert burn_rate(bad_ratio, objective) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("good", "total", "objective", "expected"),
    [
        pytest.param(0, 0, 0.99, 1.0, id="no-requests-untouched"),
        pytest.param(1000, 1000, 0.99, 1.0, id="all-good"),
        pytest.param(995, 1000, 0.99, 0.5, id="half-spent"),  # 5 bad of 10 allowed
        pytest.param(990, 1000, 0.99, 0.0, id="spent"),
        pytest.param(980, 1000, 0.99, -1.0, id="blown-twice-over"),
    ],
)
def test_budget_remaining(good: float, total: float, objective: float, expected: float) -> None:
    assert budget_remaining(good, total, objective) == pytest.approx(expected)


def test_error_budget_window_drops_old_buckets() -> None:
    budget = ErrorBudget(window_s=3600, objective_ratio=0.99, bucket_s=300)
    budget.add(SliSample(0, good=90, total=100))  # 10 bad: a bad start
    assert budget.remaining() == pytest.approx(-9.0)  # 10 bad of 1 allowed
    for t in range(300, 7200, 300):
        budget.add(SliSample(t, good=100, total=100))
    # the bad bucket is more than an hour old: only good requests remain in the window
    assert budget.remaining() == pytest.approx(1.0)
    assert budget.sli() == pytest.approx(1.0)


def test_recent_burn_rate_looks_back_only_as_far_as_asked() -> None:
    budget = ErrorBudget(window_s=86400, objective_ratio=0.99, bucket_s=60)
    budget.add(SliSample(0, good=50, total=100))
    budget.add(SliSample(3600, good=99, total=100))
    assert budget.recent_burn_rate(3600, lookback_s=120) == pytest.approx(1.0)
    assert budget.recent_burn_rate(3600, lookback_s=7200) == pytest.approx(25.5)  # 51/200/0.01
    assert ErrorBudget(60, 0.99).recent_burn_rate(0, 60) is None
    assert math.isinf(burn_rate(0.1, 1.0))


def test_an_sli_sample_is_the_tick_s_requests_and_the_good_ones() -> None:
    assert sli_sample(30.0, 4.0, 0.75, 15.0) == SliSample(30.0, 45.0, 60.0)
    assert sli_sample(30.0, 0.0, 1.0, 15.0) == SliSample(30.0, 0.0, 0.0)  # a quiet tick counts


@pytest.mark.parametrize(
    ("rate", "good"), [(None, 1.0), (4.0, None), (math.nan, 1.0), (4.0, math.inf)]
)
def test_no_sli_sample_without_a_rate_and_a_good_ratio(
    rate: float | None, good: float | None
) -> None:
    assert sli_sample(30.0, rate, good, 15.0) is None


def test_an_sli_sample_adds_to_the_budget_exactly_as_counted() -> None:
    budget = ErrorBudget(3600.0, 0.99)
    sample = sli_sample(15.0, 2.5, 0.9, 15.0)
    assert sample is not None
    budget.add(sample)
    total = 2.5 * 15.0
    assert (budget.total, budget.good) == (total, total * 0.9)
