"""Files from a Go module, as the Go module proxy serves it, for tests that need an upstream
project's generated files (its CRDs) rather than a copy of them in this repository.

``module_dir(UpstreamModule(...))`` runs ``go mod download -json <path>@<version>``, which
fetches the module's zip through GOPROXY into the module cache (``go env GOMODCACHE``; a
second call is a cache hit, no network) and answers with where it is unpacked. The module's
``h1:`` hash is pinned here, as a go.sum line would pin it, so the files are exactly the
release's whatever proxy served them.

No Go, or no proxy: the calling test is skipped with the reason, except under CI (``CI``
set), where it fails, as for the Go-built tools (``tests.support.gotool``).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

DOWNLOAD_TIMEOUT_S = 600


@dataclass(frozen=True, slots=True)
class UpstreamModule:
    """A module version and its go.sum hash (``go mod download -json`` prints it as Sum)."""

    path: str
    version: str
    sum: str


PROMETHEUS_OPERATOR = UpstreamModule(
    "github.com/prometheus-operator/prometheus-operator",
    "v0.85.0",  # the newest the proxy serves (`go list -m -versions`)
    "h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s=",
)
"""Ships its generated CRDs in ``example/prometheus-operator-crd/``."""

KEDA = UpstreamModule(
    "github.com/kedacore/keda/v2",
    "v2.21.0",  # v2.21.1 needs Go >= 1.27.4; the control plane's toolchain is 1.26
    "h1:R6z2HZvstK4RLUMxroNACzBj74xGxt3kG59b5Xc+Xps=",
)
"""Ships its generated CRDs in ``config/crd/bases/``."""


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


@functools.cache
def _download(module: UpstreamModule) -> tuple[Path | None, str, bool]:
    """The module's directory, or why not and whether that is a failure even outside CI."""
    go = shutil.which("go")
    if go is None:
        return None, "go not found on PATH (needed to fetch Go modules through the proxy)", False
    env = {**os.environ, "GOTOOLCHAIN": "local", "GO111MODULE": "on"}
    try:
        proc = subprocess.run(
            [go, "mod", "download", "-json", f"{module.path}@{module.version}"],
            cwd=tempfile.gettempdir(),  # outside any go.mod: the version is the one asked for
            env=env,
            capture_output=True,
            text=True,
            timeout=DOWNLOAD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"go mod download {module.path}@{module.version}: timed out", False
    try:
        info = json.loads(proc.stdout)
    except ValueError:
        info = {}
    where = f"go mod download {module.path}@{module.version}"
    if proc.returncode != 0 or info.get("Error") or not info.get("Dir"):
        error = info.get("Error") or proc.stderr.strip() or f"exit {proc.returncode}"
        return None, f"{where}: {error}", False
    if info.get("Sum") != module.sum:
        return None, f"{where}: hash {info.get('Sum')}, pinned {module.sum}", True
    return Path(info["Dir"]), "", False


def module_dir(module: UpstreamModule) -> Path:
    """The unpacked module (read-only, in the module cache); skips or fails the calling test
    when it cannot be had. A hash other than the pinned one always fails."""
    found, why, fatal = _download(module)
    if found is None:
        if fatal:
            pytest.fail(why)
        _unavailable(why)
    assert found is not None
    return found
