"""What one replica of a workload can serve, learnt online from its own metrics.

Purely computational, no side effects. sloscale never reads a model's true parameters; it
estimates them from what any GPU cluster exports:

* **GPU cost per request** ``cost_card_s``: card-seconds of SM activity per request,
  ``util × allocated share / rate``. It does not depend on the slice size.
* **Saturation** ``sat_pct``: a model may not use SMs beyond some share of a card. When the
  pod's kernels are busy a fraction ``busy`` of the time but use only ``util × slice`` of the
  card, the effective share is ``util × slice / busy``; well under the slice means saturation.
* **Service time** at slice ``s``: ``cost_card_s / min(s, sat)``.
* **Latency quantile**: each replica is a FIFO queue with Poisson arrivals. We model the
  sojourn time as M/M/1, whose q-quantile is ``-ln(1 - q) / (mu - lambda)``, and learn a
  multiplicative ``latency_factor`` (observed / modelled) that absorbs the real service-time
  distribution. Exponential service is pessimistic for GPU inference, so the factor is usually
  below 1, and predictions degrade gracefully when it has not been learnt yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from controller.domain import Allocation, WorkloadMetrics, available

MIN_REQUESTS_TO_LEARN = 30.0
"""Fewer requests in a window than this give a too-noisy latency quantile to learn from."""

COST_EWMA_ALPHA = 0.15
FACTOR_EWMA_ALPHA = 0.2
SAT_EWMA_ALPHA = 0.3
SATURATION_RATIO = 0.85
"""Effective share under this fraction of the slice counts as saturation."""

LATENCY_FACTOR_BOUNDS = (0.2, 5.0)
RHO_MAX = 0.92
"""Never plan a replica busier than this: the M/M/1 tail explodes near 1."""


@dataclass(frozen=True, slots=True)
class CapacityModel:
    """What sloscale has learnt about one workload; ``None`` fields are not known yet."""

    cost_card_s: float | None = None
    sat_pct: float | None = None
    explored_max_pct: int = 0
    latency_factor: float = 1.0
    factor_samples: int = 0

    @property
    def known(self) -> bool:
        return self.cost_card_s is not None


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
    """Mean service time at ``slice_pct``; requires a known cost."""
    assert model.cost_card_s is not None
    return model.cost_card_s / effective_share(model, slice_pct)


def predicted_latency_ms(
    model: CapacityModel, rate_per_replica_rps: float, slice_pct: int, quantile: float
) -> float:
    """Latency quantile of one replica under ``rate_per_replica_rps``; ``inf`` when overloaded."""
    mu = 1.0 / service_time_s(model, slice_pct)
    if rate_per_replica_rps >= mu:
        return math.inf
    return (
        1000.0 * model.latency_factor * quantile_multiplier(quantile) / (mu - rate_per_replica_rps)
    )


def max_rate_per_replica(
    model: CapacityModel, slice_pct: int, quantile: float, latency_budget_ms: float
) -> float:
    """Largest arrival rate one replica takes with its latency quantile under the budget.

    Inverts the M/M/1 quantile: ``lambda = mu - factor * -ln(1-q) / budget``, capped at
    ``RHO_MAX * mu``. Zero when even an idle replica is too slow.
    """
    mu = 1.0 / service_time_s(model, slice_pct)
    budget_s = latency_budget_ms / 1000.0
    if budget_s <= 0:
        return 0.0
    lam = mu - model.latency_factor * quantile_multiplier(quantile) / budget_s
    return max(0.0, min(lam, RHO_MAX * mu))


def _ewma_log(old: float, new: float, alpha: float) -> float:
    return math.exp((1 - alpha) * math.log(old) + alpha * math.log(new))


def update_capacity(
    model: CapacityModel,
    metrics: WorkloadMetrics,
    current: Allocation,
    ready_replicas: int,
    quantile: float,
) -> CapacityModel:
    """Fold one tick's metrics into the model; unusable metrics leave it unchanged.

    Learns only in a steady state (every desired replica ready), so pods that are starting
    and hold a slice without serving do not bias the cost per request.
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
        busy = metrics.gpu_busy
        if available(busy) and busy is not None and busy > 0.05:
            eff_pct = 100.0 * util * slice_frac / busy
            if eff_pct < SATURATION_RATIO * current.slice_pct:
                sat = out.sat_pct
                out = replace(
                    out,
                    sat_pct=eff_pct
                    if sat is None
                    else (1 - SAT_EWMA_ALPHA) * sat + SAT_EWMA_ALPHA * eff_pct,
                )
            else:
                explored = max(out.explored_max_pct, current.slice_pct)
                sat = out.sat_pct
                if sat is not None and sat < current.slice_pct * SATURATION_RATIO:
                    sat = None  # contradicted: this slice is used in full
                out = replace(out, explored_max_pct=explored, sat_pct=sat)
        else:
            out = replace(out, explored_max_pct=max(out.explored_max_pct, current.slice_pct))

    latency = metrics.latency_ms
    if out.cost_card_s is not None and available(latency) and latency is not None and latency > 0:
        mu = 1.0 / service_time_s(out, current.slice_pct)
        if rate_per_replica < 0.9 * mu:
            modelled = predicted_latency_ms(
                replace(out, latency_factor=1.0), rate_per_replica, current.slice_pct, quantile
            )
            lo, hi = LATENCY_FACTOR_BOUNDS
            factor_obs = min(hi, max(lo, latency / modelled))
            factor = (
                factor_obs
                if out.factor_samples == 0
                else _ewma_log(out.latency_factor, factor_obs, FACTOR_EWMA_ALPHA)
            )
            out = replace(out, latency_factor=factor, factor_samples=out.factor_samples + 1)
    return out
