"""pytest-benchmark of the plan phase at 100 and 1,000 workloads (``--benchmark-enable``).

With benchmarks disabled (the default in CI) each case runs once as a smoke test.
"""

import pytest

from benchmarks.plan_scaling import scenario
from controller.plan import plan


@pytest.mark.parametrize("workloads", [100, 1000])
def test_plan_phase(benchmark, workloads: int) -> None:  # type: ignore[no-untyped-def]
    inputs, snap = scenario(workloads)
    result = benchmark(plan, inputs, [], snap)
    assert len(result.desired) == workloads
