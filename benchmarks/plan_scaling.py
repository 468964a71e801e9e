"""How the plan phase grows with the number of workloads, on a 200-node x 8-card pool.

Runs ``controller.plan.plan`` for 100 and for 1,000 workloads in the same process and reports the
ratio of the median times (near-linear growth means a ratio near 10). Usage:

    python -m benchmarks.plan_scaling [--repeats N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence

from controller.capacity import CapacityModel
from controller.domain import (
    Card,
    ClusterSnapshot,
    DeploymentState,
    Inventory,
    SliceAllocation,
    SloSpec,
    WorkloadMetrics,
    WorkloadRef,
)
from controller.plan import plan
from controller.policy.inputs import PlannerMemory, WorkloadInput

NODES, CARDS_PER_NODE = 200, 8


def scenario(workloads: int, seed: int = 7) -> tuple[list[WorkloadInput], ClusterSnapshot]:
    """``workloads`` learnt workloads, each on 1-4 replicas, packed on the pool, load drifting."""
    rng = random.Random(seed)
    cards = tuple(
        Card(f"node-{n:03d}", i, 81920) for n in range(NODES) for i in range(CARDS_PER_NODE)
    )
    free = {c.card_id: 100 for c in cards}
    card_ids = list(free)
    cursor = 0
    inputs: list[WorkloadInput] = []
    allocations: list[SliceAllocation] = []
    for w in range(workloads):
        ref = WorkloadRef(f"ns-{w % 20}", f"svc-{w}")
        slice_pct = rng.choice([20, 30, 50])
        replicas = rng.randint(1, 4)
        for i in range(replicas):
            while free[card_ids[cursor]] < slice_pct:
                cursor += 1
            free[card_ids[cursor]] -= slice_pct
            allocations.append(
                SliceAllocation(ref.key, f"svc-{w}-{i}", card_ids[cursor], slice_pct, 4096)
            )
        spec = SloSpec(latency_target_ms=rng.choice([100.0, 250.0, 500.0]), max_replicas=16)
        cost = rng.uniform(0.002, 0.01)
        mu = slice_pct / 100 / cost
        rate = replicas * mu * rng.uniform(0.2, 0.9)  # some will scale up, some down
        state = DeploymentState(ref, {}, replicas, replicas, slice_pct, 4096)
        metrics = WorkloadMetrics(
            request_rate_rps=rate, latency_ms=spec.latency_target_ms * 0.6, good_ratio=1.0
        )
        capacity = CapacityModel(
            cost_card_s=cost, sat_pct=rng.choice([None, 40.0]), explored_max_pct=50
        )
        inputs.append(WorkloadInput(spec, state, metrics, rate * 1.1, capacity, PlannerMemory()))
    snap = ClusterSnapshot(
        1000.0, tuple(i.state for i in inputs), (), Inventory(cards, tuple(allocations))
    )
    return inputs, snap


def median_plan_s(workloads: int, repeats: int) -> float:
    inputs, snap = scenario(workloads)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        plan(inputs, [], snap)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    small = median_plan_s(100, args.repeats)
    large = median_plan_s(1000, args.repeats)
    print(
        f"plan phase, {NODES} nodes x {CARDS_PER_NODE} cards: 1,000 vs 100 workloads "
        f"takes {large / small:.1f}x as long (linear would be 10x); "
        f"1,000 workloads plan in {1000 * large:.0f} ms here"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
