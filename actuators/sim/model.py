"""The hidden truth about each simulated model: how fast it serves on a given GPU slice.

The controller must never read these parameters; it has to infer them from metrics, exactly
as it would on a real cluster. Only the simulator (and the benchmark's oracle) import this.

The reference model (ARCHITECTURE §5): a replica holding ``s`` % of a card serves at
``mu(s) = min(s, s_sat) / (s_sat * t0)`` requests per second, i.e. its mean service time is
``t(s) = t0 * s_sat / min(s, s_sat)``. A slice above ``s_sat`` buys nothing; a smaller one
lengthens every request in proportion. Individual service times are gamma distributed with
that mean and coefficient of variation ``service_cv`` (``service_cv=1`` is exponential, which
is what makes the M/M/1 check in the tests exact; ``0`` is deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

if TYPE_CHECKING:
    from actuators.sim.tokens import TokenProfile


@dataclass(frozen=True, slots=True)
class ModelParams:
    """Per-model parameters of the simulated inference server (hidden from the controller)."""

    t0_s: float  # mean service time on a whole card (when s_sat is 100 %)
    s_sat_pct: float  # share of a card beyond which the model does not speed up
    service_cv: float = 0.5  # coefficient of variation of one request's service time
    memory_mib: int = 8192  # GPU memory one replica needs; a smaller slice crash-loops
    cold_start_s: float = 60.0  # pod start plus model load, before a replica serves
    samples_per_request: float = 1.0  # data samples each served request adds (retraining)
    tokens: TokenProfile | None = None  # an LLM: work from prompt and output lengths (tokens)

    def __post_init__(self) -> None:
        if not self.t0_s > 0:
            raise ValueError(f"t0_s must be positive, got {self.t0_s}")
        if not 0 < self.s_sat_pct <= 100:
            raise ValueError(f"s_sat_pct must be in (0, 100], got {self.s_sat_pct}")
        if self.service_cv < 0:
            raise ValueError(f"service_cv must be >= 0, got {self.service_cv}")
        if self.cold_start_s < 0:
            raise ValueError(f"cold_start_s must be >= 0, got {self.cold_start_s}")

    def effective_share(self, slice_pct: float) -> float:
        """The part of a slice the model can use, as a fraction of a card."""
        return min(slice_pct, self.s_sat_pct) / 100.0

    def service_rate_rps(self, slice_pct: float) -> float:
        """``mu(s)``: requests per second one replica with this slice completes when busy."""
        return min(slice_pct, self.s_sat_pct) / (self.s_sat_pct * self.t0_s)

    def mean_service_s(self, slice_pct: float) -> float:
        """``t(s) = t0 * s_sat / min(s, s_sat)``."""
        if slice_pct <= 0:
            return float("inf")
        return self.t0_s * self.s_sat_pct / min(slice_pct, self.s_sat_pct)

    def work_multipliers(self, rng: np.random.Generator, n: int) -> FloatArray:
        """``n`` unit-mean service-time multipliers with this model's coefficient of variation.

        Drawn once per request, independent of the slice, so the same request costs the same
        relative work whichever replica serves it (common random numbers across policies).
        """
        if self.service_cv == 0:
            return np.ones(n)
        shape = 1.0 / (self.service_cv * self.service_cv)
        return rng.gamma(shape, 1.0 / shape, size=n)
