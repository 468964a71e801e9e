"""The knobs of a load test, in compressed time, and how they map onto the reference model.

Purely computational, no side effects. A load test runs the reference model of ARCHITECTURE §5
(``mu(s) = min(s, s_sat) / (s_sat * t0)``, cold start) on a wall clock, compressed by
``speedup``: every *slow* time of the control loop (cold start 60 s, scale-down stabilisation
300 s, tick 15 s, the shape's phases) is divided by ``speedup`` so that a run fits in minutes.
A request's own service time is a wall-clock setting (``t0_s``): it is what locust on
127.0.0.1 can measure and what keeps the request rate within what two shared cores can drive,
and every latency the controller sees (the histogram in Prometheus) is wall-clock too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

NAMESPACE = "loadtest"
DEPLOYMENT = "inference"


@dataclass(frozen=True, slots=True)
class ServiceModel:
    """The emulated model server: reference-model parameters in wall-clock seconds."""

    t0_s: float = 0.05  # mean service time at a share >= s_sat
    s_sat_pct: float = 50.0  # share beyond which a larger slice buys nothing
    service_cv: float = 0.5  # coefficient of variation of one request's service time
    memory_mib: int = 8192  # GPU memory per replica
    cards: int = 12
    card_memory_mib: int = 81920

    def mean_service_s(self, slice_pct: float) -> float:
        """``1 / mu(s) = s_sat * t0 / min(s, s_sat)``."""
        return self.s_sat_pct * self.t0_s / min(max(slice_pct, 1e-9), self.s_sat_pct)

    def used_share_pct(self, slice_pct: float) -> float:
        """Share of a card a busy replica's kernels use: ``min(s, s_sat)``."""
        return min(slice_pct, self.s_sat_pct)


@dataclass(frozen=True, slots=True)
class SloSettings:
    """The SLO the emulated Deployment asks for through its ``sloscale.io/`` annotations."""

    latency_target_ms: float = 300.0
    latency_quantile: float = 0.95
    # A compressed run is dominated by its step: detection, the cold start and the backlog
    # they leave make the first seconds of a x4 or x8 step bad whatever the controller does,
    # and those seconds weigh far more in a 100-240 s run than in a real SLO window.
    objective_pct: float = 80.0
    min_replicas: int = 1
    max_replicas: int = 24  # the x8 spike needs ~13 at steady state, more to drain its backlog
    slice_min_pct: int = 50
    slice_max_pct: int = 50
    slice_step_pct: int = 10
    metrics_profile: str = "http"
    latency_metric: str | None = None  # sloscale.io/latency-metric (an LLM's ttft or tpot)

    def annotations(self) -> dict[str, str]:
        metric = (
            {}
            if self.latency_metric is None
            else {"sloscale.io/latency-metric": self.latency_metric}
        )
        return {
            **metric,
            "sloscale.io/enabled": "true",
            "sloscale.io/latency-target-ms": f"{self.latency_target_ms:g}",
            "sloscale.io/latency-quantile": f"{self.latency_quantile:g}",
            "sloscale.io/objective": f"{self.objective_pct:g}",
            "sloscale.io/window": "1h",
            "sloscale.io/min-replicas": str(self.min_replicas),
            "sloscale.io/max-replicas": str(self.max_replicas),
            "sloscale.io/slice-min": str(self.slice_min_pct),
            "sloscale.io/slice-max": str(self.slice_max_pct),
            "sloscale.io/slice-step": str(self.slice_step_pct),
            "sloscale.io/metrics-profile": self.metrics_profile,
        }


@dataclass(frozen=True, slots=True)
class TimeSettings:
    """Reference times (seconds of the modelled world) and the compression factor."""

    speedup: float = 12.0
    cold_start_ref_s: float = 60.0
    scale_down_delay_ref_s: float = 300.0
    tick_ref_s: float = 15.0
    scrape_interval_s: float = 0.5  # wall clock: Prometheus' own resolution
    window_ticks: float = 2.0  # rate/latency window of the queries, in ticks

    @property
    def cold_start_s(self) -> float:
        return self.cold_start_ref_s / self.speedup

    @property
    def scale_down_delay_s(self) -> float:
        return self.scale_down_delay_ref_s / self.speedup

    @property
    def tick_s(self) -> float:
        return self.tick_ref_s / self.speedup

    @property
    def window_s(self) -> float:
        return max(self.window_ticks * self.tick_s, 4 * self.scrape_interval_s)

    @property
    def lead_time_s(self) -> float:
        """What the loop forecasts over: cold start, one tick and one scrape."""
        return self.cold_start_s + self.tick_s + self.scrape_interval_s


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """How locust turns a shape's multiplier into users: ``users * per_user_rps`` rps."""

    base_rps: float = 16.0
    per_user_rps: float = 0.5
    spawn_rate: float = 200.0  # users per second: a step is a step

    def users(self, multiplier: float) -> int:
        return max(0, round(self.base_rps * multiplier / self.per_user_rps))


