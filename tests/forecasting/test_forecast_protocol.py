"""The estimator contract, checked once over every registered model (like ``check_estimator``)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np
import pytest

from forecasting import MODEL_NAMES, Forecast, History, OnlineForecaster, make
from forecasting.direct import NotFittedError

SeriesFactory = Callable[..., History]

# Three days at 10-minute steps with a gap: enough for every model to fit for real
# (a holdout day exists), small enough to keep the whole matrix under a few seconds.
STEP_S = 600.0
HORIZONS_S = (60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 2 * 86_400.0)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_honours_the_online_forecaster_contract(name: str, daily: SeriesFactory) -> None:
    model = make(name)
    settings = inspect.signature(type(model).__init__).parameters
    # The constructor stores settings, and nothing else.
    assert set(vars(model)) == {p for p in settings if p != "self"}
    assert not any(key.endswith("_") for key in vars(model))
    with pytest.raises(NotFittedError):
        model.predict(300.0)

    history = daily(days=3, step_s=STEP_S, seed=1)
    values = history.values.copy()
    values[200:230] = np.nan  # a five-hour collection gap
    history = History(start_s=history.start_s, step_s=STEP_S, values=values)

    assert model.fit(history) is model
    learned = set(vars(model)) - set(settings)
    assert learned, "fit learned nothing"
    assert all(key.endswith("_") for key in learned), learned

    for horizon_s in HORIZONS_S:
        forecast = model.predict(horizon_s)
        steps = max(1, math.ceil(horizon_s / STEP_S))  # a 60 s horizon is still one step
        assert isinstance(forecast, Forecast)
        assert forecast.start_s == history.end_s
        assert forecast.step_s == STEP_S
        assert forecast.quantile == 0.9
        assert forecast.mean.shape == forecast.upper.shape == (steps,)
        assert np.all(np.isfinite(forecast.mean)) and np.all(np.isfinite(forecast.upper))
        assert np.all(forecast.mean >= 0)
        assert np.all(forecast.upper >= forecast.mean)

    newer = History(
        start_s=history.start_s,
        step_s=STEP_S,
        values=np.concatenate((values, history.values[:6])),
    )
    assert model.update(newer) is model
    assert model.predict(300.0).start_s == newer.end_s
    assert isinstance(model, OnlineForecaster)
