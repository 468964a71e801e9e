"""Continuous batching (``actuators.sim.batching``): the arithmetic of one replica.

Requests join the running batch while it has slots and KV-cache room; each is prefilled in
turn (decode pauses meanwhile) and then emits one token per decode step of the whole batch,
a step with ``n`` sequences taking ``step_s * (1 + step_growth * (n - 1))``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from actuators.sim.batching import BatchLimits, BatchReplica, ContinuousBatching, Finished
from actuators.sim.queueing import Arrivals, serve_batched


def limits(**kw: float) -> BatchLimits:
    base: dict[str, float] = {
        "step_s": 0.1,
        "prefill_s_per_token": 0.001,
        "max_num_seqs": 8,
        "kv_cache_tokens": 10_000,
        "step_growth": 0.5,
    }
    base.update(kw)
    return BatchLimits(
        step_s=base["step_s"],
        prefill_s_per_token=base["prefill_s_per_token"],
        max_num_seqs=int(base["max_num_seqs"]),
        kv_cache_tokens=int(base["kv_cache_tokens"]),
        step_growth=base["step_growth"],
    )


def run(replica: BatchReplica, requests: list[tuple[float, int, int]]) -> dict[int, Finished]:
    """Submit ``(arrival_s, prompt, output)`` in order, run to the end; by request index."""
    out: list[Finished] = []
    for i, (t, prompt, output) in enumerate(requests):
        out += replica.submit(i, t, prompt, output)
    out += replica.advance(1e6)
    return {f.request: f for f in out}


def test_a_lone_request_prefills_then_decodes_one_token_per_step() -> None:
    (f,) = run(BatchReplica(limits()), [(0.0, 1000, 11)]).values()
    assert f.ttft_s == pytest.approx(1.0)  # 1000 tokens x 1 ms
    assert f.e2e_s == pytest.approx(2.0)  # + 10 more tokens x 0.1 s
    assert f.tpot_s == pytest.approx(0.1)


def test_requests_share_decode_steps_which_lengthen_with_the_batch() -> None:
    done = run(BatchReplica(limits()), [(0.0, 0, 11), (0.0, 0, 11)])
    # both decode together: a step of 2 takes 0.1 * (1 + 0.5) = 0.15 s; 10 steps
    assert [done[i].ttft_s for i in (0, 1)] == [0.0, 0.0]
    assert [done[i].e2e_s for i in (0, 1)] == pytest.approx([1.5, 1.5])
    assert done[0].tpot_s == pytest.approx(0.15)


def test_a_full_batch_makes_the_next_request_wait_for_a_slot() -> None:
    done = run(BatchReplica(limits(max_num_seqs=1)), [(0.0, 0, 11), (0.0, 0, 11)])
    assert done[1].ttft_s == pytest.approx(1.0)  # the first's 10 steps of 0.1 s
    assert done[1].e2e_s == pytest.approx(2.0)


def test_the_kv_cache_admits_only_what_it_holds() -> None:
    replica = BatchReplica(limits(kv_cache_tokens=100))
    done = run(replica, [(0.0, 0, 60), (0.0, 0, 60)])
    assert done[1].ttft_s == pytest.approx(5.9)  # 59 steps of the first, alone
    # a request larger than the cache is still served when it is alone
    (big,) = run(BatchReplica(limits(kv_cache_tokens=10)), [(0.0, 0, 60)]).values()
    assert big.e2e_s == pytest.approx(5.9)


def test_a_prefill_pauses_the_batch_decode() -> None:
    done = run(BatchReplica(limits()), [(0.0, 0, 11), (0.25, 500, 2)])
    # request 0 decodes alone until 0.25 (2.5 tokens), then the 0.5 s prefill of request 1
    assert done[1].ttft_s == pytest.approx(0.5)
    # from 0.75 both decode (step 0.15) until request 1's one token: 0.9; then request 0 alone
    # has 10 - 2.5 - 1 = 6.5 tokens left at 0.1 s: 0.9 + 0.65 = 1.55
    assert done[1].e2e_s == pytest.approx(0.9 - 0.25)
    assert done[0].e2e_s == pytest.approx(1.55)


def test_a_request_waiting_past_the_client_timeout_is_dropped() -> None:
    replica = BatchReplica(limits(max_num_seqs=1), timeout_s=0.5)
    done = run(replica, [(0.0, 0, 11), (0.0, 0, 11)])
    assert math.isinf(done[1].e2e_s) and math.isinf(done[1].ttft_s)
    assert replica.in_flight == 0


def test_advancing_in_pieces_is_advancing_at_once() -> None:
    rng = np.random.default_rng(3)
    reqs = [
        (float(t), int(p), int(o))
        for t, p, o in zip(
            np.cumsum(rng.exponential(0.2, 200)),
            rng.integers(0, 3000, 200),
            rng.integers(1, 80, 200),
            strict=True,
        )
    ]
    whole = run(BatchReplica(limits(max_num_seqs=4, kv_cache_tokens=8000)), reqs)
    pieces = BatchReplica(limits(max_num_seqs=4, kv_cache_tokens=8000))
    out: list[Finished] = []
    for i, (t, p, o) in enumerate(reqs):
        out += pieces.advance(t - 0.07)
        out += pieces.advance(t - 0.01)
        out += pieces.submit(i, t, p, o)
    out += pieces.advance(1e6)
    assert {f.request: f.done_s for f in out} == pytest.approx(
        {i: f.done_s for i, f in whole.items()}
    )


def test_a_slice_slows_every_step_and_shrinks_the_batch() -> None:
    card = ContinuousBatching(max_num_seqs=32, kv_cache_tokens=100_000, step_growth=0.1)
    half = card.limits(share=0.5, step_s=0.02, prefill_s_per_token=0.0001)
    assert half.step_s == pytest.approx(0.04) and half.prefill_s_per_token == pytest.approx(2e-4)
    assert (half.max_num_seqs, half.kv_cache_tokens) == (16, 50_000)
    assert card.limits(share=0.01, step_s=1, prefill_s_per_token=1).max_num_seqs == 1


def test_first_tokens_stay_fast_while_the_batch_slows_whole_answers() -> None:
    """One replica, the same requests at a light and a heavy rate: time to first token barely
    moves (the batch has room), end-to-end latency grows with the batch's step time."""
    rng = np.random.default_rng(0)
    prompt, output = rng.integers(500, 3000, 3000), rng.integers(5, 60, 3000)
    lim = ContinuousBatching(max_num_seqs=32, step_growth=0.1).limits(
        share=1.0, step_s=0.015, prefill_s_per_token=0.00005
    )
    p95: dict[float, tuple[float, float]] = {}
    for rate in (0.5, 4.0):
        times = np.cumsum(rng.exponential(1.0 / rate, 3000))
        done = run(BatchReplica(lim), list(zip(times.tolist(), prompt, output, strict=True)))
        ttft = np.percentile([f.ttft_s for f in done.values()], 95)
        e2e = np.percentile([f.e2e_s for f in done.values()], 95)
        p95[rate] = (float(ttft), float(e2e))
    # first tokens: the prefill and a short queue for it (p95 0.15 -> 0.25 s)
    assert p95[4.0][0] - p95[0.5][0] < 0.15
    # answers: decode steps of a batch of ~10 rather than ~1 (p95 1.0 -> 2.9 s)
    assert p95[4.0][1] > 2.5 * p95[0.5][1]


