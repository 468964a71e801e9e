"""Properties of the saved controller state (``controller.persist``): any snapshot survives
JSON unchanged, and no document, however damaged, makes ``decode`` raise."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from controller.capacity import CapacityModel
from controller.domain import Allocation, RolloutFailureReason
from controller.persist import (
    BudgetSnapshot,
    JobSnapshot,
    StateSnapshot,
    WorkloadSnapshot,
    decode,
    encode,
)
from controller.policy.inputs import PlannerMemory
from controller.policy.rollback import RollbackMemory, SliceBackoff
from controller.policy.slices import SliceMemory

times = st.floats(min_value=0.0, max_value=1e10, allow_nan=False)
positive = st.floats(min_value=1e-9, max_value=1e6, allow_nan=False)
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
keys = st.from_regex(r"[a-z]{1,8}/[a-z0-9-]{1,12}", fullmatch=True)


recommendations = st.lists(
    st.tuples(times, st.builds(Allocation, st.integers(0, 64), st.integers(1, 100))),
    max_size=12,
).map(lambda rs: tuple(sorted(rs, key=lambda r: r[0])))
memories = st.builds(
    PlannerMemory,
    recommendations=recommendations,
    headroom=finite,
    slices=st.builds(
        SliceMemory,
        last_resize_s=st.none() | times,
        peak_rate_rps=st.floats(0.0, 1e6),
        peak_at_s=st.none() | times,
    ),
    rollback=st.builds(
        RollbackMemory,
        last_good_pct=st.none() | st.integers(1, 100),
        backoffs=st.lists(
            st.builds(
                SliceBackoff,
                st.integers(1, 100),
                times,
                positive,
                st.sampled_from(RolloutFailureReason),
            ),
            max_size=4,
            unique_by=lambda b: b.slice_pct,
        ).map(tuple),
        last_good_mib=st.none() | st.integers(0, 10**6),
    ),
)
capacities = st.builds(
    CapacityModel,
    cost_card_s=st.none() | positive,
    sat_pct=st.none() | positive,
    explored_max_pct=st.integers(0, 100),
    service_quantile_mult=st.none() | positive,
    wait_shape=positive,
    latency_samples=st.integers(0, 10**6),
    settle_ticks=st.integers(0, 10),
    serial_cost_card_s=st.none() | positive,
)
bucket_starts = st.lists(times, unique=True, max_size=10).map(sorted)
budgets = st.builds(
    lambda starts, target, q, window, objective, good, total, counts: BudgetSnapshot(
        target,
        q,
        window,
        objective,
        300.0,
        good,
        total,
        tuple((s, g, t) for s, (g, t) in zip(starts, counts, strict=False)),
    ),
    bucket_starts,
    positive,
    st.floats(0.5, 0.999),
    positive,
    st.floats(0.5, 1.0),
    finite,
    finite,
    st.lists(st.tuples(finite, finite), min_size=10, max_size=10),
)
workloads = st.builds(
    lambda memory, capacity, budget, sl, rates: WorkloadSnapshot(
        memory, capacity, budget, sl[0] if sl else None, sl[1] if sl else -math.inf, rates
    ),
    memories,
    capacities,
    st.none() | budgets,
    st.none() | st.tuples(st.integers(1, 100), times | st.just(math.inf)),
    st.lists(st.tuples(times, st.none() | st.floats(0.0, 1e6)), max_size=5).map(tuple),
)
jobs = st.builds(
    lambda last, times_: JobSnapshot(last, tuple(times_)),
    st.none() | times,
    st.lists(times, max_size=5).map(sorted),
)
snapshots = st.builds(
    StateSnapshot,
    times,
    st.dictionaries(keys, workloads, max_size=3),
    st.dictionaries(keys, jobs, max_size=3),
)


@given(snapshots)
def test_every_snapshot_survives_json_unchanged(snapshot: StateSnapshot) -> None:
    document = json.loads(json.dumps(encode(snapshot), allow_nan=False))
    back = decode(document)
    assert back == snapshot
    assert back is not None and back.same_memory(snapshot)


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in _leaves(v, (*path, i))] or [path]
    return [path]


garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@given(snapshots, st.data())
def test_a_damaged_document_never_raises(snapshot: StateSnapshot, data: st.DataObject) -> None:
    """Any one value replaced by garbage: a valid snapshot or ``None`` (a cold start)."""
    document = encode(snapshot)
    damaged = copy.deepcopy(document)
    path = data.draw(st.sampled_from(_leaves(damaged)))
    value = data.draw(garbage)
    if not path:
        damaged = value
    else:
        parent = damaged
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value
    result = decode(damaged)
    assert result is None or isinstance(result, StateSnapshot)
    if result is not None:  # what it accepted is a document of its own
        assert decode(json.loads(json.dumps(encode(result)))) == result
