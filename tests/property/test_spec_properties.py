"""Properties of ``controller.spec``: valid annotations round-trip, bad ones never raise.

Invariants checked on every accepted spec: slices are multiples of the step inside (0, 100],
min <= max for slices and replicas; and for any text at all, parsing returns a spec or errors
(never an exception), each error naming the workload, a ``sloscale.io/`` key and its value.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from controller.domain import (
    PRIORITY_NAMES,
    JobSpec,
    MetricsProfile,
    RetrainSpec,
    SliceDialect,
    SloSpec,
)
from controller.spec import (
    ANNOTATION_PREFIX,
    KNOWN_DEPLOYMENT_KEYS,
    KNOWN_JOB_KEYS,
    MAX_DURATION_S,
    MAX_LATENCY_TARGET_MS,
    MAX_REPLICAS,
    OBJECTIVE_RANGE_PCT,
    QUANTILE_RANGE,
    WINDOW_RANGE_S,
    ParseResult,
    format_errors,
    parse_duration_s,
    parse_job_spec,
    parse_slo_spec,
)

P = ANNOTATION_PREFIX
WORKLOAD = "ns/model"
UNIT_S = {"y": 31536000.0, "w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


# --------------------------------------------------------------------------------------------
# Strategies for valid annotations, each with the value it must parse to
# --------------------------------------------------------------------------------------------


def padded(text: str) -> st.SearchStrategy[str]:
    """The text, sometimes with whitespace around it (values are stripped)."""
    return st.tuples(st.sampled_from(["", " ", "\t"]), st.sampled_from(["", " ", "\n"])).map(
        lambda pad: pad[0] + text + pad[1]
    )


def any_case(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.capitalize()])


positive_floats = st.floats(min_value=1e-6, max_value=1e12, allow_nan=False)
durations = st.builds(
    lambda n, unit: (f"{n}{unit}", n * UNIT_S[unit]),
    st.integers(min_value=1, max_value=10**6),
    st.sampled_from(list(UNIT_S)),
)


def bounded_durations(low_s: float, high_s: float) -> st.SearchStrategy[tuple[str, float]]:
    """Durations an annotation accepts: whole units between the bounds (both included)."""
    return st.sampled_from(list(UNIT_S)).flatmap(
        lambda unit: st.integers(
            min_value=math.ceil(low_s / UNIT_S[unit]), max_value=int(high_s // UNIT_S[unit])
        ).map(lambda n: (f"{n}{unit}", n * UNIT_S[unit]))
    )


annotation_durations = bounded_durations(0.001, MAX_DURATION_S)
windows = bounded_durations(*WINDOW_RANGE_S)
priorities = st.one_of(
    st.sampled_from(list(PRIORITY_NAMES)).flatmap(
        lambda name: any_case(name).map(lambda text: (text, PRIORITY_NAMES[name]))
    ),
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: (str(n), n)),
)
queries = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
dns_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)


@st.composite
def valid_deployments(draw: st.DrawFn) -> tuple[dict[str, str], SloSpec]:
    """A valid annotation set, keys present or left to their defaults at random."""
    given_: dict[str, str] = {"enabled": draw(any_case("true"))}
    fields: dict[str, Any] = {}

    def maybe(name: str, field: str, pair: tuple[str, Any]) -> None:
        if draw(st.booleans()):
            given_[name] = pair[0]
            fields[field] = pair[1]

    target = draw(st.floats(min_value=1e-6, max_value=MAX_LATENCY_TARGET_MS))
    given_["latency-target-ms"] = repr(target)
    fields["latency_target_ms"] = target
    quantile = draw(st.floats(*QUANTILE_RANGE))
    maybe("latency-quantile", "latency_quantile", (repr(quantile), quantile))
    objective = draw(st.floats(*OBJECTIVE_RANGE_PCT))
    maybe("objective", "objective_pct", (repr(objective), objective))
    maybe("window", "window_s", draw(windows))
    maybe("priority", "priority", draw(priorities))

    if draw(st.booleans()):
        high = draw(st.integers(min_value=1, max_value=1000))
        given_["max-replicas"], fields["max_replicas"] = str(high), high
    low = draw(st.integers(min_value=0, max_value=fields.get("max_replicas", 16)))
    maybe("min-replicas", "min_replicas", (str(low), low))

    step = draw(st.sampled_from(range(10, 101, 10)))
    units = 100 // step
    k_min = draw(st.integers(min_value=1, max_value=units))
    k_max = draw(st.integers(min_value=k_min, max_value=units))
    fields["slice_step_pct"] = step
    fields["slice_min_pct"] = step  # defaults when not given
    fields["slice_max_pct"] = units * step
    if step != 10 or draw(st.booleans()):
        given_["slice-step"] = str(step)
    maybe("slice-min", "slice_min_pct", (str(k_min * step), k_min * step))
    maybe("slice-max", "slice_max_pct", (str(k_max * step), k_max * step))
    if fields["slice_min_pct"] > fields["slice_max_pct"]:  # min given, max left at default
        given_["slice-max"] = str(fields["slice_min_pct"])
        fields["slice_max_pct"] = fields["slice_min_pct"]

    dialect = draw(st.sampled_from(list(SliceDialect)))
    maybe("slice-dialect", "slice_dialect", (draw(any_case(dialect.value)), dialect))
    profile = draw(st.sampled_from(list(MetricsProfile)))
    maybe("metrics-profile", "metrics_profile", (draw(any_case(profile.value)), profile))
    if fields.get("metrics_profile") is MetricsProfile.CUSTOM:
        for name in ("latency-query", "rate-query", "good-ratio-query"):
            if name != "good-ratio-query" or draw(st.booleans()):
                query = draw(queries)
                given_[name] = query
                fields[name.replace("-", "_")] = query.strip()

    if draw(st.booleans()):
        data_query, threshold = draw(queries), draw(positive_floats)
        kind, name = draw(st.sampled_from(["cronjob", "configmap"])), draw(dns_names)
        given_["retrain-data-query"] = data_query
        given_["retrain-threshold"] = repr(threshold)
        given_["retrain-job-template"] = f"{kind}/{name}"
        retrain: dict[str, Any] = {}
        if draw(st.booleans()):
            given_["retrain-cooldown"], retrain["cooldown_s"] = draw(annotation_durations)
        if draw(st.booleans()):
            urgent = threshold * 2 + 1
            given_["retrain-urgent-threshold"] = repr(urgent)
            retrain["urgent_threshold_samples"] = urgent
        if draw(st.booleans()):
            given_["retrain-deadline"], retrain["deadline_s"] = draw(annotation_durations)
        fields["retrain"] = RetrainSpec(data_query.strip(), threshold, f"{kind}/{name}", **retrain)

    annotations = {P + name: draw(padded(value)) for name, value in given_.items()}
    annotations["app.kubernetes.io/name"] = "ignored"
    return annotations, SloSpec(**{"slice_dialect": SliceDialect.HAMI, **fields})


# --------------------------------------------------------------------------------------------
# Strategies for arbitrary annotations
# --------------------------------------------------------------------------------------------

plausible_values = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-5, max_value=130).map(str),
    st.sampled_from(
        [
            "true",
            "false",
            "0.99",
            "99.9",
            "1h30m",
            "28d",
            "0",
            "-1",
            "custom",
            "hami",
            "nan",
            "cronjob/x",
            "configmap/Bad_Name",
            "1e999",
            "",
            " ",
            "high",
            "10",
            "100",
            "15",
        ]
    ),
)
KNOWN_NAMES = frozenset(k.removeprefix(P) for k in KNOWN_DEPLOYMENT_KEYS)
deployment_names = sorted(k.removeprefix(P) for k in KNOWN_DEPLOYMENT_KEYS | KNOWN_JOB_KEYS)
arbitrary_keys = st.one_of(
    st.sampled_from(deployment_names).map(lambda n: P + n),
    st.text(max_size=15).map(lambda n: P + n),
    st.text(max_size=15),
)
arbitrary_annotations = st.dictionaries(arbitrary_keys, plausible_values, max_size=12)


def assert_well_formed(result: ParseResult[Any], annotations: dict[str, str], name: str) -> None:
    """Exactly one of the three result shapes, and every error points at a real annotation."""
    if result.opted_in:
        assert (result.spec is None) == bool(result.errors)
    else:  # not opted in: only keys no Deployment takes are errors
        assert result.spec is None
        assert all(e.key.removeprefix(P) not in KNOWN_NAMES for e in result.errors)
    for error in result.errors:
        assert error.workload == name
        assert error.key.startswith(P)
        assert error.value == annotations.get(error.key, "")
        assert error.message
    assert len(format_errors(result.errors).splitlines()) == len(result.errors)


def assert_invariants(spec: SloSpec) -> None:
    step = spec.slice_step_pct
    assert step % 10 == 0 and 10 <= step <= 100
    assert 0 < spec.slice_min_pct <= spec.slice_max_pct <= 100
    assert spec.slice_min_pct % step == 0 and spec.slice_max_pct % step == 0
    assert 0 <= spec.min_replicas <= spec.max_replicas and spec.max_replicas >= 1
    assert spec.latency_target_ms > 0 and 0 < spec.latency_quantile < 1
    assert 0 < spec.objective_pct < 100 and spec.window_s > 0
    assert spec.max_replicas <= MAX_REPLICAS and spec.latency_target_ms <= MAX_LATENCY_TARGET_MS
    assert QUANTILE_RANGE[0] <= spec.latency_quantile <= QUANTILE_RANGE[1]
    assert OBJECTIVE_RANGE_PCT[0] <= spec.objective_pct <= OBJECTIVE_RANGE_PCT[1]
    assert WINDOW_RANGE_S[0] <= spec.window_s <= WINDOW_RANGE_S[1]
    assert spec.slice_options_pct()  # never an empty choice
    assert (spec.metrics_profile is MetricsProfile.CUSTOM) == (spec.rate_query is not None)
    if spec.retrain is not None and spec.retrain.urgent_threshold_samples is not None:
        assert spec.retrain.urgent_threshold_samples > spec.retrain.threshold_samples


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@given(valid_deployments())
def test_valid_annotations_round_trip(case: tuple[dict[str, str], SloSpec]) -> None:
    annotations, expected = case
    result = parse_slo_spec(WORKLOAD, annotations)
    assert result.errors == (), format_errors(result.errors)
    assert result.spec == expected
    assert_invariants(result.spec)


@given(valid_deployments(), st.sampled_from(list(SliceDialect)))
def test_default_dialect_used_only_when_unset(
    case: tuple[dict[str, str], SloSpec], dialect: SliceDialect
) -> None:
    annotations, expected = case
    spec = parse_slo_spec(WORKLOAD, annotations, default_dialect=dialect).spec
    assert spec is not None
    if P + "slice-dialect" in annotations:
        assert spec.slice_dialect == expected.slice_dialect
    else:
        assert spec.slice_dialect is dialect


@given(arbitrary_annotations, st.booleans())
def test_arbitrary_annotations_never_raise(annotations: dict[str, str], opt_in: bool) -> None:
    if opt_in:
        annotations = {P + "enabled": "true", P + "latency-target-ms": "100", **annotations}
    result = parse_slo_spec(WORKLOAD, annotations)
    assert_well_formed(result, annotations, WORKLOAD)
    if result.spec is not None:
        assert_invariants(result.spec)


@given(arbitrary_annotations)
def test_arbitrary_job_annotations_never_raise(annotations: dict[str, str]) -> None:
    result = parse_job_spec("ns/job", annotations)
    assert_well_formed(result, annotations, "ns/job")
    if result.spec is not None:
        assert isinstance(result.spec, JobSpec)
        assert result.spec.min_runtime_s >= 0
    has_sloscale_key = any(k.startswith(P) for k in annotations)
    if not has_sloscale_key:
        assert result.spec == JobSpec()


slice_ints = st.integers(min_value=-10, max_value=120)


@given(slice_ints, slice_ints, slice_ints)
def test_slices_accepted_exactly_when_the_rule_holds(low: int, high: int, step: int) -> None:
    annotations = {
        P + "enabled": "true",
        P + "latency-target-ms": "100",
        P + "slice-min": str(low),
        P + "slice-max": str(high),
        P + "slice-step": str(step),
    }
    rule = (
        step % 10 == 0
        and 10 <= step <= 100
        and 0 < low <= high <= 100
        and low % step == 0
        and high % step == 0
    )
    result = parse_slo_spec(WORKLOAD, annotations)
    assert result.ok == rule, format_errors(result.errors)
    if result.spec is not None:
        assert (result.spec.slice_min_pct, result.spec.slice_max_pct) == (low, high)
        assert all(s % step == 0 for s in result.spec.slice_options_pct())


@given(st.integers(min_value=-3, max_value=40), st.integers(min_value=-3, max_value=40))
def test_replicas_accepted_exactly_when_min_le_max(low: int, high: int) -> None:
    annotations = {
        P + "enabled": "true",
        P + "latency-target-ms": "100",
        P + "min-replicas": str(low),
        P + "max-replicas": str(high),
    }
    result = parse_slo_spec(WORKLOAD, annotations)
    assert result.ok == (0 <= low <= high and high >= 1)


@given(st.text(max_size=20))
def test_duration_parses_or_raises_value_error(text: str) -> None:
    try:
        seconds = parse_duration_s(text)
    except ValueError as exc:
        assert repr(text) in str(exc)
    else:
        assert 0 < seconds < float("inf")


@given(durations, durations)
def test_compound_duration_is_the_sum(first: tuple[str, float], second: tuple[str, float]) -> None:
    units = list(UNIT_S)
    (text_a, s_a), (text_b, s_b) = sorted(
        [first, second], key=lambda pair: units.index(pair[0].lstrip("0123456789"))
    )
    if text_a.lstrip("0123456789") == text_b.lstrip("0123456789"):
        return  # a unit may appear once
    assert parse_duration_s(text_a + text_b) == s_a + s_b


def test_known_key_sets_are_what_the_strategies_draw_from() -> None:
    assert {P + n for n in deployment_names} >= KNOWN_JOB_KEYS
