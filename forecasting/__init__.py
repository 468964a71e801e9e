"""Load forecasting for sloscale: the request rate over the next lead time, with an upper band."""

from forecasting.base import Forecast, Forecaster, History, OnlineForecaster
from forecasting.direct import NotFittedError
from forecasting.registry import MODEL_NAMES, UnknownModelError, make
from forecasting.traces import Trace, TraceError, load_trace

__all__ = [
    "MODEL_NAMES",
    "Forecast",
    "Forecaster",
    "History",
    "NotFittedError",
    "OnlineForecaster",
    "Trace",
    "TraceError",
    "UnknownModelError",
    "load_trace",
    "make",
]
