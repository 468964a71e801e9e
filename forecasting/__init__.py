"""Load forecasting for sloscale: the request rate over the next lead time, with an upper band."""

from forecasting.base import Forecast, Forecaster, History
from forecasting.traces import Trace, TraceError, load_trace

__all__ = ["Forecast", "Forecaster", "History", "Trace", "TraceError", "load_trace"]
