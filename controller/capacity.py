"""What one replica of a workload can serve, learnt online from its own metrics.

Purely computational, no side effects. sloscale never reads a model's true parameters; it
estimates them from what any GPU cluster exports:

* **GPU cost per request** ``cost_card_s``: card-seconds of SM activity per request,
  ``util × allocated share / rate``. It does not depend on the slice size.
* **Saturation** ``sat_pct``: a model may not use SMs beyond some share of a card. When the
  pod's kernels are busy a fraction ``busy`` of the time but use only ``util × slice`` of the
  card, the effective share is ``util × slice / busy``; well under the slice means saturation.
* **Service time** at slice ``s``: ``cost_card_s / min(s, sat)``.
* **Latency quantile**: each replica is a FIFO queue with Poisson arrivals, utilisation
  ``rho = lambda * t``. Its q-quantile is modelled as ``t * (a + k * z * rho / (1 - rho))`` with
  ``z = -ln(1 - q)``: ``a * t`` is the service time's own quantile and the second term the
  queueing delay, whose tail is exponential with a mean scaled by ``k = (1 + cv^2) / 2``
  (Kingman). With ``a = z`` and ``k = 1`` it is exactly M/M/1, the pessimistic prior. ``a`` is
  learnt at low load, where service time dominates, and ``k`` at high load, where queueing does.
  Both are smoothed symmetrically in log space, so they track the typical window, not its
  worst one: one window's p99 comes from a handful of requests, and an upper envelope of such
  noise overstated ``k`` by about 40 % on the bench traces (a quarter of the GPU share idle).
  Safety against the model being low is the planner's job, through the error budget.
* **The chosen latency** (``latency-metric``): the same model learns a TTFT or TPOT quantile.
  Time to first token is a queueing delay plus only the prefill, so its ``a`` may be well
  under one service time; time per output token is a small share of it. For them ``a`` is
  bounded below by ``SIGNAL_SERVICE_MULT_MIN`` instead of 1; end-to-end latency keeps its
  bounds, so an e2e SLO learns exactly as before.
* **Continuous batching** (a TTFT or TPOT SLO: an LLM server such as vLLM, SGLang or TGI). Such
  a replica serves many requests at once: its GPU is busy nearly all the time well before its
  first tokens slow down, and a request's card-seconds (``util x share / rate``) fall as the
  batch grows. Read as a one-at-a-time server, it looks saturated at a fraction of what it
  serves (#28: a 64 rps step that needs 6-7 replicas went to max-replicas). What queues in a
  batching server is only the work it does one request at a time (vLLM's prefill, or a slot
  in a full batch): latency is flat while that serial work is light, then rises at a knee.
  For these SLOs the service time ``t`` is that serial time, ``serial_cost_card_s`` per
  request, learnt from the latency itself: at high load (``rho >= LOW_LOAD_RHO`` by the
  current ``t``) the ``t`` at which the model predicts the observed quantile at the observed
  rate, ``a`` and ``k`` held (``serial_time_s``), smoothed in log space; at low load ``a`` as
  above. ``t`` never exceeds the card-seconds a request costs, so the one-at-a-time model
  is its pessimistic prior and its upper bound (serial work cannot take more GPU time than
  the request). Busy time is no overload signal for these (a batch keeps the GPU busy at
  any load); a queue longer than half the window still is. ``k`` is not learnt (it cannot
  be told from ``t`` on one curve) and keeps its prior. Nothing here reads the engine's
  parameters (batch size, prefill speed): only rate, the chosen latency and utilisation,
  what any cluster exports. An e2e SLO never sets ``serial_cost_card_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from controller.domain import Allocation, LatencyMetric, WorkloadMetrics, available

MIN_REQUESTS_TO_LEARN = 30.0
"""Fewer requests in a window than this give a too-noisy latency quantile to learn from."""

COST_EWMA_ALPHA = 0.15
SHAPE_EWMA_ALPHA = 0.05
"""Weight of one window's latency shape (log space): about 20 windows of memory."""
LOW_LOAD_RHO = 0.3
"""Below this utilisation the latency quantile is mostly service time: learn ``a``."""
WAIT_SHAPE_BOUNDS = (0.3, 3.0)
SIGNAL_SERVICE_MULT_MIN = 0.001
"""The least ``a`` for a TTFT or TPOT SLO: a share of one service time (1 for e2e)."""
SERIAL_EWMA_ALPHA = 0.15
"""Weight of one window's serial time (log space), as for the cost: the knee is a capacity."""
BATCHING_METRICS = frozenset({LatencyMetric.TTFT, LatencyMetric.TPOT})
"""Latencies that only continuously batching LLM servers export: their replicas serve many
requests at once, and only the serial share of the work queues."""
SAT_EWMA_ALPHA = 0.3
SATURATION_RATIO = 0.95
"""Effective share under this fraction of the slice counts as saturation (measurement noise
of busy time and SM activity stays well within 5 %)."""

