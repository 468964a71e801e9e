"""Ready-made simulated worlds: the one ``sloscale demo`` runs by default, and small ones.

The demo world is sized so that a good policy has something to win: three inference models
whose peaks do not coincide and whose slices saturate at different shares, two low-priority
training jobs that can soak up what inference leaves, and only eight cards, so that
preemption and fragmentation matter at the daily peak.
"""

from __future__ import annotations

from dataclasses import replace

from actuators.sim.batching import ContinuousBatching
from actuators.sim.load import DiurnalPattern
from actuators.sim.model import ModelParams
from actuators.sim.tokens import TokenProfile
from actuators.sim.world import SimDeployment, SimJob, SimJobTemplate, SimNode, SimWorld
from controller.domain import WorkloadRef

DEMO_NAMESPACE = "demo"


def _annotations(target_ms: int, priority: str, *, max_replicas: int = 8) -> dict[str, str]:
    return {
        "sloscale.io/enabled": "true",
        "sloscale.io/latency-target-ms": str(target_ms),
        "sloscale.io/latency-quantile": "0.99",
        "sloscale.io/objective": "99",
        "sloscale.io/priority": priority,
        "sloscale.io/min-replicas": "1",
        "sloscale.io/max-replicas": str(max_replicas),
    }


def _load(base_rps: float, peak_rps: float, peak_hour: float, seed: int) -> DiurnalPattern:
    """A daily curve with flash crowds a policy with sensible headroom can ride out: two a
    day of x1.5-2 for 2-5 minutes (the pattern's defaults are harsher)."""
    return DiurnalPattern(
        base_rps=base_rps,
        peak_rps=peak_rps,
        peak_hour=peak_hour,
        bursts_per_day=2.0,
        burst_factor=(1.5, 2.0),
        burst_duration_s=(120.0, 300.0),
        seed=seed,
    )


CHAT_RETRAIN_THRESHOLD = 1_200_000
"""chat's served requests (one sample each) pass this around noon of the demo's day."""


def _retrain_annotations(threshold: int, template: str) -> dict[str, str]:
    """The data flywheel: retrain on ``threshold`` new samples, off-peak, within 10 hours."""
    return {
        "sloscale.io/retrain-data-query": "sum(sloscale_sim_model_data_samples_total)",
        "sloscale.io/retrain-threshold": str(threshold),
        "sloscale.io/retrain-job-template": f"cronjob/{template}",
        "sloscale.io/retrain-cooldown": "6h",
        "sloscale.io/retrain-deadline": "10h",
    }


