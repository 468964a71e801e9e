"""The rule for partial data and the PromQL parse check, by hand (no Prometheus needed)."""

from __future__ import annotations

import pytest

from actuators.prometheus.coverage import partial_reasons
from actuators.prometheus.profiles import promql_problem

FULL = {"now": 1.0, "start": 1.0, "early": 3.0, "late": 3.0, "before": 40.0}


def test_every_ready_pod_covering_the_window_is_full() -> None:
    assert partial_reasons({"a", "b"}, {"a": FULL, "b": FULL}, {"a", "b"}, {"a", "b"}) == []


def test_a_ready_pod_without_a_series_is_partial() -> None:
    (why,) = partial_reasons({"a"}, {"a": FULL}, {"a", "b"}, {"a", "b"})
    assert "1 of 2 ready pods not reporting: b" in why


def test_a_pod_stopped_or_resumed_inside_the_window_is_partial() -> None:
    stopped = {**FULL, "late": 1.0}
    stale = {k: v for k, v in FULL.items() if k != "now"}
    resumed = {k: v for k, v in FULL.items() if k != "start"}
    for counts, word in ((stopped, "stopped"), (stale, "stopped"), (resumed, "resumed")):
        (why,) = partial_reasons({"a"}, {"a": counts}, {"a"}, {"a"})
        assert word in why


def test_a_new_pod_and_a_pod_the_cluster_no_longer_reports_are_not_partial() -> None:
    new = {"now": 1.0, "early": 0.0, "late": 2.0}  # no sample before the window: new
    gone = {"early": 3.0, "late": 0.0, "before": 40.0}  # deleted: stale, not ready any more
    counts: dict[str | None, dict[str, float]] = {"a": FULL, "new": new, "gone": gone}
    assert partial_reasons({"a", "new", "gone"}, counts, {"a", "new"}, {"a", "new"}) == []


def test_a_workload_whose_every_series_is_new_is_partial() -> None:
    """A Prometheus just started (or wiped): no series covers the window's start, and rate()
    reads only the part of the window its samples cover."""
    new = {"now": 1.0, "early": 0.0, "late": 2.0}
    (why,) = partial_reasons({"a", "b"}, {"a": new, "b": new}, {"a", "b"}, {"a", "b"})
    assert "no rate series covers the whole window" in why
    (why,) = partial_reasons({None}, {None: new}, set(), set())
    assert "Prometheus or the workload is new" in why
    # the lookback before the window holds no sample even when the key is there
    (why,) = partial_reasons({"a"}, {"a": {**new, "before": 0.0}}, {"a"}, {"a"})
    assert "is new" in why


def test_a_rolling_update_that_replaced_every_pod_is_not_partial() -> None:
    """The old pods, gone from the cluster, show Prometheus saw the load before the window."""
    new = {"now": 1.0, "early": 0.0, "late": 2.0}
    gone = {"early": 3.0, "late": 0.0, "before": 40.0}
    counts: dict[str | None, dict[str, float]] = {"old": gone, "new": new}
    assert partial_reasons({"old", "new"}, counts, {"new"}, {"new"}) == []


def test_series_without_pods_are_judged_as_one() -> None:
    assert partial_reasons({None}, {None: FULL}, {"a", "b"}, {"a", "b"}) == []
    (why,) = partial_reasons({None}, {None: {**FULL, "late": 0.0}}, set(), set())
    assert "its series stopped" in why


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("sum((", "unclosed '('"),
        ("rate(x[5m]", "unclosed '('"),
        ("sum(x))", "unexpected ')'"),
        ('x{a="b}', "unterminated"),
        ("  ", "empty"),
    ],
)
def test_queries_that_cannot_parse_are_named(query: str, problem: str) -> None:
    found = promql_problem(query)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    "query",
    [
        'sum(rate(x{path="/a(b"}[1m]))',
        "max(x) # a comment (",
        "sum by (le) (rate(x_bucket[5m]))",
        "x{a='it\\'s'}",
    ],
)
def test_valid_queries_pass(query: str) -> None:
    assert promql_problem(query) is None
