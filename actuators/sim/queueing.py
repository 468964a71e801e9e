"""The latency engine: Poisson arrivals dispatched to FIFO replicas, solved with numpy.

Why a discrete-event simulation rather than a formula: latency quantiles must come from the
requests themselves (ARCHITECTURE §5), so that the controller cannot invert the simulator by
peeking at a closed form, and so that bursts, cold starts and uneven dispatch show up in the
tail the way they do on a real cluster.

How it stays fast: within a *segment* (an interval in which the set of ready replicas does
not change) every request's wait follows Lindley's recursion per replica,
``W_n = max(0, W_{n-1} + S_{n-1} - (a_n - a_{n-1}))``, whose closed form is
``W_n = P_n - min(0, min_{k<=n} P_k)`` with ``P`` the cumulative sum of
``X_n = S_{n-1} - (a_n - a_{n-1})``. Requests are grouped by replica (a stable sort), the
cumulative sum and minimum are taken over the whole array, and the groups are kept apart by
subtracting each group's base and offsetting groups so that a running minimum never crosses a
group boundary: all replicas of a workload in one pass. A replica's unfinished work at the
segment start enters as the service of a virtual request at the segment start.

Client timeout: a request whose wait would exceed ``timeout_s`` is dropped (it consumes no
service), which the closed form cannot express; replicas where that happens are finished with
a short sequential loop from the first drop on. It only runs under overload.

Randomness: arrivals come from one seeded stream and dispatch/service draws from another,
both keyed by (seed, workload, block of time) and generated per fixed block, so the arrivals
and each request's relative work are identical whatever the controller does and however the
caller slices time (common random numbers across policies).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from actuators.sim.batching import BatchReplica, Finished
from actuators.sim.load import LoadPattern
from actuators.sim.model import FloatArray, ModelParams

IntArray = npt.NDArray[np.intp]

ARRIVAL_BLOCK_S = 600.0
"""Arrivals are drawn per block of this many seconds (aligned to multiples of it)."""

RATE_GRID_S = 1.0
"""The load pattern's rate is taken as constant over sub-intervals of this length."""


# --------------------------------------------------------------------------------------------
# Arrivals
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrivals:
    """Requests arriving in an interval: times, dispatch draws in [0, 1), work multipliers;
    for a model with a token profile, each request's prefill share of its work and its
    output tokens (``None`` otherwise)."""

    times_s: FloatArray
    dispatch_u: FloatArray
    work: FloatArray
    prefill_share: FloatArray | None = None
    output_tokens: FloatArray | None = None

    def __len__(self) -> int:
        return len(self.times_s)

    def part(self, i0: int, i1: int) -> Arrivals:
        """Requests ``i0`` to ``i1 - 1``."""
        share, out = self.prefill_share, self.output_tokens
        return Arrivals(
            self.times_s[i0:i1],
            self.dispatch_u[i0:i1],
            self.work[i0:i1],
            None if share is None else share[i0:i1],
            None if out is None else out[i0:i1],
        )

    @staticmethod
    def joined(parts: list[Arrivals]) -> Arrivals:
        """The parts one after the other."""
        tokens = parts[0].prefill_share is not None
        return Arrivals(
            np.concatenate([p.times_s for p in parts]),
            np.concatenate([p.dispatch_u for p in parts]),
            np.concatenate([p.work for p in parts]),
            np.concatenate([p.prefill_share for p in parts if p.prefill_share is not None])
            if tokens
            else None,
            np.concatenate([p.output_tokens for p in parts if p.output_tokens is not None])
            if tokens
            else None,
        )


@dataclass(frozen=True, slots=True)
class _Block:
    start_s: float
    arrivals: Arrivals
    grid_edges_s: FloatArray
    cum_expected: FloatArray  # expected arrivals from the block start at each grid edge


def _key_int(block: int) -> int:
    """Non-negative seed material from a possibly negative block number."""
    return 2 * block if block >= 0 else -2 * block - 1