def demo_world(seed: int = 0) -> SimWorld:
    """2 nodes x 4 cards of 80 GiB, 3 inference Deployments, 2 preemptible training Jobs."""
    ns = DEMO_NAMESPACE
    deployments = (
        SimDeployment(
            ref=WorkloadRef(ns, "chat"),
            annotations={
                **_annotations(100, "critical"),
                **_retrain_annotations(CHAT_RETRAIN_THRESHOLD, "retrain-chat"),
            },
            model=ModelParams(t0_s=0.02, s_sat_pct=30, memory_mib=6144),
            load=_load(10, 60, 14, seed * 3 + 1),
            replicas=2,
            slice_pct=30,
        ),
        SimDeployment(
            ref=WorkloadRef(ns, "vision"),
            annotations=_annotations(400, "high"),
            model=ModelParams(t0_s=0.06, s_sat_pct=50, memory_mib=12288),
            load=_load(8, 40, 11, seed * 3 + 2),
            replicas=3,
            slice_pct=50,
        ),
        SimDeployment(
            ref=WorkloadRef(ns, "rerank"),
            annotations=_annotations(800, "normal"),
            model=ModelParams(t0_s=0.12, s_sat_pct=80, memory_mib=24576),
            load=_load(4, 16, 19, seed * 3 + 3),
            replicas=3,
            slice_pct=80,
        ),
    )
    job_annotations = {
        "sloscale.io/priority": "low",
        "sloscale.io/preemptible": "true",
        "sloscale.io/min-runtime": "10m",
    }
    jobs = (
        SimJob(
            ref=WorkloadRef(ns, "train-llm", kind="Job"),
            annotations={**job_annotations, "sloscale.io/checkpoint-interval": "30m"},
            pods=2,
            share_pct_per_pod=100,
            memory_mib_per_pod=40960,
            work_gpu_s=30 * 3600.0,
            checkpoint_interval_s=1800.0,
            submit_s=0.0,
        ),
        SimJob(
            ref=WorkloadRef(ns, "finetune-vision", kind="Job"),
            annotations={**job_annotations, "sloscale.io/checkpoint-interval": "15m"},
            pods=1,
            share_pct_per_pod=50,
            memory_mib_per_pod=20480,
            work_gpu_s=6 * 3600.0,
            checkpoint_interval_s=900.0,
            submit_s=2 * 3600.0,
        ),
    )
    return SimWorld(
        nodes=(SimNode("gpu-node-a", 4), SimNode("gpu-node-b", 4)),
        deployments=deployments,
        jobs=jobs,
        seed=seed,
        templates=(
            SimJobTemplate(
                ref=WorkloadRef(ns, "retrain-chat", kind="CronJob"),
                annotations={**job_annotations, "sloscale.io/checkpoint-interval": "10m"},
                pods=1,
                share_pct_per_pod=50,
                memory_mib_per_pod=20480,
                work_gpu_s=1800.0,  # an hour on half a card
                checkpoint_interval_s=600.0,
            ),
        ),
    )


BACKLOG_SHAPES: tuple[tuple[int, int, int], ...] = (
    (1, 100, 40960),  # single-card training
    (2, 100, 40960),  # a two-card gang
    (1, 50, 20480),  # half-card fine-tuning
    (1, 100, 40960),
    (1, 30, 12288),  # a small batch job that fits the fragments
)
"""(pods, share % per pod, MiB per pod) of the backlog's jobs, in turn."""


def backlog_jobs(n: int, *, start_s: float = 0.0, work_gpu_h: float = 24.0) -> tuple[SimJob, ...]:
    """``n`` queued low-priority training jobs that checkpoint every 10 minutes.

    Each holds ``work_gpu_h`` card-hours of work per card it asks for, so a backlog of a few
    outlasts a day; they are submitted suspended and wait for the controller to admit them.
    """
    out = []
    for i in range(n):
        pods, share, mib = BACKLOG_SHAPES[i % len(BACKLOG_SHAPES)]
        out.append(
            SimJob(
                ref=WorkloadRef(DEMO_NAMESPACE, f"backlog-{i + 1}", kind="Job"),
                annotations={
                    "sloscale.io/priority": "low",
                    "sloscale.io/preemptible": "true",
                    "sloscale.io/min-runtime": "10m",
                    "sloscale.io/checkpoint-interval": "10m",
                },
                pods=pods,
                share_pct_per_pod=share,
                memory_mib_per_pod=mib,
                work_gpu_s=work_gpu_h * 3600.0 * pods * share / 100.0,
                checkpoint_interval_s=600.0,
                submit_s=start_s,
                queued=True,
            )
        )
    return tuple(out)


def with_backlog(world: SimWorld, n: int) -> SimWorld:
    """``world`` plus a backlog of ``n`` training jobs submitted at its start."""
    if n <= 0:
        return world
    return replace(world, jobs=(*world.jobs, *backlog_jobs(n, start_s=world.start_s)))


