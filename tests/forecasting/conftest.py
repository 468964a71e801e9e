"""Golden series for the forecasting tests: small, seeded, with known shape."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from forecasting.base import History

DAY_S = 86_400.0
TRACES_DIR = Path(__file__).resolve().parents[3] / "shared" / "traces"

SeriesFactory = Callable[..., History]


def seasonal_series(
    *,
    days: float,
    step_s: float,
    seed: int = 0,
    level_rps: float = 20.0,
    daily_amp: float = 0.6,
    weekend_drop: float = 0.0,
    start_s: float = 0.0,
) -> History:
    """Poisson counts around ``level * (1 + amp sin(day phase))``, weekends ``weekend_drop``
    lower; returned as rates per second."""
    rng = np.random.default_rng(seed)
    n = round(days * DAY_S / step_s)
    t_s = start_s + np.arange(n) * step_s
    rate = level_rps * (1.0 + daily_amp * np.sin(2 * np.pi * t_s / DAY_S))
    weekend = (np.floor(t_s / DAY_S) % 7) >= 5
    rate = np.where(weekend, rate * (1.0 - weekend_drop), rate)
    counts = rng.poisson(rate * step_s).astype(np.float64)
    return History(start_s=start_s, step_s=step_s, values=counts / step_s)


@pytest.fixture
def daily() -> SeriesFactory:
    """Factory of seeded daily-seasonal series (keyword arguments of ``seasonal_series``)."""
    return seasonal_series


@pytest.fixture
def traces_dir() -> Path:
    """The shared real traces (``SLOSCALE_TRACES_DIR`` overrides); skip when absent."""
    path = Path(os.environ.get("SLOSCALE_TRACES_DIR", TRACES_DIR))
    if not path.is_dir():
        pytest.skip(f"real traces not found at {path}")
    return path