class ArrivalStream:
    """One workload's arrivals: a non-homogeneous Poisson process at the pattern's rate.

    Each block's arrival count is Poisson with the expected count; the times are the order
    statistics of uniforms mapped through the inverse of the cumulative rate.
    """

    def __init__(
        self,
        pattern: LoadPattern,
        model: ModelParams,
        *,
        seed: int,
        key: str,
        block_s: float = ARRIVAL_BLOCK_S,
        grid_s: float = RATE_GRID_S,
    ) -> None:
        self.pattern = pattern
        self.model = model
        self.seed = seed
        self.block_s = block_s
        self.grid_s = grid_s
        self._key = zlib.crc32(key.encode())
        self._blocks: dict[int, _Block] = {}

    def _block(self, k: int) -> _Block:
        cached = self._blocks.get(k)
        if cached is not None:
            return cached
        start = k * self.block_s
        rates = np.maximum(self.pattern.rates(start, start + self.block_s, self.grid_s), 0.0)
        edges = start + self.grid_s * np.arange(len(rates) + 1, dtype=np.float64)
        edges[-1] = start + self.block_s
        cum = np.concatenate(([0.0], np.cumsum(rates * np.diff(edges))))
        total = float(cum[-1])
        arrival_rng = np.random.default_rng([self.seed, self._key, _key_int(k), 0])
        n = int(arrival_rng.poisson(total)) if total > 0 else 0
        if n > 0:
            # Sorted uniforms in O(n): normalised partial sums of n + 1 exponentials.
            gaps = arrival_rng.standard_exponential(n + 1)
            sums = np.cumsum(gaps)
            u = sums[:-1] * (total / sums[-1])
            times = np.interp(u, cum, edges)
        else:
            times = np.empty(0)
        service_rng = np.random.default_rng([self.seed, self._key, _key_int(k), 1])
        dispatch = service_rng.random(n)
        tokens = self.model.tokens
        if tokens is None:
            arrivals = Arrivals(times, dispatch, self.model.work_multipliers(service_rng, n))
        else:
            d = tokens.draw(service_rng, n)
            arrivals = Arrivals(times, dispatch, d.work, d.prefill_share, d.output_tokens)
        block = _Block(start, arrivals, edges, cum)
        for old in [b for b in self._blocks if b < k - 1]:
            del self._blocks[old]
        self._blocks[k] = block
        return block

    def _blocks_of(self, t0_s: float, t1_s: float) -> range:
        first = math.floor(t0_s / self.block_s)
        last = max(first, math.ceil(t1_s / self.block_s) - 1)
        return range(first, last + 1)

    def between(self, t0_s: float, t1_s: float) -> Arrivals:
        """The requests arriving in ``[t0_s, t1_s)``."""
        parts: list[Arrivals] = []
        for k in self._blocks_of(t0_s, t1_s):
            a = self._block(k).arrivals
            i0, i1 = np.searchsorted(a.times_s, [t0_s, t1_s], side="left")
            parts.append(a.part(int(i0), int(i1)) if (i0, i1) != (0, len(a)) else a)
        if len(parts) == 1:
            return parts[0]
        return Arrivals.joined(parts)

    def expected(self, t0_s: float, t1_s: float) -> float:
        """The expected number of arrivals in ``[t0_s, t1_s)`` (the pattern's integral)."""
        total = 0.0
        for k in self._blocks_of(t0_s, t1_s):
            b = self._block(k)
            lo, hi = np.interp([t0_s, t1_s], b.grid_edges_s, b.cum_expected)
            total += float(hi - lo)
        return total


# --------------------------------------------------------------------------------------------
# FIFO replicas
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentResult:
    """What one segment did.

    ``latency_s`` has one entry per request, grouped by replica (arrival order within a
    replica); ``inf`` marks a request that failed (no ready replica) or timed out.
    """

    latency_s: FloatArray
    failed: int  # no ready replica
    timed_out: int  # would have waited longer than the client timeout
    busy_s: FloatArray  # per replica: time spent serving during the segment
    residual_s: FloatArray  # per replica: unfinished work at the segment end
    served_by_replica: IntArray
    order: IntArray | None = None
    """Which arrival each entry of ``latency_s`` is (``None``: no replica, arrival order)."""
    wait_s: FloatArray | None = None
    """Each entry's time queued before its service began (``None``: none was served)."""

    @property
    def served(self) -> int:
        return len(self.latency_s) - self.failed - self.timed_out