def day_night_world(seed: int = 0, jobs: int = 6) -> SimWorld:
    """Issue 6's day/night pool: inference takes most of 8 cards by day, a backlog the night.

    ``chat`` (critical) is meant to be driven by a diurnal trace (``sloscale demo --trace``);
    ``vision`` (high) follows a daily curve from almost idle at night to most of a node at its
    afternoon peak. ``jobs`` queued training jobs wait for what inference leaves free.
    """
    ns = DEMO_NAMESPACE
    deployments = (
        SimDeployment(
            ref=WorkloadRef(ns, "chat"),
            annotations=_annotations(100, "critical", max_replicas=12),
            model=ModelParams(t0_s=0.02, s_sat_pct=30, memory_mib=6144),
            load=_load(5, 200, 14, seed * 3 + 1),
            replicas=2,
            slice_pct=30,
        ),
        SimDeployment(
            ref=WorkloadRef(ns, "vision"),
            annotations=_annotations(400, "high", max_replicas=10),
            model=ModelParams(t0_s=0.06, s_sat_pct=50, memory_mib=12288),
            load=_load(2, 60, 15, seed * 3 + 2),
            replicas=2,
            slice_pct=50,
        ),
    )
    world = SimWorld(
        nodes=(SimNode("gpu-node-a", 4), SimNode("gpu-node-b", 4)),
        deployments=deployments,
        seed=seed,
    )
    return with_backlog(world, jobs)


LLM_TTFT_TARGET_MS = 2000
"""The LLM scenario's p95 target, on time to first token for ``chat-ttft`` and end to end
for its twin ``chat-e2e``. A continuously batching card keeps first tokens under it (p95
about 0.4 s) until its prefills saturate (~5 rps); end to end it holds only while the batch is
small enough that decode steps stay short (p95 2.2 s at 2 rps): the e2e twin needs about three
times the replicas."""

LLM_DECODE_S_PER_TOKEN = 0.015
"""A decode step with one sequence on a whole card (a 7-8B model on an H100: ~15 ms)."""

LLM_PREFILL_S_PER_TOKEN = 0.00005
"""A prompt token's prefill on a whole card (20k tokens/s): a 2000-token prompt in 0.1 s."""

LLM_BATCHING = ContinuousBatching(max_num_seqs=32, kv_cache_tokens=200_000, step_growth=0.1)
"""A whole card's batch: 32 sequences, 200k KV-cache tokens; a full batch's step 4.1 x a lone
one's (throughput about 520 tokens/s)."""


def llm_ttft_world(
    tokens: TokenProfile, seed: int = 0, *, target_ms: int = LLM_TTFT_TARGET_MS
) -> SimWorld:
    """Two vLLM Deployments serving the same model under the same load and the same p95
    target of ``target_ms``: ``chat-ttft``'s SLO is on time to first token, ``chat-e2e``'s
    on the whole request. Whole cards, up to 16 replicas each, 2 x 12 cards.

    The model batches continuously (``LLM_BATCHING``); its work per request follows
    ``tokens`` (prompt and output lengths from the Azure code trace) at
    ``LLM_PREFILL_S_PER_TOKEN`` and ``LLM_DECODE_S_PER_TOKEN``: 0.5 s for a request alone on
    a card, on average.
    """
    ns = "llm"
    profile = replace(
        tokens,
        prefill_s_per_token=LLM_PREFILL_S_PER_TOKEN,
        decode_s_per_token=LLM_DECODE_S_PER_TOKEN,
        batching=LLM_BATCHING,
    )

    def deployment(name: str, metric: str, load_seed: int) -> SimDeployment:
        return SimDeployment(
            ref=WorkloadRef(ns, name),
            annotations={
                **_annotations(target_ms, "high", max_replicas=16),
                "sloscale.io/metrics-profile": "vllm",
                "sloscale.io/latency-metric": metric,
                "sloscale.io/slice-min": "100",
                "sloscale.io/latency-quantile": "0.95",
                "sloscale.io/objective": "95",
            },
            model=ModelParams(
                t0_s=profile.mean_work_s(), s_sat_pct=100, memory_mib=20480, tokens=profile
            ),
            load=_load(6.0, 20.0, 14, load_seed),
            replicas=2,
            slice_pct=100,
        )

    return SimWorld(
        nodes=(SimNode("gpu-node-a", 12), SimNode("gpu-node-b", 12)),
        deployments=(
            deployment("chat-ttft", "ttft", seed * 3 + 1),
            deployment("chat-e2e", "e2e", seed * 3 + 1),
        ),
        seed=seed,
    )
