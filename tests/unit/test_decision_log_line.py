"""The ``-v`` log's line per decision: for people, not a Python repr."""

from __future__ import annotations

import pytest

from controller.domain import Allocation, Decision, Reason

LINES = [
    pytest.param(
        Decision(
            0.0,
            "demo/chat",
            Reason.SCALE_DOWN,
            "sized for 13.4 rps",
            Allocation(2, 30),
            Allocation(1, 30),
        ),
        "demo/chat: 2 replicas x 30 % -> 1 replica x 30 %, ScaleDown: sized for 13.4 rps",
        id="scale-down",
    ),
    pytest.param(
        Decision(
            0.0,
            "ml/llm",
            Reason.RESIZE,
            "slice 40 % saturates",
            Allocation(1, 100),
            Allocation(1, 40),
        ),
        "ml/llm: 1 replica x 100 % -> 1 replica x 40 %, Resize: slice 40 % saturates",
        id="resize",
    ),
    pytest.param(
        Decision(0.0, "demo/x", Reason.METRICS_UNAVAILABLE, "no request rate", Allocation(3, 50)),
        "demo/x: keeps 3 replicas x 50 %, MetricsUnavailable: no request rate",
        id="hold",
    ),
    pytest.param(
        Decision(0.0, "demo/new", Reason.SCALE_UP, "first sizing", None, Allocation(2, 20)),
        "demo/new: nothing -> 2 replicas x 20 %, ScaleUp: first sizing",
        id="no-current",
    ),
]


@pytest.mark.parametrize(("decision", "line"), LINES)
def test_a_decision_is_one_readable_line(decision: Decision, line: str) -> None:
    assert decision.log_line() == line
    assert "Allocation(" not in line and "Reason." not in line