@dataclass(frozen=True, slots=True)
class LlmService:
    """A vLLM-like server that batches continuously (``actuators.sim.batching``, the
    simulator's model), in wall-clock seconds on a whole card: 8 ms decode steps, 40k prefill
    tokens/s, batches of 32. On the Azure code trace's lengths a request alone takes ~0.28 s
    (first token ~0.05 s); a card keeps first tokens fast up to ~10 rps."""

    decode_s_per_token: float = 0.008
    prefill_s_per_token: float = 0.000025
    max_num_seqs: int = 32
    kv_cache_tokens: int = 200_000
    step_growth: float = 0.1
    token_trace: str | None = None  # the Azure LLM trace's requests CSV; None: a fixed mix


@dataclass(frozen=True, slots=True)
class LoadTestSettings:
    """Everything one run needs; the defaults hold the CI ``step`` run's checks."""

    service: ServiceModel = field(default_factory=ServiceModel)
    slo: SloSettings = field(default_factory=SloSettings)
    time: TimeSettings = field(default_factory=TimeSettings)
    load: LoadSettings = field(default_factory=LoadSettings)
    initial_replicas: int = 3  # what the quiet load needs: the run starts settled
    initial_slice_pct: int = 50
    gateway_timeout_s: float = 10.0
    seed: int = 1
    llm: LlmService | None = None  # serve a vLLM-like workload instead of the http one

    def emulator_config(self) -> Mapping[str, object]:
        """The JSON the emulator process is started with."""
        s = self.service
        llm = {} if self.llm is None else {"engine": "vllm", **asdict(self.llm)}
        return {
            **llm,
            "namespace": NAMESPACE,
            "name": DEPLOYMENT,
            "t0_s": s.t0_s,
            "s_sat_pct": s.s_sat_pct,
            "service_cv": s.service_cv,
            "memory_mib": s.memory_mib,
            "cards": s.cards,
            "card_memory_mib": s.card_memory_mib,
            "cold_start_s": self.time.cold_start_s,
            "replicas": self.initial_replicas,
            "slice_pct": self.initial_slice_pct,
            "annotations": {
                **self.slo.annotations(),
                # the HPA's 300 s window in compressed time (plain seconds, exact)
                "sloscale.io/scale-down-stabilization": repr(self.time.scale_down_delay_s),
            },
            "gateway_timeout_s": self.gateway_timeout_s,
            "seed": self.seed,
        }


WORKLOADS = ("http", "vllm-ttft")
"""``http``: the default service; ``vllm-ttft``: a vLLM workload whose SLO is on time to first
token (``vllm_ttft_settings``)."""


def vllm_ttft_settings(token_trace: Path | None = None) -> LoadTestSettings:
    """A vLLM Deployment on whole cards (``LlmService``) with a p95 time-to-first-token
    target of 500 ms, read from ``vllm:time_to_first_token_seconds``. End to end its answers
    take longer than that even alone (p95 ~0.9 s): only a TTFT SLO can be met, and it is met
    by keeping the scheduler's queue short, which takes ~2 cards at the base load."""
    trace = None if token_trace is None or not token_trace.exists() else str(token_trace)
    return LoadTestSettings(
        service=ServiceModel(t0_s=0.28, s_sat_pct=100.0, memory_mib=20480, cards=12),
        slo=SloSettings(
            latency_target_ms=500.0,
            max_replicas=12,
            slice_min_pct=100,
            slice_max_pct=100,
            metrics_profile="vllm",
            latency_metric="ttft",
        ),
        initial_replicas=2,
        initial_slice_pct=100,
        llm=LlmService(token_trace=trace),
    )
