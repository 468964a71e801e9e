"""Issue #3's acceptance on every qualifying real trace (about 30 s on 2 cores), in CI."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def _acceptance() -> ModuleType:
    path = Path(__file__).with_name("forecast_acceptance.py")
    spec = importlib.util.spec_from_file_location("forecast_acceptance", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_auto_accepted_on_every_qualifying_trace(traces_dir: Path) -> None:
    acceptance = _acceptance()
    paths = acceptance.qualifying_traces(traces_dir)
    assert len(paths) >= 4, paths  # NASA, two ServeGen, Alibaba LoRA
    results = acceptance.run(traces_dir, ["auto"])
    assert acceptance.check(results) == []
