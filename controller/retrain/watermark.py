"""The ``sloscale.io/retrain-watermark`` annotation and the names of a model's retraining Jobs.

The annotation (JSON, ``Watermark``) holds the sample count and time of the last retraining, a
trigger waiting for its window, the name of the Job started for it, failures and the time of
the next retry; the Jobs are labelled ``sloscale.io/retrain-of=<deployment>`` and named
``<deployment>-retrain-<seq>``. Small pure rules on it: which of two readings wins, a counter
reset, the cooldown, the backoff after a failure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controller.domain import JobState, WorkloadRef
from controller.retrain.window import RetrainConfig

WATERMARK_ANNOTATION = "sloscale.io/retrain-watermark"
RETRAIN_OF_LABEL = "sloscale.io/retrain-of"
_JOB_NAME_MAX = 63  # a Job's name becomes a label value (``job-name``): 63 characters at most


@dataclass(frozen=True, slots=True)
class Watermark:
    """The ``sloscale.io/retrain-watermark`` annotation: the model's retraining state."""

    samples: float | None = None  # count the last retraining trained on (None: no baseline)
    time_s: float | None = None  # when it finished (cooldown runs from here)
    rev: int = 0  # bumped on every write: the newer of two readings wins
    seq: int = 0  # Jobs started so far: names the next one
    triggered_at_s: float | None = None
    triggered_samples: float | None = None
    job: str | None = None  # the Job started for the pending trigger
    job_samples: float | None = None  # the count when it started (the watermark on success)
    started_at_s: float | None = None
    failures: int = 0  # consecutive failed Jobs of the pending trigger
    retry_at_s: float | None = None
    last_job: str | None = None
    last_outcome: str | None = None  # "Succeeded" or "Failed"
    last_finished_s: float | None = None

    def to_annotation(self) -> str:
        """Compact JSON with the keys that are set, sorted (stable across writes)."""
        out: dict[str, Any] = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is not None and not (name in ("failures", "rev", "seq") and value == 0):
                out[_KEYS[name]] = value
        return json.dumps(out, sort_keys=True, separators=(",", ":"))

    @staticmethod
    def parse(text: str | None) -> Watermark:
        """Read the annotation; ``None`` or empty is no watermark. Raises ``ValueError``."""
        if text is None or not text.strip():
            return Watermark()
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{WATERMARK_ANNOTATION} is not JSON: {e.msg}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{WATERMARK_ANNOTATION} must be a JSON object")
        values: dict[str, Any] = {}
        for name in _FIELDS:
            value = raw.get(_KEYS[name])
            if value is None:
                continue
            kind = _KINDS[name]
            ok = (
                isinstance(value, str)
                if kind is str
                else isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            if not ok:
                raise ValueError(f"{WATERMARK_ANNOTATION}: {_KEYS[name]}={value!r} is invalid")
            values[name] = int(value) if kind is int else value
        return Watermark(**values)


_KINDS: dict[str, type] = {
    "samples": float,
    "time_s": float,
    "rev": int,
    "seq": int,
    "triggered_at_s": float,
    "triggered_samples": float,
    "job": str,
    "job_samples": float,
    "started_at_s": float,
    "failures": int,
    "retry_at_s": float,
    "last_job": str,
    "last_outcome": str,
    "last_finished_s": float,
}
_FIELDS = tuple(_KINDS)
_KEYS = {name: name.removesuffix("_s").replace("_", "-") for name in _FIELDS}


def newer(cluster: Watermark, written: Watermark | None) -> Watermark:
    """The watermark to act on: what this process wrote wins until the cache catches up."""
    return written if written is not None and written.rev > cluster.rev else cluster


def counter_reset(samples: float, wm: Watermark, last_samples: float | None) -> bool:
    """A cumulative count that went down was reset (or lost series): never a trigger."""
    below_watermark = wm.samples is not None and samples < wm.samples
    return below_watermark or (last_samples is not None and samples < last_samples)


def cooldown_left_s(wm: Watermark, cooldown_s: float, now_s: float) -> float:
    """Seconds until the cooldown since the last retraining is over (0: over)."""
    if wm.time_s is None:
        return 0.0
    return max(0.0, wm.time_s + cooldown_s - now_s)


def backoff_s(failures: int, cfg: RetrainConfig) -> float:
    """Exponential: base, 2 x base, 4 x base, ... capped at ``backoff_max_s``."""
    return float(min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** max(0, failures - 1)))


def job_name(deployment: str, seq: int) -> str:
    """``<deployment>-retrain-<seq>``, the deployment part cut to keep 63 characters."""
    suffix = f"-retrain-{seq}"
    return deployment[: _JOB_NAME_MAX - len(suffix)].rstrip("-.") + suffix


def model_jobs(ref: WorkloadRef, jobs: Sequence[JobState]) -> tuple[JobState, ...]:
    """The Jobs labelled ``sloscale.io/retrain-of=<deployment>`` in the model's namespace."""
    return tuple(
        j
        for j in jobs
        if j.ref.namespace == ref.namespace and j.labels.get(RETRAIN_OF_LABEL) == ref.name
    )


__all__ = [
    "RETRAIN_OF_LABEL",
    "WATERMARK_ANNOTATION",
    "Watermark",
    "backoff_s",
    "cooldown_left_s",
    "counter_reset",
    "job_name",
    "model_jobs",
    "newer",
]