def test_serve_batched_dispatches_and_drains_removed_replicas() -> None:
    arrivals = Arrivals(
        np.array([0.0, 0.0]),
        np.array([0.1, 0.9]),
        np.ones(2),
        np.zeros(2),
        np.array([11.0, 11.0]),
    )
    a, b = BatchReplica(limits()), BatchReplica(limits())
    r = serve_batched(0.5, arrivals, np.zeros(2), [a, b], [])
    assert len(r.e2e_s) == 0 and a.in_flight == b.in_flight == 1  # one each, both decoding
    assert r.busy_s.tolist() == pytest.approx([0.5, 0.5])
    empty = Arrivals(np.empty(0), np.empty(0), np.empty(0), np.empty(0), np.empty(0))
    r = serve_batched(5.0, empty, np.empty(0), [a], [b])  # b was removed: it drains
    assert r.e2e_s.tolist() == pytest.approx([1.0, 1.0]) and r.served == 2
    r = serve_batched(6.0, arrivals, np.zeros(2), [], [])
    assert r.failed == 2 and np.isinf(r.ttft_s).all()


def test_first_tokens_are_kept_as_they_come_when_tracked() -> None:
    # what an engine's TTFT histogram needs: the first token when it comes, long before the
    # answer completes (the emulator's /metrics observes it then)
    replica = BatchReplica(limits(), track_first_tokens=True)
    replica.submit(0, 0.0, 100, 50)  # prefill 0.1 s, then 49 steps of 0.1 s
    assert replica.advance(0.5) == []  # no answer yet
    assert replica.take_first_tokens() == [(0, 0.0, pytest.approx(0.1))]
    assert replica.take_first_tokens() == []  # each one once
    (done,) = replica.advance(10.0)
    assert done.first_token_s == pytest.approx(0.1) and done.done_s == pytest.approx(5.0)
    untracked = BatchReplica(limits())
    untracked.submit(0, 0.0, 100, 50)
    untracked.advance(0.5)
    assert untracked.take_first_tokens() == []  # the simulator keeps none
