"""The forecast phase: per workload, the request rate over the next lead time.

Two models run side by side, because they answer for different time scales:

- a *short-term* model over the last few ticks (level + upward trend + noise band) reacts
  within one tick to a change no history could predict;
- a *learned* model from ``forecasting`` (``auto`` by default) over up to 14 days of per-step
  history anticipates what history does predict: the morning ramp, the weekly shape.

The planner sizes for the expected rate over the lead time (a pod started now serves only
after its cold start), never less than the rate measured now: the learned model's mean once
it has one (it lifts capacity *before* a ramp it has seen every day), the short-term model's
before. The noise around the mean is the error budget's to absorb (``planner.next_headroom``):
sizing every window for an upper band as well kept a quarter of the GPU share idle on the
bench traces. The upper band of both models still guards what must not fall short: resuming
preempted jobs over a longer horizon. A predicted fall is not acted on early; the planner's
scale-down delay handles it.

The phase also keeps each workload's rate profile (``ForecastBank.rate_profile``: quantiles
of the last week's step rates, recomputed hourly), which the planner chooses the slice on.

Cost control, as the issue asks: refits (seconds each) are scheduled, every
``refit_interval_s`` per workload, staggered by workload and capped per tick; re-anchoring a
fitted model on the newest step (milliseconds) happens once per closed step, also capped per
tick, so the phase's cost per tick is bounded whatever the number of workloads.

State only, no I/O: the loop feeds samples in and reads forecasts out; reading a forecast
changes nothing (the loop hands the ones to score back with ``record_prediction``). The warm start
(``seed``) takes a history the loop fetched through the ``RateHistorySource`` port.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from controller.prediction import RateForecast, RateHistory, rate_profile, short_term_forecast
from forecasting import MODEL_NAMES, History, OnlineForecaster, make
from forecasting.base import FloatArray, Forecast

log = logging.getLogger("sloscale.forecast")

NO_MODEL = "none"


@dataclass(frozen=True, slots=True)
class ForecastSettings:
    """How the loop forecasts. ``model`` is a ``forecasting`` model name or ``"none"``."""

    model: str = "auto"
    step_s: float = 60.0
    history_s: float = 14 * 86400.0
    refit_interval_s: float = 24 * 3600.0  # also refit whenever the history has doubled
    min_fit_history_s: float = 3600.0  # first fit once this much history exists
    max_refits_per_tick: int = 2
    reanchor_interval_s: float = 180.0  # the short-term model covers what is newer
    quantile: float = 0.9
    short_term_ticks: int = 20
    score_window: int = 240  # matured predictions kept for the accuracy figures
    profile_window_s: float = 7 * 86400.0  # the rate distribution the slice is chosen on
    profile_min_s: float = 86400.0  # steps with data needed before there is a profile
    profile_refresh_s: float = 3600.0  # recomputed once this many closed steps are new
    profile_points: int = 100

    def __post_init__(self) -> None:
        if self.model != NO_MODEL and self.model not in MODEL_NAMES:
            raise ValueError(
                f"unknown forecast model {self.model!r}; choose from "
                f"{', '.join((*MODEL_NAMES, NO_MODEL))}"
            )
        if not self.step_s > 0 or not self.history_s >= self.step_s:
            raise ValueError("need step_s > 0 and history_s >= step_s")
        if self.max_refits_per_tick < 0:
            raise ValueError("max_refits_per_tick must be >= 0")


class StepSeries:
    """Per-tick rate samples averaged into fixed steps (a ring of ``capacity`` steps).

    A sample observed at ``time_s`` over the trailing ``window_s`` belongs to the step that
    holds its window's midpoint. A step with no finite sample is NaN: missing, never zero.
    Only closed steps (a later step has begun) are part of ``history()``.
    """

    def __init__(self, step_s: float, capacity: int) -> None:
        self.step_s = step_s
        self._values: FloatArray = np.full(capacity, np.nan)
        self._count = 0  # closed steps held
        self._next = 0  # ring slot of the next closed step
        self._last_index: int | None = None  # global index of the newest closed step
        self._open_index: int | None = None
        self._open_sum = 0.0
        self._open_n = 0
        self.closed_total = 0  # steps closed since creation: a cheap "anything new?" check
        self._first_data: int | None = None  # ordinal (1-based) of the first step with data

    def _close(self, index: int, value: float) -> None:
        if self._last_index is not None:
            for _ in range(min(index - self._last_index - 1, len(self._values))):
                self._push(math.nan)  # steps with no sample at all
        self._push(value)
        self._last_index = index

    def _push(self, value: float) -> None:
        self._values[self._next] = value
        self._next = (self._next + 1) % len(self._values)
        self._count = min(self._count + 1, len(self._values))
        self.closed_total += 1
        if self._first_data is None and math.isfinite(value):
            self._first_data = self.closed_total

    def add(self, time_s: float, rate_rps: float | None, window_s: float) -> None:
        index = math.floor((time_s - 0.5 * window_s) / self.step_s)
        if self._last_index is not None and index <= self._last_index:
            return  # late sample for a step already closed (or a clock step back)
        if self._open_index is not None and index > self._open_index:
            mean = self._open_sum / self._open_n if self._open_n else math.nan
            self._close(self._open_index, mean)
            self._open_index, self._open_sum, self._open_n = None, 0.0, 0
        if self._open_index is None:
            self._open_index = index
        if rate_rps is not None and math.isfinite(rate_rps) and rate_rps >= 0:
            self._open_sum += rate_rps
            self._open_n += 1

    def seed(self, history: History) -> None:
        """Load past steps (a warm start); only steps before any sample seen are used."""
        if not math.isclose(history.step_s, self.step_s, rel_tol=1e-9) or len(history) == 0:
            return
        if self._count:
            return  # already has closed steps: seeding would reorder the ring
        first = round(history.start_s / self.step_s)
        values = np.asarray(history.values, dtype=np.float64)
        if self._open_index is not None:
            values = values[: max(0, self._open_index - first)]
        for offset, v in enumerate(values):
            self._close(first + offset, float(v) if math.isfinite(v) and v >= 0 else math.nan)

    def __len__(self) -> int:
        return self._count

    @property
    def end_s(self) -> float | None:
        """The end of the newest closed step: where a forecast from ``history()`` starts."""
        return None if self._last_index is None else (self._last_index + 1) * self.step_s

    def history(self) -> History:
        """The closed steps, oldest first, from the first one with data (a series that was
        not recorded yet has no past, rather than a long missing one)."""
        n = self.observed_steps
        values = self._values[(self._next - n + np.arange(n)) % len(self._values)]
        end = self.end_s if self.end_s is not None else 0.0
        return History(end - n * self.step_s, self.step_s, values)

    @property
    def observed_steps(self) -> int:
        """Closed steps from the first one with data: the history a model can learn from.

        O(1): the refit schedule asks it of every workload on every tick.
        """
        if self._first_data is None:
            return 0
        return min(self._count, self.closed_total - self._first_data + 1)


@dataclass(frozen=True, slots=True)
class ForecastScore:
    """How the forecasts made ``lead_s`` ago compare with the rate then observed."""

    samples: int
    mae_rps: float | None
    mean_actual_rps: float | None
    coverage: float | None  # share of observed rates at or under the upper band


@dataclass
class _Series:
    steps: StepSeries
    ticks: RateHistory
    phase_s: float  # stagger: this workload's refits fall at this offset in the interval
    model: OnlineForecaster | None = None
    model_name: str = ""
    next_refit_s: float = -math.inf
    fitted_steps: int = 0  # history length at the last fit
    anchored_total: int = -1  # ``steps.closed_total`` the model was last anchored at
    path: Forecast | None = None
    pending: deque[tuple[float, float, float]] = field(default_factory=deque)
    scored: deque[tuple[float, float, float]] = field(default_factory=deque)
    seeded: bool = False
    profile: tuple[float, ...] = ()
    profile_total: int = -1  # ``steps.closed_total`` the profile was computed at


@dataclass(frozen=True, slots=True)
class ForecastPhaseStats:
    """What one forecast phase did: for the phase's cost report and ``/metrics``."""

    refits: int = 0
    refit_failures: int = 0
    updates: int = 0
    deferred_updates: int = 0