RHO_MAX = 0.92
"""Never plan a replica busier than this: the M/M/1 tail explodes near 1."""

RHO_OVERLOAD = 0.9
"""At or above this utilisation a window is treated as overloaded: a queue is building."""
BACKLOG_WINDOW_FRACTION = 0.5
"""A latency quantile over this fraction of the rate window means the window's requests
queued before it began: a backlog draining, not the steady state the model describes."""
SETTLE_TICKS = 3
"""Ticks after the last overloaded window before the latency shape is learnt again: the rate
window must roll past the backlog's drain."""


@dataclass(frozen=True, slots=True)
class CapacityModel:
    """What sloscale has learnt about one workload; ``None`` fields are not known yet."""

    cost_card_s: float | None = None
    sat_pct: float | None = None
    explored_max_pct: int = 0
    service_quantile_mult: float | None = None  # a; None: the exponential prior z
    wait_shape: float = 1.0  # k = (1 + cv^2) / 2; 1 is exponential service
    latency_samples: int = 0
    settle_ticks: int = 0  # ticks to wait after an overload before learning the shape again
    serial_cost_card_s: float | None = None
    """A batching replica's serial card-seconds per request (the knee of its latency); ``None``:
    not learnt, or not a batching SLO, and ``cost_card_s`` stands in (one at a time)."""

    @property
    def known(self) -> bool:
        return self.cost_card_s is not None

    @property
    def calibrated(self) -> bool:
        """Whether latency has been fitted: ``a`` at low load, or a batching replica's knee."""
        return self.service_quantile_mult is not None or self.serial_cost_card_s is not None


def quantile_multiplier(quantile: float) -> float:
    """``-ln(1 - q)``: the q-quantile of an exponential sojourn time in units of its mean."""
    return -math.log(1.0 - quantile)


def effective_share(model: CapacityModel, slice_pct: int) -> float:
    """Share of a card (0..1) the model can use at ``slice_pct``."""
    usable = float(slice_pct)
    if model.sat_pct is not None:
        usable = min(usable, model.sat_pct)
    return usable / 100.0


def service_time_s(model: CapacityModel, slice_pct: int) -> float:
    """Mean service time at ``slice_pct``: the serial time of a batching replica where it is
    learnt, else a request's whole cost; requires a known cost."""
    assert model.cost_card_s is not None
    cost = model.cost_card_s if model.serial_cost_card_s is None else model.serial_cost_card_s
    return cost / effective_share(model, slice_pct)


def _shape(model: CapacityModel, quantile: float) -> tuple[float, float, float]:
    z = quantile_multiplier(quantile)
    a = z if model.service_quantile_mult is None else model.service_quantile_mult
    return a, model.wait_shape, z


def predicted_latency_ms(
    model: CapacityModel, rate_per_replica_rps: float, slice_pct: int, quantile: float
) -> float:
    """Latency quantile of one replica under ``rate_per_replica_rps``; ``inf`` when overloaded."""
    t = service_time_s(model, slice_pct)
    rho = rate_per_replica_rps * t
    if rho >= 1.0:
        return math.inf
    a, k, z = _shape(model, quantile)
    return 1000.0 * t * (a + k * z * rho / (1.0 - rho))


