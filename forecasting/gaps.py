"""Telling outages from quiet: which exact zeros in a series are missing data.

A collector that stops writes nothing, and many exporters then report zero. Read as load, an
outage teaches a forecaster that traffic can vanish for an hour at noon, and every band after
that is wrong. Read as missing, it teaches nothing, which is what an outage actually says.
But some services really are idle most minutes (bursty LoRA inference), so a blanket
"zero = missing" rule would be as wrong the other way.

The rule here: in a series where zeros are rare (at most ``max_zero_share`` of present
points), a run of exact zeros lasting at least ``min_run_s`` is an outage and becomes NaN. In
a sparse series, zeros are load and stay. Purely computational, no side effects.
"""

from __future__ import annotations

import numpy as np

from forecasting.base import FloatArray, History

DEFAULT_ZERO_RUN_MIN = 10.0
"""Minutes of consecutive exact zeros that count as an outage in a dense series."""

DEFAULT_MAX_ZERO_SHARE = 0.05
"""A series with more zero points than this share is sparse: its zeros are real idleness."""


def zero_run_mask(
    values: FloatArray,
    step_s: float,
    *,
    min_run_s: float,
    max_zero_share: float = DEFAULT_MAX_ZERO_SHARE,
) -> np.ndarray[tuple[int], np.dtype[np.bool_]]:
    """True where a point belongs to an outage-length run of zeros in a dense series.

    A run shorter than one step still counts when ``min_run_s`` is below the step (a single
    zero 10-minute window in a series of thousands of requests per window is a gap).
    Purely computational, no side effects.
    """
    zero = values == 0.0
    present = ~np.isnan(values)
    n_present = int(present.sum())
    mask = np.zeros(len(values), dtype=np.bool_)
    if n_present == 0 or zero.sum() > max_zero_share * n_present:
        return mask
    min_steps = max(1, int(np.ceil(min_run_s / step_s - 1e-9)))
    edges = np.diff(np.concatenate(([0], zero.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    for a, b in zip(starts, ends, strict=True):
        if b - a >= min_steps:
            mask[a:b] = True
    return mask


def mask_zero_runs(
    history: History,
    *,
    min_run_s: float = DEFAULT_ZERO_RUN_MIN * 60.0,
    max_zero_share: float = DEFAULT_MAX_ZERO_SHARE,
) -> History:
    """A copy of ``history`` whose outage-length zero runs are NaN (see the module rule).

    Purely computational, no side effects.
    """
    values = np.asarray(history.values, dtype=np.float64)
    mask = zero_run_mask(values, history.step_s, min_run_s=min_run_s, max_zero_share=max_zero_share)
    if not mask.any():
        return history
    return History(
        start_s=history.start_s, step_s=history.step_s, values=np.where(mask, np.nan, values)
    )
