"""Can a latency histogram resolve an SLO's target? Purely computational, no side effects.

A histogram only counts requests per bucket: the share of requests under a target that lies
inside a bucket is a guess (Prometheus interpolates linearly), and the guess is worthless when
the bucket is wide. vLLM 0.6.3's ``vllm:e2e_request_latency_seconds`` starts at 1.0 s: with an
800 ms target, requests of 300-400 ms all sit in ``le="1.0"`` and interpolation reads a good
ratio of 0.80 and a p95 of 0.95 s, whatever the load. So a target is *unresolved* when it lies
below the first finite bucket, above the last, or between two bounds more than
``UNRESOLVED_RATIO`` apart; it is resolved when it is a bucket bound or the bucket holding it is
narrow. An unresolved target's SLI is read at the bound under it (``below_s``): the share of
requests provably under the target, a lower bound, said in every decision.

``KNOWN_BUCKETS_S`` holds the default bucket sets of the serving engines' end-to-end latency
histograms, per version, as the upstream sources define them (the controller judges the
buckets Prometheus actually returns; ``sloscale validate`` judges these offline):

- vLLM V0 (``vllm/engine/metrics.py``, v0.6.3, ``Metrics.histogram_e2e_time_request``):
  1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60 s.
- vLLM V1 (``vllm/v1/metrics/loggers.py``, ``PrometheusStatLogger``, ``request_latency_buckets``,
  v0.8 onwards): 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480,
  960, 1920, 7680 s.
- TGI (``router/src/server.rs``, v2/v3: every metric ending in ``duration``): 35 bounds
  ``0.0001 × 1.5^k`` s, k = 1..35 (0.15 ms to ~146 s).
- SGLang (``python/sglang/srt/metrics/collector.py``, ``TokenizerMetricsCollector``,
  ``bucket_e2e_request_latency`` default): 0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40,
  60, 80, 100, 200, 400, 600, 1200, 1800, 2400 s (``--bucket-e2e-request-latency`` overrides).
- ``http``: the OpenTelemetry HTTP semantic conventions' advised boundaries for
  ``http.server.request.duration``: 0.005 ... 10 s.

``KNOWN_SIGNAL_BUCKETS_S`` holds the same for the histograms a ``latency-metric`` of ``ttft``
or ``tpot`` reads (``docs/metrics.md``); the check applies to the chosen histogram's buckets:

- vLLM V0 (``vllm/engine/metrics.py``, v0.6.3): ``vllm:time_to_first_token_seconds`` 0.001 ...
  10 s; ``vllm:time_per_output_token_seconds`` 0.01 ... 2.5 s.
- vLLM V1 (``vllm/v1/metrics/loggers.py``, v0.8-v0.10 and on): TTFT 0.001 ... 2560 s; TPOT, and
  from v0.11 its new name ``vllm:inter_token_latency_seconds``, 0.01 ... 80 s.
- SGLang (``collector.py``): TTFT 0.1 ... 400 s; inter-token latency 0.002 ... 8 s.
- TGI: ``tgi_request_mean_time_per_token_duration`` has every ``duration`` metric's buckets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from controller.domain import LatencyMetric, MetricsProfile, UnresolvedTarget

UNRESOLVED_RATIO = 2.0
"""A target between two finite bounds farther apart than this factor is unresolved."""

BOUND_REL_TOL = 1e-9
"""A target within this relative distance of a bound is that bound."""

_TGI_BOUNDS_S = tuple(0.0001 * 1.5**k for k in range(1, 36))

KNOWN_BUCKETS_S: Mapping[MetricsProfile, tuple[tuple[str, tuple[float, ...]], ...]] = {
    MetricsProfile.HTTP: (
        (
            "OpenTelemetry advised buckets",
            (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
        ),
    ),
    MetricsProfile.VLLM: (
        ("vLLM V0 (v0.6.3)", (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)),
        (
            "vLLM V1",
            (
                *(0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0),
                *(50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0),
            ),
        ),
    ),
    MetricsProfile.TGI: (("TGI", _TGI_BOUNDS_S),),
    MetricsProfile.SGLANG: (
        (
            "SGLang",
            (
                *(0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0),
                *(80.0, 100.0, 200.0, 400.0, 600.0, 1200.0, 1800.0, 2400.0),
            ),
        ),
    ),
}
"""The engines' default end-to-end latency buckets (finite bounds, seconds), per version."""


