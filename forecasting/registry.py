"""Models by name: what the CLI, the evaluation and the control loop's settings refer to."""

from __future__ import annotations

from collections.abc import Callable

from forecasting.auto import AutoForecaster
from forecasting.base import OnlineForecaster
from forecasting.boosting import GradientBoostingForecaster
from forecasting.holt_winters import HoltWintersForecaster
from forecasting.naive import PersistenceForecaster, SeasonalNaiveForecaster

_MODELS: dict[str, Callable[..., OnlineForecaster]] = {
    "persistence": PersistenceForecaster,
    "seasonal-naive": SeasonalNaiveForecaster,
    "holt-winters": HoltWintersForecaster,
    "gbm": GradientBoostingForecaster,
    "auto": AutoForecaster,
}

MODEL_NAMES: tuple[str, ...] = tuple(_MODELS)


class UnknownModelError(ValueError):
    """A model name that is not in ``MODEL_NAMES``."""


def make(name: str, **settings: object) -> OnlineForecaster:
    """A new, unfitted model; ``settings`` go to its constructor (keyword-only)."""
    try:
        factory = _MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}"
        ) from None
    return factory(**settings)