class ForecastBank:
    """Per-workload series, models and forecasts, refreshed once per tick by the loop."""

    def __init__(self, settings: ForecastSettings, interval_s: float) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self._series: dict[str, _Series] = {}

    # --- membership -------------------------------------------------------------------------
    def track(self, key: str) -> bool:
        """Start tracking ``key``; True when it is new (so the loop may warm-start it)."""
        if key in self._series:
            return False
        s = self.settings
        capacity = max(1, math.ceil(s.history_s / s.step_s))
        phase = (zlib.crc32(key.encode()) % 10_000) / 10_000 * s.refit_interval_s
        self._series[key] = _Series(
            StepSeries(s.step_s, capacity), RateHistory(max(2, s.short_term_ticks)), phase
        )
        return True

    def forget(self, keep: set[str]) -> None:
        for key in set(self._series) - keep:
            del self._series[key]

    def unseeded(self) -> list[str]:
        return [k for k, v in self._series.items() if not v.seeded]

    def seed(self, key: str, history: History | None) -> None:
        series = self._series.get(key)
        if series is None:
            return
        series.seeded = True
        if history is not None:
            series.steps.seed(history)

    # --- per tick ---------------------------------------------------------------------------
    def observe(self, key: str, now_s: float, rate_rps: float | None, window_s: float) -> None:
        series = self._series[key]
        series.ticks.append(now_s, rate_rps)
        series.steps.add(now_s, rate_rps, window_s)
        self._score(series, now_s, rate_rps)

    def refresh(self, now_s: float) -> ForecastPhaseStats:
        """Run the refits that are due (capped) and re-anchor models on new steps (capped)."""
        s = self.settings
        if s.model == NO_MODEL:
            return ForecastPhaseStats()
        refits = failures = 0
        min_steps = math.ceil(s.min_fit_history_s / s.step_s)
        due = sorted(
            (v.next_refit_s, k)
            for k, v in self._series.items()
            if v.steps.observed_steps >= min_steps
            and (v.next_refit_s <= now_s or v.steps.observed_steps >= 2 * v.fitted_steps)
        )
        for _, key in due[: s.max_refits_per_tick]:
            if self._refit(key, now_s):
                refits += 1
            else:
                failures += 1
        every = max(1, round(s.reanchor_interval_s / s.step_s))
        stale = sorted(
            (v.anchored_total, k)
            for k, v in self._series.items()
            if v.model is not None
            and (v.anchored_total < 0 or v.steps.closed_total - v.anchored_total >= every)
        )
        # spread the re-anchoring evenly over the ticks of one interval
        per_tick = len(self._series) * self.interval_s / (every * s.step_s)
        budget = math.ceil(per_tick) + 1
        updates = 0
        for _, key in stale[:budget]:
            self._reanchor(key)
            updates += 1
        return ForecastPhaseStats(refits, failures, updates, max(0, len(stale) - budget))

    def _refit(self, key: str, now_s: float) -> bool:
        s = self.settings
        series = self._series[key]
        interval = s.refit_interval_s
        # the next refit at this workload's phase in the next interval: spreads 1000 refits
        cycle = math.floor((now_s - series.phase_s) / interval) + 1
        series.next_refit_s = series.phase_s + cycle * interval
        history = series.steps.history()
        series.fitted_steps = len(history)
        try:
            model = make(s.model, quantile=s.quantile).fit(history)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as e:
            log.warning("forecast refit for %s failed, keeping the previous model: %s", key, e)
            series.next_refit_s = now_s + interval / 4
            return False
        series.model, series.model_name = model, s.model
        series.anchored_total = -1
        self._reanchor(key)
        return True

    def _reanchor(self, key: str) -> None:
        series = self._series[key]
        if series.model is None:
            return
        horizon_s = 3 * self.settings.step_s + 3600.0
        try:
            series.path = series.model.update(series.steps.history()).predict(horizon_s)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as e:
            log.warning("forecast update for %s failed: %s", key, e)
            series.path = None
        series.anchored_total = series.steps.closed_total

    # --- reading ----------------------------------------------------------------------------
    def forecast(self, key: str, now_s: float, lead_s: float) -> RateForecast | None:
        """The rate over ``[now_s, now_s + lead_s]``: the larger upper band of both models.

        A read: it changes nothing. The forecasts that the accuracy figures score (the
        lead-time ones, not the planner's look further ahead) are handed back through
        ``record_prediction``.
        """
        series = self._series.get(key)
        if series is None:
            return None
        times, values = series.ticks.last(self.settings.short_term_ticks)
        short = short_term_forecast(times, values, lead_s)
        learned = self._learned(series, now_s, lead_s)
        return _combine(short, learned)

    def record_prediction(
        self, key: str, now_s: float, lead_s: float, forecast: RateForecast | None
    ) -> None:
        """Keep ``forecast`` (made at ``now_s`` for ``lead_s``) to score against the rate
        observed once it is due: the accuracy figures of ``score``. ``None`` keeps nothing."""
        series = self._series.get(key)
        if series is None or forecast is None:
            return
        series.pending.append((now_s + lead_s, forecast.mean_rps, forecast.upper_rps))

    def _learned(self, series: _Series, now_s: float, lead_s: float) -> RateForecast | None:
        path = series.path
        if path is None or len(path.mean) == 0:
            return None
        first = max(0, math.floor((now_s - path.start_s) / path.step_s))
        last = math.ceil((now_s + lead_s - path.start_s) / path.step_s)
        if first >= len(path.mean):
            return None  # the anchor is too old to cover this window: not a forecast any more
        window = slice(first, max(first + 1, min(last, len(path.mean))))
        mean, upper = path.mean[window], path.upper[window]
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(upper))):
            return None
        # the most either reaches: capacity must be serving at the window's peak, not its average
        return RateForecast(float(np.max(mean)), float(np.max(upper)), series.model_name)

    def recent_rates(self, key: str) -> tuple[tuple[float, float | None], ...]:
        """The short-term model's ticks, oldest first, as (time, rate; ``None``: missing):
        what a restarted controller needs to forecast as this one does (``restore_recent``)."""
        series = self._series.get(key)
        if series is None:
            return ()
        times, values = series.ticks.last(len(series.ticks))
        return tuple(
            (float(t), float(v) if math.isfinite(v) else None)
            for t, v in zip(times, values, strict=True)
        )

    def restore_recent(
        self, key: str, ticks: tuple[tuple[float, float | None], ...], now_s: float
    ) -> None:
        """Start tracking ``key`` with saved ticks of its short-term model (a restart): those
        of the short-term window before ``now_s``, and only while it has none of its own."""
        self.track(key)
        history = self._series[key].ticks
        if len(history):
            return
        since_s = now_s - self.settings.short_term_ticks * self.interval_s
        for t, rate in ticks:
            if since_s < t < now_s:
                history.append(t, rate)

    def rate_profile(self, key: str) -> tuple[float, ...]:
        """The distribution of the per-step rate over the last ``profile_window_s``, as
        ``profile_points`` equally likely quantiles, smallest first; ``()`` until
        ``profile_min_s`` of steps have data. Recomputed every ``profile_refresh_s``."""
        series = self._series.get(key)
        if series is None:
            return ()
        s = self.settings
        every = max(1, round(s.profile_refresh_s / s.step_s))
        if series.profile_total < 0 or series.steps.closed_total - series.profile_total >= every:
            window = max(1, math.ceil(s.profile_window_s / s.step_s))
            series.profile = rate_profile(
                series.steps.history().values[-window:],
                s.profile_points,
                math.ceil(s.profile_min_s / s.step_s),
            )
            series.profile_total = series.steps.closed_total
        return series.profile

    def model_name(self, key: str) -> str | None:
        series = self._series.get(key)
        return series.model_name if series is not None and series.model is not None else None

    def score(self, key: str) -> ForecastScore:
        series = self._series.get(key)
        if series is None or not series.scored:
            return ForecastScore(0, None, None, None)
        arr = np.array(series.scored)
        actual, mean, upper = arr[:, 0], arr[:, 1], arr[:, 2]
        return ForecastScore(
            len(arr),
            float(np.mean(np.abs(actual - mean))),
            float(np.mean(actual)),
            float(np.mean(actual <= upper)),
        )

    def _score(self, series: _Series, now_s: float, rate_rps: float | None) -> None:
        while series.pending and series.pending[0][0] <= now_s + 1e-6:
            _, mean, upper = series.pending.popleft()
            if rate_rps is not None and math.isfinite(rate_rps):
                series.scored.append((rate_rps, mean, upper))
                while len(series.scored) > self.settings.score_window:
                    series.scored.popleft()


def _combine(short: RateForecast | None, learned: RateForecast | None) -> RateForecast | None:
    """The learned mean (re-anchored every step, it tracks the level) and the larger upper
    band of both."""
    if learned is None:
        return short
    if short is None:
        return learned
    model = learned.model if learned.upper_rps >= short.upper_rps else short.model
    return RateForecast(learned.mean_rps, max(short.upper_rps, learned.upper_rps), model)
