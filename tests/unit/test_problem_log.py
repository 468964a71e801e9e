"""``ProblemLog``: a tick's problems grouped by cause, repeated with backoff while they last."""

from __future__ import annotations

import logging

import pytest

from sloscale.problems import ProblemLog, grouped

DOWN = "cannot connect to Prometheus at http://prom:9090"
TICK = [f"prometheus query {k} failed: {DOWN}" for k in ("http:rate", "http:buckets", "dcgm:util")]


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_failed_queries_with_one_cause_are_one_line() -> None:
    refused = "prometheus query retrain:data of ml/chat failed: HTTP 400: bad"
    lines = grouped([*TICK, refused])
    assert lines == {
        f"prometheus: {DOWN}": f"prometheus: {DOWN} (3 queries failed: http:rate, "
        "http:buckets, dcgm:util)",
        "prometheus: HTTP 400: bad": refused,
    }


def test_other_problems_pass_as_they_are() -> None:
    assert grouped(["discovery stale", "discovery stale"]) == {"discovery stale": "discovery stale"}


def test_a_lasting_problem_is_repeated_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    problems = ProblemLog(logging.getLogger("test.problems"), clock=clock)
    with caplog.at_level(logging.INFO, logger="test.problems"):
        for _ in range(16 * 60 // 15):  # 16 minutes of 15 s ticks
            problems.report(TICK)
            clock.now_s += 15.0
    said = [r.getMessage() for r in caplog.records]
    # at 0 s, then 60 s later, then 2 min, 4 min, 8 min later: 0, 1, 3, 7, 15 min
    assert len(said) == 5, said
    assert all(DOWN in line for line in said)
    assert said[1].endswith("(for 60 s; next reminder in 2 min)")
    assert said[4].endswith("(for 15 min; next reminder in 15 min)")  # 16 min capped at 15


def test_a_problem_that_goes_away_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    problems = ProblemLog(logging.getLogger("test.problems"), clock=clock)
    with caplog.at_level(logging.INFO, logger="test.problems"):
        problems.report(TICK)
        clock.now_s = 90.0
        problems.report([])
        problems.report([])
        problems.report(TICK)  # back: new again, said at once
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [
        ("WARNING", grouped(TICK)[f"prometheus: {DOWN}"]),
        ("INFO", f"resolved after 90 s: prometheus: {DOWN}"),
        ("WARNING", grouped(TICK)[f"prometheus: {DOWN}"]),
    ]
