"""Continuous batching: how an LLM server (vLLM, SGLang, TGI) serves many requests at once.

Why it exists: a FIFO server that finishes one request before starting the next makes time to
first token the end-to-end latency minus the request's own decode, so a TTFT SLO sizes like an
end-to-end one. Real LLM servers batch continuously: a request joins the running batch as
soon as a slot and KV-cache room are free, its prompt is prefilled, then it emits one token per
decode *step* of the whole batch. Time to first token is then the scheduler's queue plus the
prefill (it grows with load once the batch is full), time per output token is the step time
(it grows with the batch), and end-to-end latency is about ``ttft + output_tokens * tpot``,
dominated by the answer's length (#28 E9). The simulator (``actuators.sim.cluster``) and the
load-test emulator (``loadtests.emulator``) both run this one model.

The model, per replica (parameters of a whole card in ``ContinuousBatching``, the replica's
own in ``BatchLimits``):

- **admission**: FIFO from the replica's waiting queue while the running batch holds fewer
  than ``max_num_seqs`` sequences and the KV cache holds the request's prompt and output
  tokens (``kv_cache_tokens``; reserved whole at admission, so nothing is ever preempted); a
  request alone on the replica is always admitted. A request that waited longer than the
  client timeout before admission is dropped (timed out);
- **prefill**: admitted requests are prefilled one at a time in admission order,
  ``prompt_tokens * prefill_s_per_token`` each; a step that prefills does not decode
  (prefill-first scheduling, vLLM's default without chunked prefill). The first token comes
  at the end of the prefill;
- **decode**: every sequence past its prefill emits one token per step; a step with ``n``
  sequences takes ``step_s * (1 + step_growth * (n - 1))``: memory-bound (almost free to
  add a sequence) at small ``n``, compute-bound at large ``n`` where throughput approaches
  ``1 / (step_s * step_growth)`` tokens per second. A sequence leaves after its last token,
  freeing its slot and its KV-cache room at once.

A slice of a card scales it all: times by ``s_sat / min(s, s_sat)`` (as the reference model's
service time, ARCHITECTURE §5) and the batch limits (slots and KV cache) by
``min(s, s_sat) / s_sat``, at least one sequence.

The replica is simulated event by event with a virtual decode clock (tokens emitted by any
sequence decoding since the replica started): a sequence admitted to decoding at virtual time
``V`` with ``m`` tokens still to emit finishes at ``V + m``, so the next completion is the
heap's minimum and the wall time to it follows from the current step time. Purely
computational: time is passed in.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

_EPS_TOKENS = 1e-9


@dataclass(frozen=True, slots=True)
class ContinuousBatching:
    """A whole card's batch limits and how a decode step grows with the batch (vLLM's
    ``--max-num-seqs`` and its KV-cache size in tokens). Opt-in, on a ``TokenProfile``."""

    max_num_seqs: int = 32
    kv_cache_tokens: int = 200_000
    step_growth: float = 0.1

    def __post_init__(self) -> None:
        if self.max_num_seqs < 1 or self.kv_cache_tokens < 1:
            raise ValueError("max_num_seqs and kv_cache_tokens must be >= 1")
        if not 0 <= self.step_growth <= 1:
            raise ValueError(f"step_growth must be in [0, 1], got {self.step_growth}")

    def limits(self, *, share: float, step_s: float, prefill_s_per_token: float) -> BatchLimits:
        """A replica's limits on ``share`` (``min(s, s_sat) / s_sat``, in (0, 1]) of what the
        model can use, from a whole card's ``step_s`` and ``prefill_s_per_token``."""
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        return BatchLimits(
            step_s=step_s / share,
            prefill_s_per_token=prefill_s_per_token / share,
            max_num_seqs=max(1, math.floor(self.max_num_seqs * share + 1e-9)),
            kv_cache_tokens=max(1, math.floor(self.kv_cache_tokens * share + 1e-9)),
            step_growth=self.step_growth,
        )


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """One replica's batching parameters (its slice applied)."""

    step_s: float  # one decode step with a single sequence
    prefill_s_per_token: float
    max_num_seqs: int
    kv_cache_tokens: int
    step_growth: float

    def step_time_s(self, n: int) -> float:
        """A decode step's wall time with ``n >= 1`` sequences decoding."""
        return self.step_s * (1.0 + self.step_growth * (n - 1))


@dataclass(frozen=True, slots=True)
class Finished:
    """A request that left a replica: completed (``done_s`` finite) or timed out waiting
    (``first_token_s`` and ``done_s`` are ``inf``)."""

    request: int
    arrival_s: float
    first_token_s: float
    done_s: float
    output_tokens: int

    @property
    def ttft_s(self) -> float:
        return self.first_token_s - self.arrival_s

    @property
    def e2e_s(self) -> float:
        return self.done_s - self.arrival_s

    @property
    def tpot_s(self) -> float:
        """Mean time between output tokens (0 for a one-token answer: it had none)."""
        if self.output_tokens <= 1 or not math.isfinite(self.done_s):
            return 0.0 if math.isfinite(self.done_s) else math.inf
        return (self.done_s - self.first_token_s) / (self.output_tokens - 1)