_VLLM_V1_TPOT_S = (
    *(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75),
    *(1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0),
)

KNOWN_SIGNAL_BUCKETS_S: Mapping[
    tuple[MetricsProfile, LatencyMetric], tuple[tuple[str, tuple[float, ...]], ...]
] = {
    (MetricsProfile.VLLM, LatencyMetric.TTFT): (
        (
            "vLLM V0 (v0.6.3)",
            (
                *(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5),
                *(5.0, 7.5, 10.0),
            ),
        ),
        (
            "vLLM V1",
            (
                *(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5),
                *(5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0),
            ),
        ),
    ),
    (MetricsProfile.VLLM, LatencyMetric.TPOT): (
        (
            "vLLM V0 (v0.6.3)",
            (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5),
        ),
        ("vLLM V1", _VLLM_V1_TPOT_S),
    ),
    (MetricsProfile.SGLANG, LatencyMetric.TTFT): (
        (
            "SGLang",
            (
                *(0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0),
                *(80.0, 100.0, 200.0, 400.0),
            ),
        ),
    ),
    (MetricsProfile.SGLANG, LatencyMetric.TPOT): (
        (
            "SGLang",
            (
                *(0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04),
                *(0.06, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0),
            ),
        ),
    ),
    (MetricsProfile.TGI, LatencyMetric.TPOT): (("TGI", _TGI_BOUNDS_S),),
}
"""The engines' default buckets of their TTFT and TPOT histograms (finite bounds, seconds)."""


def known_buckets(
    profile: MetricsProfile, metric: LatencyMetric = LatencyMetric.E2E
) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """The known default bucket sets of the histogram ``metric`` reads on ``profile``."""
    if metric is LatencyMetric.E2E:
        return tuple(KNOWN_BUCKETS_S.get(profile, ()))
    return KNOWN_SIGNAL_BUCKETS_S.get((profile, metric), ())


def unresolved(target_s: float, bounds_s: Iterable[float]) -> UnresolvedTarget | None:
    """Why ``bounds_s`` (the finite ``le`` values) cannot resolve ``target_s``, or ``None``.

    A target on a bound is exact; one inside a bucket at most ``UNRESOLVED_RATIO`` wide is
    resolved (interpolation within it is a fair estimate). No finite bound: unresolved."""
    finite = sorted({b for b in bounds_s if math.isfinite(b) and b > 0})
    if not finite:
        return UnresolvedTarget(target_s, 0.0, None)
    if any(math.isclose(b, target_s, rel_tol=BOUND_REL_TOL) for b in finite):
        return None
    if target_s < finite[0]:
        return UnresolvedTarget(target_s, 0.0, finite[0])
    if target_s > finite[-1]:
        return UnresolvedTarget(target_s, finite[-1], None)
    below = max(b for b in finite if b < target_s)
    above = min(b for b in finite if b > target_s)
    if above > UNRESOLVED_RATIO * below:
        return UnresolvedTarget(target_s, below, above)
    return None


def known_unresolved(
    profile: MetricsProfile, target_s: float, metric: LatencyMetric = LatencyMetric.E2E
) -> tuple[tuple[str, UnresolvedTarget], ...]:
    """Each known default bucket set of ``profile``'s ``metric`` histogram that cannot
    resolve ``target_s``."""
    found = (
        (name, unresolved(target_s, bounds)) for name, bounds in known_buckets(profile, metric)
    )
    return tuple((name, u) for name, u in found if u is not None)
