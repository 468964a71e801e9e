"""A slice is read back from the quantities the API server stores, not only from the ones
sloscale wrote: it keeps every quantity in canonical form, so a resize to 40000 MiB reads
``"40k"`` (``tests/k8s/test_real_workloads.py`` shows it on a real kube-apiserver)."""

from __future__ import annotations

import pytest

from actuators.dialects import Slice, read_slice
from controller.domain import SliceDialect


def _pod(limits: dict[str, object]) -> dict[str, object]:
    return {"containers": [{"name": "server", "resources": {"limits": limits}}]}


@pytest.mark.parametrize(
    ("gpumem", "mib"),
    [
        ("40960", 40960),
        ("40k", 40000),
        ("100k", 100000),
        ("2e3", 2000),
        ("1Ki", 1024),
        (8192, 8192),
    ],
)
def test_hami_memory_in_every_canonical_form(gpumem: object, mib: int) -> None:
    limits = {"nvidia.com/gpu": "1", "nvidia.com/gpucores": "50", "nvidia.com/gpumem": gpumem}
    assert read_slice(_pod(limits), {}, 81920) == Slice(SliceDialect.HAMI, 50, mib)


def test_volcano_and_mig_counts_in_canonical_form() -> None:
    volcano = {"volcano.sh/vgpu-number": "1", "volcano.sh/vgpu-cores": "30"}
    volcano["volcano.sh/vgpu-memory"] = "24k"
    assert read_slice(_pod(volcano), {}, 81920) == Slice(SliceDialect.VOLCANO, 30, 24000)
    mig = {"nvidia.com/mig-3g.40gb": "1000m"}  # 1
    assert read_slice(_pod(mig), {}, 81920) == Slice(SliceDialect.MIG, 40, 40960)


@pytest.mark.parametrize("gpumem", ["1500m", "1.5", "abc", "inf", "nan", ""])
def test_a_fractional_or_unparsable_memory_falls_back_to_the_share_of_the_card(
    gpumem: str,
) -> None:
    limits = {"nvidia.com/gpucores": "50", "nvidia.com/gpumem": gpumem}
    assert read_slice(_pod(limits), {}, 81920) == Slice(SliceDialect.HAMI, 50, 40960)
