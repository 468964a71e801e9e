"""The locustfile: users posting to ``/v1/infer`` at a fixed pace, following a shape's stages.

Run by the harness as ``python -m locust -f loadtests/locustfile.py --headless ...`` in its
own process (gevent never enters the harness or pytest). The harness passes the shape's
stages and the start instant through the environment:

* ``SLOSCALE_LT_STAGES``: JSON ``[[end_s, multiplier], ...]`` (see ``loadtests.shapes``);
* ``SLOSCALE_LT_T0``: the unix time the shape starts (zero users before it);
* ``SLOSCALE_LT_BASE_RPS``, ``SLOSCALE_LT_PER_USER_RPS``, ``SLOSCALE_LT_SPAWN_RATE``.

A multiplier ``m`` means ``m * base_rps`` requests per second: ``m * base / per_user`` users,
each sending a request every exponentially distributed time (mean ``1 / per_user_rps``)
without waiting for the response (the request runs in its own greenlet): open-loop Poisson
arrivals, as from many independent clients. Closed-loop users would hide demand from an
overloaded service (its throughput, not the offered rate, is what its metrics show) and a fixed
pace would synchronise them into bursts.
"""

from __future__ import annotations

import json
import os
import random
import time

import gevent  # type: ignore[import-untyped]
from locust import FastHttpUser, LoadTestShape, task

STAGES: list[tuple[float, float]] = [
    (float(end), float(m)) for end, m in json.loads(os.environ.get("SLOSCALE_LT_STAGES", "[]"))
]
T0 = float(os.environ.get("SLOSCALE_LT_T0", "0") or 0) or time.time()
BASE_RPS = float(os.environ.get("SLOSCALE_LT_BASE_RPS", "16"))
PER_USER_RPS = float(os.environ.get("SLOSCALE_LT_PER_USER_RPS", "0.5"))
SPAWN_RATE = float(os.environ.get("SLOSCALE_LT_SPAWN_RATE", "200"))


class InferenceUser(FastHttpUser):
    def wait_time(self) -> float:
        return random.expovariate(PER_USER_RPS)

    def on_start(self) -> None:
        time.sleep(random.expovariate(PER_USER_RPS))  # no burst when users are added at once

    concurrency = 64  # connections per user: open loop, requests overlap under overload

    @task
    def infer(self) -> None:
        gevent.spawn(self._post)

    def _post(self) -> None:
        self.client.post("/v1/infer", json={"prompt": "hello", "max_tokens": 16})


class StagedShape(LoadTestShape):
    """Users from the harness's stages, timed from ``SLOSCALE_LT_T0``."""

    def tick(self) -> tuple[int, float] | None:
        t = time.time() - T0
        if t < 0:
            return (0, SPAWN_RATE)
        for end_s, multiplier in STAGES:
            if t < end_s:
                return (max(0, round(BASE_RPS * multiplier / PER_USER_RPS)), SPAWN_RATE)
        return None