@dataclass(slots=True)
class _Request:
    request: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    first_token_s: float = math.inf


@dataclass
class BatchReplica:
    """One continuously batching replica; ``submit`` requests in time order and ``advance``
    the clock, which returns the requests that left (completed or timed out)."""

    limits: BatchLimits
    timeout_s: float = math.inf
    now_s: float = 0.0
    busy_s: float = 0.0
    """Time spent prefilling or decoding (the GPU's busy time)."""
    track_first_tokens: bool = False
    """Keep each first token as it comes (``take_first_tokens``): an engine observes its TTFT
    histogram then, not when the answer completes (the emulator's ``/metrics``)."""
    _first_tokens: list[tuple[int, float, float]] = field(default_factory=list)
    _waiting: deque[_Request] = field(default_factory=deque)
    _prefill: deque[_Request] = field(default_factory=deque)
    _prefill_end_s: float = math.inf
    _decoding: list[tuple[float, int, _Request]] = field(default_factory=list)
    _virtual: float = 0.0
    _kv_used: int = 0

    @property
    def in_flight(self) -> int:
        """Requests waiting, prefilling or decoding."""
        return len(self._waiting) + len(self._prefill) + len(self._decoding)

    @property
    def batch_size(self) -> int:
        """Sequences in the running batch (prefilling or decoding)."""
        return len(self._prefill) + len(self._decoding)

    def take_first_tokens(self) -> list[tuple[int, float, float]]:
        """``(request, arrival_s, first_token_s)`` of each first token since the last call, in
        order (only with ``track_first_tokens``)."""
        out, self._first_tokens = self._first_tokens, []
        return out

    def submit(
        self, request: int, arrival_s: float, prompt_tokens: int, output_tokens: int
    ) -> list[Finished]:
        """A request arrives at ``arrival_s`` (not before the replica's clock)."""
        out = self.advance(arrival_s)
        self._waiting.append(_Request(request, arrival_s, prompt_tokens, max(1, output_tokens)))
        self._admit(out)
        return out

    def advance(self, until_s: float) -> list[Finished]:
        """Run the replica to ``until_s``; the requests that left on the way, in order."""
        out: list[Finished] = []
        lim = self.limits
        until_s = max(until_s, self.now_s)
        while True:
            t = self.now_s
            if self._prefill:
                t_next = self._prefill_end_s
            elif self._decoding:
                step = lim.step_time_s(len(self._decoding))
                t_next = t + (self._decoding[0][0] - self._virtual) * step
            else:
                self.now_s = max(t, until_s)
                break
            if t_next > until_s:
                if not self._prefill:
                    self._virtual += (until_s - t) / lim.step_time_s(len(self._decoding))
                self.busy_s += max(0.0, until_s - t)
                self.now_s = max(t, until_s)
                break
            self.busy_s += t_next - t
            self.now_s = t_next
            if self._prefill:
                self._end_prefill(out)
            else:
                self._virtual = self._decoding[0][0]
                while self._decoding and self._decoding[0][0] <= self._virtual + _EPS_TOKENS:
                    _, _, r = heapq.heappop(self._decoding)
                    self._finish(r, out)
            self._admit(out)
        self._expire(out)
        return out

    def _end_prefill(self, out: list[Finished]) -> None:
        r = self._prefill.popleft()
        r.first_token_s = self.now_s
        if self.track_first_tokens:
            self._first_tokens.append((r.request, r.arrival_s, r.first_token_s))
        if r.output_tokens <= 1:
            self._finish(r, out)
        else:
            finish = self._virtual + (r.output_tokens - 1)
            heapq.heappush(self._decoding, (finish, r.request, r))
        self._start_prefill()

    def _start_prefill(self) -> None:
        if self._prefill:
            head = self._prefill[0]
            self._prefill_end_s = self.now_s + head.prompt_tokens * self.limits.prefill_s_per_token
        else:
            self._prefill_end_s = math.inf

    def _finish(self, r: _Request, out: list[Finished]) -> None:
        self._kv_used -= r.prompt_tokens + r.output_tokens
        out.append(Finished(r.request, r.arrival_s, r.first_token_s, self.now_s, r.output_tokens))

    def _admit(self, out: list[Finished]) -> None:
        lim = self.limits
        self._expire(out)
        while self._waiting and self.batch_size < lim.max_num_seqs:
            r = self._waiting[0]
            need = r.prompt_tokens + r.output_tokens
            if self.batch_size and self._kv_used + need > lim.kv_cache_tokens:
                break
            self._waiting.popleft()
            self._kv_used += need
            self._prefill.append(r)
            if len(self._prefill) == 1:
                self._start_prefill()

    def _expire(self, out: list[Finished]) -> None:
        """Drop the waiting requests whose client gave up (FIFO: the oldest first)."""
        while self._waiting and self.now_s - self._waiting[0].arrival_s > self.timeout_s:
            r = self._waiting.popleft()
            out.append(Finished(r.request, r.arrival_s, math.inf, math.inf, r.output_tokens))