def serve_fifo(
    start_s: float,
    end_s: float,
    arrivals: Arrivals,
    *,
    service_s: FloatArray,
    residual_s: FloatArray,
    timeout_s: float = math.inf,
) -> SegmentResult:
    """Serve ``arrivals`` on FIFO replicas whose mean service times are ``service_s``.

    Request ``i`` goes to replica ``floor(dispatch_u[i] * k)`` (uniform random, like
    kube-proxy) and needs ``work[i] * service_s[replica]`` seconds. ``residual_s`` is each
    replica's unfinished work at ``start_s``. Purely computational.
    """
    k = len(service_s)
    n = len(arrivals)
    span = end_s - start_s
    if k == 0:
        return SegmentResult(
            np.full(n, np.inf), n, 0, np.empty(0), np.empty(0), np.empty(0, dtype=np.intp)
        )
    if n == 0:
        residual_end = np.maximum(residual_s - span, 0.0)
        return SegmentResult(
            np.empty(0), 0, 0, residual_s - residual_end, residual_end, np.zeros(k, np.intp)
        )
    replica = np.minimum((arrivals.dispatch_u * k).astype(np.intp), k - 1)
    order = np.argsort(replica, kind="stable")
    rr = replica[order]
    t = arrivals.times_s[order]
    s = arrivals.work[order] * service_s[rr]
    counts = np.bincount(replica, minlength=k)
    ends = np.cumsum(counts)
    starts = ends - counts
    nonempty = counts > 0
    first = np.zeros(n, dtype=bool)
    first[starts[nonempty]] = True

    prev_t = np.empty(n)
    prev_t[1:] = t[:-1]
    prev_t[first] = start_s
    prev_s = np.empty(n)
    prev_s[1:] = s[:-1]
    prev_s[first] = residual_s[rr[first]]
    x = prev_s - (t - prev_t)
    c = np.cumsum(x)
    base = (c - x)[first]
    p = c - np.repeat(base, counts[nonempty])
    # Segmented running minimum: later groups are shifted below every earlier value.
    gap = float(p.max() - p.min()) + 1.0
    shift = rr * gap
    m = np.minimum.accumulate(p - shift) + shift
    w = p - np.minimum(m, 0.0)

    accepted = np.ones(n, dtype=bool)
    last = ends[nonempty] - 1
    residual_end = np.maximum(residual_s - span, 0.0)
    residual_end[nonempty] = np.maximum(w[last] + s[last] - (end_s - t[last]), 0.0)
    if w.max() > timeout_s:
        for g in np.flatnonzero(nonempty):
            lo, hi = int(starts[g]), int(ends[g])
            late = np.flatnonzero(w[lo:hi] > timeout_s)
            if len(late):
                residual_end[g] = _serve_impatient(
                    t, s, w, accepted, j=lo + int(late[0]), hi=hi, end_s=end_s, timeout_s=timeout_s
                )

    latency = np.where(accepted, w + s, np.inf)
    wait = np.where(accepted, w, np.inf)
    work_done = np.bincount(rr, weights=np.where(accepted, s, 0.0), minlength=k)
    busy = residual_s + work_done - residual_end
    timed_out = int(n - np.count_nonzero(accepted))
    served = np.bincount(rr[accepted], minlength=k)
    return SegmentResult(latency, 0, timed_out, busy, residual_end, served, order, wait)


