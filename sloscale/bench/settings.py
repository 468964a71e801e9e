"""What one ``sloscale bench`` run is asked to do, validated at the boundary.

Purely computational, no side effects: a frozen ``BenchSettings`` and the one-line
``BenchError`` that the CLI prints with exit code 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

POLICY_NAMES = ("sloscale", "hpa", "kpa", "static", "oracle")
"""Every policy the bench knows, in the order the table lists them."""

DEFAULT_HPA_TARGETS_PCT = (40, 50, 60, 70, 80)
"""The utilisation targets ``hpa*`` tries: the best a careful team could pick in hindsight."""

HPA_DEFAULT_TARGET_PCT = 70
"""The target of the plain ``hpa`` row."""


class BenchError(ValueError):
    """Bad bench input (trace, option, impossible settings): one line, exit code 2."""


@dataclass(frozen=True, slots=True)
class BenchSettings:
    """Options of one bench run; ``hours=None`` replays the whole trace."""

    trace: Path
    policies: tuple[str, ...] = POLICY_NAMES
    hours: float | None = None
    cluster_gpus: int = 8
    peak_share: float = 0.7
    slo_ms: float = 2000.0
    seed: int = 1
    hpa_targets_pct: tuple[int, ...] = DEFAULT_HPA_TARGETS_PCT
    tick_s: float = 15.0
    workers: int = 1

    def validate(self) -> BenchSettings:
        """Raise ``BenchError`` for settings no run could satisfy; return ``self``."""
        unknown = [p for p in self.policies if p not in POLICY_NAMES]
        if unknown:
            raise BenchError(
                f"unknown policy {unknown[0]!r}; choose from {', '.join(POLICY_NAMES)}"
            )
        if not self.policies:
            raise BenchError("no policy to run")
        if len(set(self.policies)) != len(self.policies):
            raise BenchError("a policy is listed twice")
        if self.hours is not None and not (math.isfinite(self.hours) and self.hours > 0):
            raise BenchError(f"--hours must be positive, got {self.hours:g}")
        if self.cluster_gpus < 1:
            raise BenchError(f"--cluster-gpus must be at least 1, got {self.cluster_gpus}")
        if not (math.isfinite(self.peak_share) and 0 < self.peak_share <= 1):
            raise BenchError(
                f"--peak-share {self.peak_share:g} is impossible: the peak must fit the "
                "inference pool (0 < F <= 1)"
            )
        if not (math.isfinite(self.slo_ms) and self.slo_ms > 0):
            raise BenchError(f"--slo-ms must be positive, got {self.slo_ms:g}")
        if any(not 0 < t <= 100 for t in self.hpa_targets_pct):
            raise BenchError("HPA utilisation targets must be in (0, 100] %")
        if self.workers < 1:
            raise BenchError(f"--workers must be at least 1, got {self.workers}")
        return self