def max_rate_per_replica(
    model: CapacityModel, slice_pct: int, quantile: float, latency_budget_ms: float
) -> float:
    """Largest arrival rate one replica takes with its latency quantile under the budget.

    Inverts the model: ``rho / (1 - rho) <= (budget / t - a) / (k z)``, capped at ``RHO_MAX``.
    Zero when even an idle replica is too slow.
    """
    t = service_time_s(model, slice_pct)
    a, k, z = _shape(model, quantile)
    slack = (latency_budget_ms / 1000.0) / t - a
    if slack <= 0:
        return 0.0
    ratio = slack / (k * z)
    rho = min(ratio / (1.0 + ratio), RHO_MAX)
    return rho / t


def _ewma_log(old: float, new: float, alpha: float) -> float:
    return math.exp((1 - alpha) * math.log(old) + alpha * math.log(new))


def update_capacity(
    model: CapacityModel,
    metrics: WorkloadMetrics,
    current: Allocation,
    ready_replicas: int,
    quantile: float,
    one_slice: bool = True,
    metric: LatencyMetric = LatencyMetric.E2E,
) -> CapacityModel:
    """Fold one tick's metrics into the model; unusable metrics leave it unchanged.

    Learns only in a steady state (every desired replica ready), so pods that are starting
    and hold a slice without serving do not bias the cost per request. Saturation is learnt
    only when every pod has had ``current``'s slice for the whole window (``one_slice``):
    during a resize, utilisation and busy time mix pods of two slices, and read against the
    new slice they fake a saturation that would then stop larger slices from being tried.
    """
    rate = metrics.request_rate_rps
    if (
        rate is None
        or not math.isfinite(rate)
        or rate <= 0
        or ready_replicas <= 0
        or ready_replicas != current.replicas
        or rate * metrics.window_s < MIN_REQUESTS_TO_LEARN
    ):
        return model
    rate_per_replica = rate / ready_replicas
    slice_frac = current.slice_pct / 100.0
    out = model

    util = metrics.gpu_util
    if available(util) and util is not None and util > 0:
        cost = util * slice_frac / rate_per_replica
        prev = out.cost_card_s
        out = replace(
            out, cost_card_s=cost if prev is None else _ewma_log(prev, cost, COST_EWMA_ALPHA)
        )
        if one_slice:
            out = _learn_saturation(out, util, metrics.gpu_busy, current)

    latency = metrics.latency_ms
    if out.cost_card_s is not None and available(latency) and latency is not None and latency > 0:
        batching = metric in BATCHING_METRICS
        if _transient(out, latency / 1000.0, rate_per_replica, metrics, current, batching):
            return replace(out, settle_ticks=SETTLE_TICKS)
        if out.settle_ticks > 0:
            return replace(out, settle_ticks=out.settle_ticks - 1)
        if batching:
            return _learn_batching(out, latency / 1000.0, rate_per_replica, current, quantile)
        out = _learn_latency_shape(
            out, latency / 1000.0, rate_per_replica, metrics, current, quantile
        )
    return out


def _learn_saturation(
    model: CapacityModel, util: float, busy: float | None, current: Allocation
) -> CapacityModel:
    """Saturation from busy time against SM activity (see the module docstring)."""
    if not (available(busy) and busy is not None and busy > 0.05):
        return replace(model, explored_max_pct=max(model.explored_max_pct, current.slice_pct))
    eff_pct = 100.0 * util * (current.slice_pct / 100.0) / busy
    sat = model.sat_pct
    if eff_pct < SATURATION_RATIO * current.slice_pct:
        new_sat = eff_pct if sat is None else (1 - SAT_EWMA_ALPHA) * sat + SAT_EWMA_ALPHA * eff_pct
        return replace(model, sat_pct=new_sat)
    if sat is not None and sat < SATURATION_RATIO * current.slice_pct:
        sat = None  # contradicted: this slice is used in full
    explored = max(model.explored_max_pct, current.slice_pct)
    return replace(model, explored_max_pct=explored, sat_pct=sat)


def _utilisation(
    model: CapacityModel, rate_per_replica: float, metrics: WorkloadMetrics, current: Allocation
) -> float:
    """A replica's utilisation: measured busy time, else completions x service time."""
    busy = metrics.gpu_busy
    if available(busy) and busy is not None:
        return busy
    return rate_per_replica * service_time_s(model, current.slice_pct)