def _serve_impatient(
    t: FloatArray,
    s: FloatArray,
    w: FloatArray,
    accepted: npt.NDArray[np.bool_],
    *,
    j: int,
    hi: int,
    end_s: float,
    timeout_s: float,
) -> float:
    """Redo one replica's requests ``j..hi-1`` sequentially, dropping those that would wait
    longer than ``timeout_s`` (``w[j]`` is exact: nothing was dropped before ``j``).

    Writes ``w`` and ``accepted`` in place; returns the unfinished work at ``end_s``.
    """
    times: list[float] = t[j:hi].tolist()
    services: list[float] = s[j:hi].tolist()
    waits = [0.0] * len(times)
    ok = [True] * len(times)
    work = float(w[j])  # unfinished work just before the arrival at ``tp``
    tp = times[0]
    for i, (ti, si) in enumerate(zip(times, services, strict=True)):
        work = max(0.0, work - (ti - tp))
        tp = ti
        waits[i] = work
        if work > timeout_s:
            ok[i] = False
        else:
            work += si
    w[j:hi] = waits
    accepted[j:hi] = ok
    return max(0.0, work - (end_s - tp))


# --------------------------------------------------------------------------------------------
# Continuously batching replicas (an LLM with ``TokenProfile.batching``)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchedResult:
    """What continuously batching replicas did in one segment: one entry per request that
    left them (completed, timed out, or failed with no ready replica), in the order they left.

    ``e2e_s``, ``ttft_s`` and ``tpot_s`` are ``inf`` for a request that failed or timed out.
    """

    e2e_s: FloatArray
    ttft_s: FloatArray
    tpot_s: FloatArray
    failed: int
    timed_out: int
    busy_s: FloatArray  # per ready replica: time spent prefilling or decoding

    @property
    def served(self) -> int:
        return len(self.e2e_s) - self.failed - self.timed_out

    def signal(self, metric: str) -> FloatArray:
        """The latency an SLO on ``metric`` (``e2e``, ``ttft``, ``tpot``) judges."""
        return {"ttft": self.ttft_s, "tpot": self.tpot_s}.get(metric, self.e2e_s)


def serve_batched(
    end_s: float,
    arrivals: Arrivals,
    prompt_tokens: FloatArray,
    replicas: list[BatchReplica],
    draining: list[BatchReplica],
    *,
    first_id: int = 0,
) -> BatchedResult:
    """Dispatch ``arrivals`` to ``replicas`` (uniform random, like ``serve_fifo``), run them
    and the ``draining`` ones (removed pods finishing their requests) to ``end_s``.

    Request ``i`` is known to the replicas as ``first_id + i``; the replicas' state is updated
    in place (they carry requests across segments).
    """
    k = len(replicas)
    n = len(arrivals)
    if k == 0:
        lost = np.full(n, np.inf)
        drained = [f for r in draining for f in r.advance(end_s)]
        return _batched(drained, failed=n, busy_s=np.empty(0), lost=lost)
    before = np.array([r.busy_s for r in replicas])
    replica = np.minimum((arrivals.dispatch_u * k).astype(np.intp), k - 1).tolist()
    output = arrivals.output_tokens
    out_tokens = np.ones(n) if output is None else output
    done: list[Finished] = []
    for i, (t, j, p, o) in enumerate(
        zip(arrivals.times_s.tolist(), replica, prompt_tokens.tolist(), out_tokens.tolist(),
            strict=True)
    ):  # fmt: skip
        done.extend(replicas[j].submit(first_id + i, t, int(p), int(o)))
    for r in (*replicas, *draining):
        done.extend(r.advance(end_s))
    busy = np.array([r.busy_s for r in replicas]) - before
    return _batched(done, failed=0, busy_s=busy, lost=np.empty(0))


def _batched(
    done: list[Finished], *, failed: int, busy_s: FloatArray, lost: FloatArray
) -> BatchedResult:
    e2e = np.array([f.e2e_s for f in done], dtype=np.float64)
    ttft = np.array([f.ttft_s for f in done], dtype=np.float64)
    tpot = np.array([f.tpot_s for f in done], dtype=np.float64)
    timed_out = int(np.count_nonzero(~np.isfinite(e2e)))
    return BatchedResult(
        np.concatenate([e2e, lost]),
        np.concatenate([ttft, lost]),
        np.concatenate([tpot, lost]),
        failed,
        timed_out,
        busy_s,
    )
