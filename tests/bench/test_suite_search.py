"""The suite's target search: gallop from a guess, bisect to one point, check monotony."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sloscale.bench.suite.search import SearchRange, SearchResult, TargetSearch, violations

SPAN = SearchRange(20, 95)


def drive(span: SearchRange, guess: int | None, meets: Callable[[int], bool]) -> SearchResult:
    search = TargetSearch(span, guess)
    for _ in range(200):
        target = search.next_target()
        if target is None:
            return search.result()
        assert span.lo <= target <= span.hi
        assert target not in search.points, "a target is replayed once"
        search.record(target, meets(target))
    raise AssertionError("the search did not end")


@pytest.mark.parametrize("best", [20, 21, 37, 63, 64, 94, 95])
@pytest.mark.parametrize("guess", [None, 20, 50, 63, 70, 95, 5, 200])
def test_monotone_attainment_finds_the_highest_target_that_meets(best: int, guess: int) -> None:
    result = drive(SPAN, guess, lambda t: t <= best)
    assert result.best == best
    assert result.monotone
    assert result.met(best) is True
    if best < SPAN.hi:
        assert result.met(best + 1) is False  # the neighbour, replayed
    assert result.at_top == (best == SPAN.hi)


def test_no_target_meets() -> None:
    result = drive(SPAN, 70, lambda t: False)
    assert result.best is None
    assert result.met(SPAN.lo) is False
    assert result.monotone


@pytest.mark.parametrize(("guess", "most"), [(63, 3), (62, 4), (61, 5), (64, 3), (65, 4)])
def test_a_close_guess_costs_few_replays(guess: int, most: int) -> None:
    result = drive(SPAN, guess, lambda t: t <= 63)
    assert result.best == 63
    assert result.evaluations <= most


@pytest.mark.parametrize("best", [None, 20, 33, 57, 83, 94, 95])
def test_without_a_guess_a_bisection_of_the_range(best: int | None) -> None:
    result = drive(SPAN, None, lambda t: best is not None and t <= best)
    assert result.best == best
    assert result.evaluations <= 8  # ceil(log2(77 answers)) + the check above


def test_a_far_guess_costs_twice_a_bisection_at_most() -> None:
    result = drive(SPAN, 20, lambda t: t <= 83)
    assert result.best == 83
    assert result.evaluations <= 2 * 7 + 1


def test_a_target_that_meets_above_a_miss_is_found_and_reported() -> None:
    # 60 meets, 61 misses, 62 and 63 meet again, 64.. miss: the check replays 62
    pattern = {61: False, 62: True, 63: True}
    result = drive(SPAN, 60, lambda t: pattern.get(t, t <= 60))
    assert not result.monotone
    assert (61, 62) in result.violations
    assert result.best == 63  # the linear scan above went on until three missed in a row
    assert all(result.met(t) is False for t in (64, 65, 66))


def test_violations_lists_every_miss_below_a_meet() -> None:
    assert violations({50: True, 51: False, 52: True, 53: False}) == ((51, 52),)
    assert violations({50: True, 51: False}) == ()


def test_the_protocol_is_strict() -> None:
    search = TargetSearch(SPAN, 70)
    assert search.next_target() == 70
    assert search.next_target() == 70  # asking again names the same target
    with pytest.raises(ValueError, match="asked for 70"):
        search.record(71, True)
    with pytest.raises(ValueError, match="not finished"):
        search.result()
    with pytest.raises(ValueError, match="empty range"):
        TargetSearch(SearchRange(5, 4), 5)
