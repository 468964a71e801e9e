"""The full ``step`` run is marked ``slow``: select it with ``-m slow`` or ``SLOSCALE_SLOW=1``.

On this project's 2-core CI machine the compressed run misses one of its checks in about one
run out of three (a late scale-down, attainment a hair under the objective, one direction
change too many), so it is not part of ``.ci/run`` until it is stable there; its shadow-mode
twin (which must fail) and the Ctrl-C test are.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markexpr = str(config.getoption("markexpr", "") or "")
    if os.environ.get("SLOSCALE_SLOW") or ("slow" in markexpr and "not slow" not in markexpr):
        return
    skip = pytest.mark.skip(reason="slow: select with -m slow or SLOSCALE_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
