"""The forecasting protocol: a series in, a mean and an upper quantile per future step out.

Purely computational, no side effects. Estimators follow the scikit-learn shape: the
constructor only stores settings, ``fit`` returns ``self``, fitted attributes end in ``_``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class History:
    """A regularly spaced series of rates; NaN marks a missing point (never read it as zero).

    ``values[i]`` is the mean rate (per second) over the step
    ``[start_s + i*step_s, start_s + (i+1)*step_s)``.
    """

    start_s: float
    step_s: float
    values: FloatArray

    def __post_init__(self) -> None:
        if self.step_s <= 0:
            raise ValueError(f"step_s must be positive, got {self.step_s}")
        if self.values.ndim != 1:
            raise ValueError("values must be one-dimensional")

    @property
    def end_s(self) -> float:
        """The end of the last step: the origin a forecast starts from."""
        return self.start_s + self.step_s * len(self.values)

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Forecast:
    """Per future step: the expected rate and an upper quantile (``quantile``, e.g. 0.9)."""

    start_s: float
    step_s: float
    mean: FloatArray
    upper: FloatArray
    quantile: float

    def _steps(self, horizon_s: float) -> int:
        return max(1, min(len(self.mean), int(np.ceil(horizon_s / self.step_s))))

    def mean_over(self, horizon_s: float) -> float:
        """Mean rate over the next ``horizon_s``."""
        return float(np.mean(self.mean[: self._steps(horizon_s)]))

    def upper_over(self, horizon_s: float) -> float:
        """Upper band of the mean rate over the next ``horizon_s``."""
        return float(np.mean(self.upper[: self._steps(horizon_s)]))

    def peak_upper(self, horizon_s: float) -> float:
        """Largest per-step upper band within ``horizon_s``: what capacity must hold."""
        return float(np.max(self.upper[: self._steps(horizon_s)]))


@runtime_checkable
class Forecaster(Protocol):
    def fit(self, history: History) -> Self:
        """Learn from ``history`` (NaN = missing); return ``self``."""
        ...

    def predict(self, horizon_s: float) -> Forecast:
        """Forecast from the end of the fitted history over ``horizon_s``."""
        ...


@runtime_checkable
class OnlineForecaster(Forecaster, Protocol):
    """A forecaster the control loop can refit on a schedule and re-anchor every tick.

    ``fit`` estimates parameters (costly: run it hourly or daily); ``update`` only re-anchors
    on the newest points of a later history of the same series (cheap: run it every tick);
    ``predict`` then forecasts from the end of that history.
    """

    def update(self, history: History) -> Self:
        """Re-anchor on the newest points of ``history`` without re-estimating; return ``self``."""
        ...
