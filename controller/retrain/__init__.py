"""Retraining, the data flywheel: start one retraining per crossed threshold, at a good time.

Why it exists: a served model accumulates new data (a cumulative sample counter per model).
When enough has accrued since its last training, sloscale starts its retraining as a
low-priority, preemptible Job on the same GPU pool, in a window the forecast leaves free,
and exactly once, however often the controller restarts or changes leader.

Purely computational, no side effects: plain data in (the counter, the watermark annotation
as read, the model's Jobs, the free share), plain data out (a status, at most one action, at
most one decision). The loop feeds it; the adapters write what it asks.

The state lives on the cluster, never only in this process:

- the Deployment's ``sloscale.io/retrain-watermark`` annotation (JSON, ``Watermark``): the
  sample count and time of the last retraining, a trigger waiting for its window, the name of
  the Job started for it, failures and the time of the next retry;
- the Jobs labelled ``sloscale.io/retrain-of=<deployment>``.

The per-model state machine (``step``)::

    Idle ──new ≥ threshold, cooldown over──► Waiting ──window │ urgent │ deadline──► Running
      ▲                                         ▲                                     │
      └──────── Succeeded: watermark := samples the Job started with ◄────────────────┤
                                                └──── Backoff ◄── Failed (retry later)┘

Exactly once: the trigger is written before anything else, so a restart does not lose it.
A Job is started by writing its name (``<model>-retrain-<seq>``, ``seq`` counted in the
annotation) into the annotation *first* and creating it *second*; creating a name that exists
is success. So a controller that restarts between the two creates the same name (no second
Job), one that restarts after sees the Job, and any unfinished Job of the model, recorded or
not, blocks a new one (an unrecorded one is adopted). A newer annotation this process wrote
but the cache does not show yet wins by its revision ``rev``.

Counter rule (KEDA's lesson): an unavailable or NaN count never triggers and is never zero; a
count below the watermark or below the last reading is a counter reset: the watermark is
rebased on the new count, which never triggers by itself.

The package, by concept: ``watermark`` (the annotation, the Job names, the counter rule),
``window`` (the pool's room and the tuning), ``step`` (the per-model state machine) and
``book`` (every model across ticks, for the loop).
"""

from controller.retrain.book import Model, RetrainBook, forecast_growth, written
from controller.retrain.step import (
    RETRAIN_REASONS,
    RetrainEvent,
    RetrainInput,
    RetrainMemory,
    RetrainOutcome,
    RetrainState,
    RetrainStatus,
    start_reason,
    step,
)
from controller.retrain.watermark import (
    RETRAIN_OF_LABEL,
    WATERMARK_ANNOTATION,
    Watermark,
    backoff_s,
    cooldown_left_s,
    counter_reset,
    job_name,
    model_jobs,
    newer,
)
from controller.retrain.window import RetrainConfig, RetrainWindow, free_share_pct

__all__ = [
    "RETRAIN_OF_LABEL",
    "RETRAIN_REASONS",
    "WATERMARK_ANNOTATION",
    "Model",
    "RetrainBook",
    "RetrainConfig",
    "RetrainEvent",
    "RetrainInput",
    "RetrainMemory",
    "RetrainOutcome",
    "RetrainState",
    "RetrainStatus",
    "RetrainWindow",
    "Watermark",
    "backoff_s",
    "cooldown_left_s",
    "counter_reset",
    "forecast_growth",
    "free_share_pct",
    "job_name",
    "model_jobs",
    "newer",
    "start_reason",
    "step",
    "written",
]
