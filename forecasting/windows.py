"""NaN-aware window means over a regularly spaced series, O(1) per window.

Every model here asks the same question thousands of times — "what was the mean rate over
steps ``[a, b)``?" at every calibration origin, for every horizon — so a series is turned once
into cumulative sums of its present values and of its present-point counts. A missing point
(NaN) is neither zero nor anything else: it simply does not count, and a window with no
present point has no mean (NaN).

Purely computational, no side effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from forecasting.base import FloatArray, History

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S


@dataclass(frozen=True)
class Windows:
    """A series plus prefix sums; index ``i`` covers ``[start_s + i*step_s, ... + step_s)``."""

    start_s: float
    step_s: float
    values: FloatArray
    _csum: FloatArray = field(init=False, repr=False, compare=False)
    _ccount: FloatArray = field(init=False, repr=False, compare=False)
    _dsum: FloatArray = field(init=False, repr=False, compare=False)
    _dcount: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        present = ~np.isnan(self.values)
        csum = np.concatenate(([0.0], np.cumsum(np.where(present, self.values, 0.0))))
        ccount = np.concatenate(([0.0], np.cumsum(present, dtype=np.float64)))
        object.__setattr__(self, "_csum", csum)
        object.__setattr__(self, "_ccount", ccount)
        jumps = np.abs(np.diff(self.values))  # NaN where either side is missing
        paired = ~np.isnan(jumps)
        dsum = np.concatenate(([0.0, 0.0], np.cumsum(np.where(paired, jumps, 0.0))))
        dcount = np.concatenate(([0.0, 0.0], np.cumsum(paired, dtype=np.float64)))
        object.__setattr__(self, "_dsum", dsum[: len(self.values) + 1])
        object.__setattr__(self, "_dcount", dcount[: len(self.values) + 1])

    @classmethod
    def of(cls, history: History, *, last_steps: int | None = None) -> Windows:
        """Windows over ``history``, or over only its last ``last_steps`` points."""
        values = np.asarray(history.values, dtype=np.float64)
        start_s = history.start_s
        if last_steps is not None and len(values) > last_steps:
            cut = len(values) - last_steps
            values = values[cut:]
            start_s = history.start_s + cut * history.step_s
        return cls(start_s=start_s, step_s=history.step_s, values=values)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def first_step(self) -> int:
        """The absolute step number of index 0 (steps counted from time 0)."""
        return round(self.start_s / self.step_s)

    def _bounds(self, a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[IntArray, IntArray]:
        n = len(self.values)
        lo = np.clip(np.asarray(a, dtype=np.int64), 0, n)
        hi = np.clip(np.asarray(b, dtype=np.int64), 0, n)
        return lo, np.maximum(hi, lo)

    def count(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
        """Number of present points in ``[a, b)`` (indices clipped to the series)."""
        lo, hi = self._bounds(a, b)
        return self._ccount[hi] - self._ccount[lo]

    def mean(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
        """Mean of the present points in ``[a, b)``; NaN where none is present."""
        lo, hi = self._bounds(a, b)
        total = self._csum[hi] - self._csum[lo]
        count = self._ccount[hi] - self._ccount[lo]
        out = np.full(np.broadcast(total, count).shape, np.nan)
        np.divide(total, count, out=out, where=count > 0)
        return out

    def roughness(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
        """Mean absolute step-to-step change within ``[a, b)``; NaN where no pair is present."""
        lo, hi = self._bounds(a, b)
        lo = np.minimum(lo + 1, hi)  # the first pair inside [a, b) ends at a + 1
        total = self._dsum[hi] - self._dsum[lo]
        count = self._dcount[hi] - self._dcount[lo]
        out = np.full(np.broadcast(total, count).shape, np.nan)
        np.divide(total, count, out=out, where=count > 0)
        return out

    def full_mean(self, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
        """Mean over ``[a, b)`` where every point is inside the series and present, else NaN."""
        a_arr = np.asarray(a, dtype=np.int64)
        b_arr = np.asarray(b, dtype=np.int64)
        out = self.mean(a_arr, b_arr)
        complete = (a_arr >= 0) & (b_arr <= len(self.values)) & (self.count(a, b) == b_arr - a_arr)
        return np.where(complete, out, np.nan)

    def steps_for(self, duration_s: float) -> int:
        """How many whole steps cover ``duration_s`` (at least one)."""
        return max(1, int(np.ceil(duration_s / self.step_s - 1e-9)))

    def recent_level(self, origins: npt.ArrayLike, window_s: float = DAY_S) -> FloatArray:
        """Mean over the ``window_s`` before each origin, widening to a week when that is empty."""
        o = np.asarray(origins, dtype=np.int64)
        level = self.mean(o - self.steps_for(window_s), o)
        wide = self.mean(o - self.steps_for(WEEK_S), o)
        return np.where(np.isnan(level), wide, level)
