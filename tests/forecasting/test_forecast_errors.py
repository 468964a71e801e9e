"""Bad input fails at the boundary, with a message that says what is wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting import History, UnknownModelError, make
from forecasting.direct import NotFittedError

GOOD = History(start_s=0.0, step_s=60.0, values=np.full(120, 5.0))

BAD_HISTORIES = {
    # name: (values, message fragment)
    "empty": (np.array([]), "empty"),
    "all missing": (np.full(10, np.nan), "no observed point"),
    "negative rate": (np.array([1.0, -2.0, 3.0]), "negative"),
    "infinite rate": (np.array([1.0, np.inf, 3.0]), "infinite"),
}


@pytest.mark.parametrize("case", BAD_HISTORIES, ids=list(BAD_HISTORIES))
def test_fit_rejects_bad_history(case: str) -> None:
    values, fragment = BAD_HISTORIES[case]
    with pytest.raises(ValueError, match=fragment):
        make("auto").fit(History(start_s=0.0, step_s=60.0, values=values))


def test_history_rejects_a_non_positive_step() -> None:
    with pytest.raises(ValueError, match="step_s must be positive"):
        History(start_s=0.0, step_s=0.0, values=np.ones(3))


@pytest.mark.parametrize("horizon_s", [0.0, -60.0, math.nan, math.inf])
def test_predict_rejects_bad_horizon(horizon_s: float) -> None:
    with pytest.raises(ValueError, match="horizon_s"):
        make("persistence").fit(GOOD).predict(horizon_s)


def test_update_before_fit_and_with_another_step() -> None:
    with pytest.raises(NotFittedError):
        make("gbm").update(GOOD)
    model = make("persistence").fit(GOOD)
    with pytest.raises(ValueError, match="differs from the fitted step"):
        model.update(History(start_s=0.0, step_s=600.0, values=np.ones(10)))


def test_unknown_model_and_bad_settings() -> None:
    with pytest.raises(UnknownModelError, match="choose from persistence, seasonal-naive"):
        make("prophet")
    with pytest.raises(TypeError):
        make("persistence", window=900)  # settings are keyword-only and spelled out
    with pytest.raises(ValueError, match="quantile"):
        make("persistence", quantile=1.5).fit(GOOD)
    with pytest.raises(ValueError, match="unknown auto candidate"):
        make("auto", candidates=("persistence", "lstm")).fit(
            History(start_s=0.0, step_s=600.0, values=np.full(3 * 144, 5.0))
        )
