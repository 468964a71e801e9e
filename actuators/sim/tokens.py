"""Token-aware service times for simulated LLM servers: prefill per prompt token, decode per
output token, lengths drawn from a real trace.

An LLM request's GPU work is ``prefill_s_per_token * prompt + decode_s_per_token * output``: its
first token comes after the prefill, the rest one decode step each. So time to first token
is the wait plus the prefill, and time per output token is the decode part over the output's
length; end-to-end latency grows with the output, which is why LLM SLOs are set on the first
two (#28 E9). The lengths are the Azure LLM inference trace's (2023, code:
``ContextTokens``, ``GeneratedTokens``), drawn with replacement.

Only a model that carries a ``TokenProfile`` draws its work this way; every other model keeps
its gamma service times, so the default simulator is unchanged to the bit. By default a
replica serves one request at a time (FIFO, like the rest of the simulator): time per output
token depends on the slice, not on the queue. A profile with ``batching`` serves its requests
by continuous batching instead (``actuators.sim.batching``): time to first token is the
scheduler's queue plus the prefill, time per output token grows with the batch.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actuators.sim.batching import ContinuousBatching
from actuators.sim.model import FloatArray

AZURE_CODE_TRACE = "azure_llm2023_code_requests.csv"
"""The file of the Azure LLM inference trace (code) in the traces folder."""


@dataclass(frozen=True, slots=True)
class TokenDraws:
    """Per request: unit-mean work multiplier, the prefill's share of the work, output tokens."""

    work: FloatArray
    prefill_share: FloatArray
    output_tokens: FloatArray


@dataclass(frozen=True, slots=True)
class TokenProfile:
    """Prompt and output lengths (one pair per trace request) and the relative cost of a
    prefill token and a decode step (the model's ``t0_s`` sets the absolute mean)."""

    prompt_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]
    prefill_s_per_token: float = 0.0002
    decode_s_per_token: float = 0.02
    batching: ContinuousBatching | None = None
    """Serve by continuous batching (``None``: one request at a time per replica)."""

    def __post_init__(self) -> None:
        if not self.prompt_tokens or len(self.prompt_tokens) != len(self.output_tokens):
            raise ValueError("a token profile needs as many prompt as output lengths, >= 1")
        if min(self.output_tokens) < 1 or min(self.prompt_tokens) < 0:
            raise ValueError("output lengths must be >= 1 and prompt lengths >= 0")
        if not (self.prefill_s_per_token > 0 and self.decode_s_per_token > 0):
            raise ValueError("per-token times must be positive")

    def mean_work_s(self) -> float:
        """A trace request's mean work in the per-token units: prefill plus decode."""
        prompt = np.asarray(self.prompt_tokens, dtype=np.float64)
        output = np.asarray(self.output_tokens, dtype=np.float64)
        return float(np.mean(self.prefill_s_per_token * prompt + self.decode_s_per_token * output))

    def card_times(self, t0_s: float) -> tuple[float, float]:
        """``(decode step, prefill per prompt token)`` in seconds on a whole card, scaled so
        that a request alone on it takes ``t0_s`` on average."""
        scale = t0_s / self.mean_work_s()
        return self.decode_s_per_token * scale, self.prefill_s_per_token * scale

    def prompt_tokens_of(self, draws_work: FloatArray, prefill_share: FloatArray) -> FloatArray:
        """Each request's prompt length back from its unit-mean work and prefill share."""
        return np.rint(draws_work * prefill_share * self.mean_work_s() / self.prefill_s_per_token)

    def draw(self, rng: np.random.Generator, n: int) -> TokenDraws:
        """``n`` requests' lengths, as unit-mean work and the prefill's share of it."""
        prompt = np.asarray(self.prompt_tokens, dtype=np.float64)
        output = np.asarray(self.output_tokens, dtype=np.float64)
        prefill = self.prefill_s_per_token * prompt
        work = prefill + self.decode_s_per_token * output
        idx = rng.integers(len(prompt), size=n)
        return TokenDraws(work[idx] / work.mean(), prefill[idx] / work[idx], output[idx])


def load_token_lengths(path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(prompt, output)`` lengths from a CSV with ``ContextTokens`` and ``GeneratedTokens``
    columns (the Azure LLM inference traces); rows with no output token are left out."""
    prompt: list[int] = []
    output: list[int] = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            p, g = int(row["ContextTokens"]), int(row["GeneratedTokens"])
            if g >= 1 and p >= 0:
                prompt.append(p)
                output.append(g)
    if not prompt:
        raise ValueError(f"{path}: no request with ContextTokens and GeneratedTokens >= 1")
    return tuple(prompt), tuple(output)
