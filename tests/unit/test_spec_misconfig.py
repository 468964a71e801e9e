"""``controller.spec``: the mistakes that used to pass silently (issue #24).

An objective written as a ratio (``0.99``) and a key no Deployment takes on a Deployment
that is not opted in (``sloscale.io/enable``: the opt-in itself mistyped).
"""

from __future__ import annotations

import pytest

from controller.domain import Mode
from controller.spec import parse_slo_spec
from tests.unit.spec_helpers import WORKLOAD, P, ann, ok_spec, only_error, parse

OBJECTIVE_RATIOS = [
    pytest.param("0.99", "did you mean 99?", id="0.99-is-99"),
    pytest.param("0.995", "did you mean 99.5?", id="0.995-is-99.5"),
    pytest.param("0.5", "did you mean 50?", id="0.5-is-50"),
    pytest.param("0.3", "a percentage", id="0.3-no-objective-to-suggest"),  # 30 % < 50 %
    pytest.param("12", "a percentage", id="12-under-50"),
]


@pytest.mark.parametrize(("value", "hint"), OBJECTIVE_RATIOS)
def test_an_objective_under_half_is_rejected_with_a_hint(value: str, hint: str) -> None:
    error = only_error(parse({P + "objective": value}))
    assert (error.key, error.value) == (P + "objective", value)
    assert hint in error.message and "[50, 99.999]" in error.message


def test_a_ratio_hint_is_given_only_where_the_percentage_is_valid() -> None:
    message = only_error(parse({P + "objective": "0.3"})).message
    assert "did you mean" not in message  # 30 % would be rejected too


TYPOS_NOT_OPTED_IN = [
    pytest.param(ann(enable="true", latency_target_ms="250"), "enable", "enabled", id="enable"),
    pytest.param(ann(enabeld="true"), "enabeld", "enabled", id="enabeld"),
    pytest.param(
        ann(enabled="false", latency_targt_ms="250"),
        "latency-targt-ms",
        "latency-target-ms",
        id="enabled-false-still-reports-typos",
    ),
]


@pytest.mark.parametrize(("annotations", "key", "nearest"), TYPOS_NOT_OPTED_IN)
def test_an_unknown_key_is_an_error_even_when_not_opted_in(
    annotations: dict[str, str], key: str, nearest: str
) -> None:
    result = parse_slo_spec(WORKLOAD, annotations)
    assert not result.opted_in and result.spec is None
    error = only_error(result)
    assert error.key == P + key
    assert f"did you mean {P}{nearest}?" in error.message


def test_not_opted_in_values_are_still_not_looked_at() -> None:
    result = parse_slo_spec(WORKLOAD, ann(enabled="false", window="x", objective="0.99"))
    assert result.errors == () and not result.opted_in


@pytest.mark.parametrize(
    ("value", "mode"),
    [("off", Mode.OFF), ("recommend", Mode.RECOMMEND), ("Auto", Mode.AUTO)],
)
def test_mode(value: str, mode: Mode) -> None:
    assert ok_spec({P + "mode": value}).mode is mode


def test_mode_defaults_to_auto_and_rejects_others() -> None:
    assert ok_spec({}).mode is Mode.AUTO
    assert "off, recommend, auto" in only_error(parse({P + "mode": "shadow"})).message