def _transient(
    model: CapacityModel,
    latency_s: float,
    rate_per_replica: float,
    metrics: WorkloadMetrics,
    current: Allocation,
    batching: bool = False,
) -> bool:
    """Whether this window shows an overload or a backlog draining, not a steady state.

    Either poisons the latency shape: under overload the quantile grows without bound, and
    while a backlog drains the rate falls (the load is gone) but the quantile still carries the
    earlier wait, which would read as a slow service at low load. Nothing is learnt from it,
    nor from the next ``SETTLE_TICKS`` windows. A batching replica's busy time says nothing of
    overload (its GPU is busy at any load), so for it only the backlog counts.
    """
    if not batching and _utilisation(model, rate_per_replica, metrics, current) >= RHO_OVERLOAD:
        return True
    return latency_s > BACKLOG_WINDOW_FRACTION * metrics.window_s


def _learn_latency_shape(
    model: CapacityModel,
    latency_s: float,
    rate_per_replica: float,
    metrics: WorkloadMetrics,
    current: Allocation,
    quantile: float,
) -> CapacityModel:
    """Fit ``a`` at low load and ``k`` at high load from one observed latency quantile."""
    t = service_time_s(model, current.slice_pct)
    rho = _utilisation(model, rate_per_replica, metrics, current)
    if not 0.0 <= rho < RHO_OVERLOAD:
        return model
    a, k, z = _shape(model, quantile)
    queueing = z * rho / (1.0 - rho)
    ratio = latency_s / t
    if rho < LOW_LOAD_RHO or queueing <= 0:
        a_obs = min(3.0 * z, max(1.0, ratio - k * queueing))
        a_new = a_obs if model.service_quantile_mult is None else _smoothed(a, a_obs)
        return replace(
            model, service_quantile_mult=a_new, latency_samples=model.latency_samples + 1
        )
    lo, hi = WAIT_SHAPE_BOUNDS
    k_obs = min(hi, max(lo, (ratio - a) / queueing))
    return replace(model, wait_shape=_smoothed(k, k_obs), latency_samples=model.latency_samples + 1)


def _smoothed(old: float, new: float) -> float:
    return _ewma_log(old, new, SHAPE_EWMA_ALPHA)


def _learn_batching(
    model: CapacityModel,
    latency_s: float,
    rate_per_replica: float,
    current: Allocation,
    quantile: float,
) -> CapacityModel:
    """A batching replica's serial time at high load, ``a`` at low load (module docstring).

    The load is judged by the serial time learnt so far (the whole cost before any): by busy
    time a batching replica is always loaded.
    """
    assert model.cost_card_s is not None
    share = effective_share(model, current.slice_pct)
    t = service_time_s(model, current.slice_pct)
    if not 0.0 < t < math.inf:
        return model
    rho = rate_per_replica * t
    a, k, z = _shape(model, quantile)
    samples = model.latency_samples + 1
    if rho < LOW_LOAD_RHO:
        queueing = z * rho / (1.0 - rho)
        a_obs = min(3.0 * z, max(SIGNAL_SERVICE_MULT_MIN, latency_s / t - k * queueing))
        a_new = a_obs if model.service_quantile_mult is None else _smoothed(a, a_obs)
        return replace(model, service_quantile_mult=a_new, latency_samples=samples)
    serial_obs = min(model.cost_card_s, share * serial_time_s(latency_s, rate_per_replica, a, k, z))
    prev = model.cost_card_s if model.serial_cost_card_s is None else model.serial_cost_card_s
    serial = _ewma_log(prev, serial_obs, SERIAL_EWMA_ALPHA)
    return replace(model, serial_cost_card_s=serial, latency_samples=samples)


def serial_time_s(latency_s: float, rate_rps: float, a: float, k: float, z: float) -> float:
    """The service time ``t`` at which the model's quantile is ``latency_s`` at ``rate_rps``.

    ``t * (a + k z rho / (1 - rho)) = L`` with ``rho = rate * t`` is increasing in ``t`` on
    ``[0, 1 / rate)``, from 0 to infinity: one root, that of
    ``(k z - a) rate t^2 + (a + L rate) t - L = 0`` written in the form that stays exact when
    its leading coefficient is zero or negative. Always under ``1 / rate``: a steady queue.
    """
    quad = (k * z - a) * rate_rps
    lin = a + latency_s * rate_rps
    return 2.0 * latency_s / (lin + math.sqrt(lin * lin + 4.0 * quad * latency_s))
