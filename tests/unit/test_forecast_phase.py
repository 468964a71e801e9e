"""The loop's forecast phase: step series, scheduled refits, capped re-anchoring, warm start."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.forecast import ForecastBank, ForecastSettings, StepSeries
from controller.ports import ObserveTarget
from controller.prediction import rate_profile
from forecasting.base import History

DAY_S = 86400.0


def test_samples_average_into_the_step_holding_their_window() -> None:
    s = StepSeries(60.0, capacity=10)
    for t, r in [(60.0, 1.0), (75.0, 3.0), (90.0, 5.0), (105.0, 7.0), (120.0, 2.0)]:
        s.add(t, r, window_s=60.0)
    # windows ending at 60..105 have midpoints in [30, 90): steps 0 and 1; the one ending at
    # 120 (midpoint 90) opens step 1 ... all closed steps come out, the open one does not
    h = s.history()
    assert h.step_s == 60.0 and h.end_s == 60.0
    assert h.values.tolist() == [4.0 / 2]  # midpoints 30 and 45 -> step 0: (1 + 3) / 2


def test_a_step_with_only_missing_samples_is_nan_never_zero() -> None:
    s = StepSeries(60.0, capacity=10)
    rates = [5.0, None, None, None, None, None, 7.0, 7.0, 7.0, 7.0, 9.0]
    for i, r in enumerate(rates):  # 30, 45 s: step 0; 60..105 s: step 1; 120..165 s: step 2
        s.add(30.0 + 15.0 * i, r, window_s=0.0)
    values = s.history().values
    assert values[0] == 5.0 and math.isnan(values[1]) and values[2] == 7.0


def test_skipped_steps_are_missing_and_late_samples_ignored() -> None:
    s = StepSeries(60.0, capacity=10)
    s.add(10.0, 1.0, 0.0)
    s.add(250.0, 2.0, 0.0)  # step 4; steps 1..3 never saw a sample
    s.add(20.0, 100.0, 0.0)  # late: step 0 is closed
    s.add(310.0, 3.0, 0.0)
    values = s.history().values
    assert values[0] == 1.0 and np.isnan(values[1:4]).all() and values[4] == 2.0


def test_leading_unrecorded_past_is_trimmed_but_inner_gaps_are_kept() -> None:
    s = StepSeries(60.0, capacity=100)
    s.seed(History(0.0, 60.0, np.array([np.nan, np.nan, 4.0, np.nan, 6.0])))
    h = s.history()
    assert h.start_s == 120.0 and len(h) == 3 and math.isnan(h.values[1])
    assert s.observed_steps == 3


def test_seed_never_overlaps_live_samples() -> None:
    s = StepSeries(60.0, capacity=100)
    s.add(200.0, 9.0, 0.0)  # live data opens step 3
    s.seed(History(0.0, 60.0, np.arange(1.0, 7.0)))  # would cover steps 0..5
    s.add(260.0, 9.0, 0.0)
    assert s.history().values.tolist() == [1.0, 2.0, 3.0, 9.0]


@given(
    st.lists(st.one_of(st.none(), st.floats(0, 1e6), st.just(math.nan)), min_size=1, max_size=60)
)
def test_history_is_regular_and_never_invents_zeros(rates: list[float | None]) -> None:
    s = StepSeries(60.0, capacity=16)
    for i, r in enumerate(rates):
        s.add(15.0 * i, r, 0.0)
    h = s.history()
    assert len(h) <= 16
    if len(h):
        assert h.start_s % 60.0 == 0.0
    finite = [r for r in rates if r is not None and math.isfinite(r)]
    if not finite or 0.0 not in finite:
        assert not (h.values == 0.0).any()


def daily(days: float, step_s: float = 60.0, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    t = np.arange(int(days * DAY_S / step_s)) * step_s
    rate = 20.0 + 15.0 * np.sin(2 * np.pi * t / DAY_S)
    return History(0.0, step_s, rng.poisson(rate * step_s) / step_s)


def feed(bank: ForecastBank, key: str, history: History) -> float:
    """Seed ``key`` with ``history``; return the time just after it."""
    bank.track(key)
    bank.seed(key, history)
    return history.end_s + 1.0


def test_refits_are_capped_per_tick_and_then_scheduled_not_repeated() -> None:
    bank = ForecastBank(
        ForecastSettings(model="persistence", max_refits_per_tick=2), interval_s=15.0
    )
    now = 0.0
    for i in range(5):
        now = feed(bank, f"ns/w{i}", daily(0.2, seed=i))
    assert bank.refresh(now).refits == 2
    assert bank.refresh(now + 15).refits == 2
    assert bank.refresh(now + 30).refits == 1
    assert bank.refresh(now + 45).refits == 0  # next ones are a refit interval away


def test_refit_times_are_staggered_over_the_interval() -> None:
    settings = ForecastSettings(model="persistence", max_refits_per_tick=100)
    bank = ForecastBank(settings, interval_s=15.0)
    now = 0.0
    for i in range(50):
        now = feed(bank, f"ns/w{i}", daily(0.2, seed=i))
    bank.refresh(now)
    due = sorted(v.next_refit_s - now for v in bank._series.values())
    assert due[0] > 0 and due[-1] <= settings.refit_interval_s
    assert due[-1] - due[0] > 0.8 * settings.refit_interval_s  # spread, not one burst


def test_short_history_waits_then_fits_and_refits_when_it_doubles() -> None:
    settings = ForecastSettings(model="persistence", min_fit_history_s=3600.0)
    bank = ForecastBank(settings, interval_s=60.0)
    bank.track("ns/w")
    t = 0.0
    fits = 0
    for _ in range(int(2.2 * 3600 / 60)):
        t += 60.0
        bank.observe("ns/w", t, 10.0, 60.0)
        fits += bank.refresh(t).refits
        if t < 3600.0:
            assert bank.model_name("ns/w") is None
    assert bank.model_name("ns/w") == "persistence"
    assert fits == 2  # at one hour, and again at two hours (the history doubled)


def test_reanchoring_is_spread_over_ticks() -> None:
    settings = ForecastSettings(
        model="persistence", max_refits_per_tick=1000, reanchor_interval_s=180.0
    )
    bank = ForecastBank(settings, interval_s=15.0)
    keys = [f"ns/w{i}" for i in range(120)]
    t = 0.0
    for k in keys:
        t = feed(bank, k, daily(0.1))
    bank.refresh(t)
    updates = []
    for tick in range(1, 33):  # eight minutes of 15 s ticks
        now = t + 15.0 * tick
        for k in keys:
            bank.observe(k, now, 20.0, 60.0)
        updates.append(bank.refresh(now).updates)
    # 120 workloads re-anchored every 3 minutes at 15 s ticks: 10 per tick, never a burst
    assert max(updates) <= math.ceil(120 * 15 / 180) + 1
    assert sum(updates) >= 120


def test_the_larger_upper_band_is_sized_for() -> None:
    bank = ForecastBank(ForecastSettings(model="seasonal-naive"), interval_s=15.0)
    history = daily(3)
    now = feed(bank, "ns/w", history)
    bank.refresh(now)
    f = bank.forecast("ns/w", now, 90.0)
    assert f is not None and f.upper_rps >= f.mean_rps > 0
    # a surprise far above anything the history shows: the short-term model must answer
    for i in range(1, 6):
        bank.observe("ns/w", now + 15.0 * i, 500.0, 60.0)
    f = bank.forecast("ns/w", now + 75.0, 90.0)
    assert f is not None and f.upper_rps >= 500.0 and f.model == "short-term"


def test_model_none_keeps_only_the_short_term_forecast() -> None:
    bank = ForecastBank(ForecastSettings(model="none"), interval_s=15.0)
    now = feed(bank, "ns/w", daily(3))
    assert bank.refresh(now).refits == 0
    bank.observe("ns/w", now, 10.0, 60.0)
    bank.observe("ns/w", now + 15, 12.0, 60.0)
    f = bank.forecast("ns/w", now + 15, 90.0)
    assert f is not None and f.model == "short-term"


def test_a_failing_refit_keeps_the_previous_model(monkeypatch: pytest.MonkeyPatch) -> None:
    bank = ForecastBank(ForecastSettings(model="persistence"), interval_s=15.0)
    now = feed(bank, "ns/w", daily(0.2))
    bank.refresh(now)
    assert bank.model_name("ns/w") == "persistence"

    def broken(*_a: object, **_k: object) -> object:
        raise ValueError("singular matrix")

    monkeypatch.setattr("controller.forecast.make", broken)
    series = bank._series["ns/w"]
    series.next_refit_s = now
    stats = bank.refresh(now + 1)
    assert stats.refit_failures == 1 and bank.model_name("ns/w") == "persistence"
    assert series.next_refit_s > now + 1  # retried later, not every tick


def test_accuracy_compares_forecasts_with_what_came_lead_later() -> None:
    bank = ForecastBank(ForecastSettings(model="none"), interval_s=15.0)
    bank.track("ns/w")
    for i in range(40):
        t = 15.0 * i
        bank.observe("ns/w", t, 10.0, 60.0)
        bank.record_prediction("ns/w", t, 90.0, bank.forecast("ns/w", t, 90.0))
    score = bank.score("ns/w")
    assert score.samples == 40 - 6  # the last 90 s of forecasts have not matured
    assert score.mae_rps == pytest.approx(0.0, abs=1e-9) and score.coverage == 1.0


def test_reading_a_forecast_changes_nothing() -> None:
    bank = ForecastBank(ForecastSettings(model="seasonal-naive"), interval_s=15.0)
    now = feed(bank, "ns/w", daily(3))
    bank.refresh(now)
    first = bank.forecast("ns/w", now, 90.0)
    for _ in range(5):  # reads, as the planner's resume horizon does every tick
        assert bank.forecast("ns/w", now, 90.0) == first
        bank.forecast("ns/w", now, 3600.0)
    assert not bank._series["ns/w"].pending
    for i in range(1, 12):
        bank.observe("ns/w", now + 15.0 * i, 10.0, 60.0)
    assert bank.score("ns/w").samples == 0  # nothing was handed in to score


def test_only_recorded_predictions_are_scored() -> None:
    bank = ForecastBank(ForecastSettings(model="none"), interval_s=15.0)
    bank.track("ns/w")
    for i in range(40):
        t = 15.0 * i
        bank.observe("ns/w", t, 10.0, 60.0)
        forecast = bank.forecast("ns/w", t, 90.0)
        bank.forecast("ns/w", t, 1800.0)  # a look further ahead, read and not recorded
        if i % 2 == 0:
            bank.record_prediction("ns/w", t, 90.0, forecast)
    bank.record_prediction("ns/w", 600.0, 90.0, None)  # no forecast: nothing to score
    bank.record_prediction("ns/other", 600.0, 90.0, forecast)  # not tracked: ignored
    assert bank.score("ns/w").samples == 20 - 3  # the last 90 s have not matured
    assert bank.score("ns/other").samples == 0


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown forecast model 'prophet'"):
        ForecastSettings(model="prophet")


class RecordingHistory:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[list[str], float, float, float]] = []
        self.fail = fail

    def rate_history(
        self, targets: Sequence[ObserveTarget], start_s: float, end_s: float, step_s: float
    ) -> Mapping[str, History]:
        self.calls.append(([t.ref.key for t in targets], start_s, end_s, step_s))
        if self.fail:
            raise ConnectionError("prometheus down")
        return {t.ref.key: daily(3) for t in targets}


def warm_controller(source: RecordingHistory | None):  # type: ignore[no-untyped-def]
    from controller.loop import Controller, LoopConfig
    from tests.fakes import FakeClock, FakeCluster, FakeMetrics, slo_annotations

    clock = FakeClock(3 * DAY_S)
    cluster = FakeCluster(clock)
    metrics = FakeMetrics()
    settings = ForecastSettings(model="seasonal-naive", max_refits_per_tick=3)
    config = LoopConfig(interval_s=15.0, forecast=settings)
    ctl = Controller(cluster, metrics, clock, config, history=source)
    return clock, cluster, ctl, slo_annotations


def test_a_new_controller_warm_starts_every_workload_in_one_batched_query() -> None:
    source = RecordingHistory()
    clock, cluster, ctl, annotations = warm_controller(source)
    for name in ("a", "b", "c"):
        cluster.add(name, annotations())
    clock.advance(15.0)
    ctl.tick()
    assert len(source.calls) == 1
    keys, start_s, end_s, step_s = source.calls[0]
    assert sorted(keys) == sorted(cluster.deployments)
    assert step_s == 60.0 and end_s <= clock.now() and end_s - start_s == 14 * DAY_S
    for key in keys:
        assert ctl.forecasts.model_name(key) == "seasonal-naive"  # fitted at once
    clock.advance(15.0)
    ctl.tick()
    assert len(source.calls) == 1  # history is read once per workload, not per tick
    cluster.add("d", annotations())
    clock.advance(15.0)
    ctl.tick()
    assert [c[0] for c in source.calls[1:]] == [[_ref_key("d", cluster)]]


def test_a_warm_start_gives_the_planner_its_rate_profile_at_once() -> None:
    clock, cluster, ctl, annotations = warm_controller(RecordingHistory())
    cluster.add("a", annotations())
    clock.advance(15.0)
    ctl.tick()
    tracked_state = ctl.state.workloads[_ref_key("a", cluster)]
    assert len(tracked_state.rate_profile_rps) == ForecastSettings().profile_points
    profile = tracked_state.rate_profile_rps  # of 20 + 15 sin(day): 5 to 35 rps
    assert 0.0 < profile[0] < 8.0 and 32.0 < profile[-1] < 40.0


def test_a_failing_history_source_means_a_cold_start_not_a_broken_tick() -> None:
    source = RecordingHistory(fail=True)
    clock, cluster, ctl, annotations = warm_controller(source)
    cluster.add("a", annotations())
    clock.advance(15.0)
    report = ctl.tick()
    assert not report.errors
    key = next(iter(cluster.deployments))
    assert ctl.forecasts.model_name(key) is None  # nothing to learn from yet
    assert len(source.calls) == 1
    clock.advance(15.0)
    ctl.tick()
    assert len(source.calls) == 1  # not retried every tick


def _ref_key(name: str, cluster: object) -> str:
    return next(k for k in cluster.deployments if k.endswith("/" + name))  # type: ignore[attr-defined]


def test_the_rate_profile_is_equally_likely_quantiles_of_the_measured_steps() -> None:
    x = np.arange(100.0)
    assert rate_profile(x, 4, 10) == pytest.approx((12.375, 37.125, 61.875, 86.625))
    holed = np.concatenate([x, np.full(50, np.nan)])  # missing steps are left out, not zeros
    assert rate_profile(holed, 4, 10) == rate_profile(x, 4, 10)
    assert rate_profile(x, 4, 101) == ()  # under the history it needs


def test_the_bank_profiles_the_last_week_once_a_day_is_measured_and_hourly() -> None:
    settings = ForecastSettings(model="none")
    bank = ForecastBank(settings, interval_s=15.0)
    assert bank.rate_profile("ns/w") == ()
    half_day = History(0.0, 60.0, np.full(720, 5.0))
    now = feed(bank, "ns/w", half_day)
    assert bank.rate_profile("ns/w") == ()  # under a day of steps
    bank = ForecastBank(settings, interval_s=15.0)
    days = History(0.0, 60.0, np.concatenate([np.full(7 * 1440, 5.0), np.full(1440, 9.0)]))
    now = feed(bank, "ns/w", days)
    profile = bank.rate_profile("ns/w")
    assert len(profile) == settings.profile_points
    assert profile[0] == 5.0 and profile[-1] == 9.0  # the oldest day has left the week
    assert sum(v == 9.0 for v in profile) == pytest.approx(100 / 7, abs=1)
    for i in range(30):  # half an hour of a new level: not recomputed yet
        bank.observe("ns/w", now + 60.0 * i, 50.0, 60.0)
    assert bank.rate_profile("ns/w") == profile
    for i in range(30, 62):
        bank.observe("ns/w", now + 60.0 * i, 50.0, 60.0)
    assert bank.rate_profile("ns/w")[-1] == 50.0
