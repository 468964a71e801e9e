"""Seasonality is found in the data: daily, weekly or none, never assumed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from forecasting import History, make
from forecasting.seasonality import detect_season_s, season_scores
from forecasting.windows import DAY_S, WEEK_S, Windows

SeriesFactory = Callable[..., History]


def _noise(days: float, step_s: float, *, walk: bool, seed: int = 3) -> Windows:
    rng = np.random.default_rng(seed)
    n = round(days * DAY_S / step_s)
    steps = rng.normal(0.0, 1.0, n)
    values = 100.0 + (np.cumsum(steps) if walk else 5.0 * steps)
    return Windows(start_s=0.0, step_s=step_s, values=np.maximum(values, 0.0))


SEASON_CASES = {
    # name: (series kwargs, expected season)
    "daily sine, per minute": (dict(days=4, step_s=60.0), DAY_S),
    "daily sine, 10-minute steps": (dict(days=4, step_s=600.0), DAY_S),
    "weekday/weekend, three weeks": (
        dict(days=21, step_s=600.0, daily_amp=0.1, weekend_drop=0.7),
        WEEK_S,
    ),
}


@pytest.mark.parametrize("case", SEASON_CASES, ids=list(SEASON_CASES))
def test_known_season_is_recovered(case: str, daily: SeriesFactory) -> None:
    kwargs, expected = SEASON_CASES[case]
    assert detect_season_s(Windows.of(daily(**kwargs))) == expected


@pytest.mark.parametrize("walk", [False, True], ids=["white noise", "random walk"])
def test_noise_has_no_season(walk: bool) -> None:
    # A random walk has high autocorrelation at every lag; detrending keeps it from passing
    # for a season.
    assert detect_season_s(_noise(8, 300.0, walk=walk)) is None


def test_a_day_of_history_cannot_show_a_daily_season(daily: SeriesFactory) -> None:
    assert season_scores(Windows.of(daily(days=1.5, step_s=60.0))) == {}
    assert detect_season_s(Windows.of(daily(days=1.5, step_s=60.0))) is None


def test_season_survives_a_long_gap(daily: SeriesFactory) -> None:
    history = daily(days=5, step_s=300.0)
    values = history.values.copy()
    values[300:700] = np.nan  # most of a day missing
    assert detect_season_s(Windows.of(History(0.0, 300.0, values))) == DAY_S


def test_seasonal_naive_copies_the_detected_season(daily: SeriesFactory) -> None:
    history = daily(days=4, step_s=600.0, seed=7)
    model = make("seasonal-naive").fit(history)
    assert model.season_s_ == DAY_S  # type: ignore[attr-defined]
    # Its next-step forecast is the same 10 minutes one day earlier: 144 steps back.
    assert model.predict(600.0).mean[0] == pytest.approx(history.values[-144])
