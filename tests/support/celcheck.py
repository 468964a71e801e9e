"""``tools/celcheck`` for tests, as ``scripts/install-celcheck`` builds it: the Kubernetes API
server's ValidatingAdmissionPolicy evaluation (k8s.io/apiserver) as a command.

Usage::

    celcheck = require_celcheck()   # the cached binary, or skip saying how to build it

``scripts/check`` (the README's test command, and CI's) builds it first with ``--require``:
about 4 minutes on 2 cores on a new machine, then cached outside the repository, keyed by a
hash of its sources. A test run outside it (plain ``pytest``) skips with how to build it,
except under CI (``CI`` set), where a missing binary fails: the acceptance test must not
vanish silently.
With ``SLOSCALE_CELCHECK=1`` and no binary yet, the first test that needs one builds it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "install-celcheck"
BUILD_TIMEOUT_S = 1200
_build_failure: str | None = None


def _installer(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def celcheck_path() -> Path:
    """Where ``scripts/install-celcheck`` puts (or would put) the binary."""
    return Path(_installer("--print-path", timeout=30).stdout.strip())


def require_celcheck() -> str:
    """The built celcheck binary; skips the calling test, with the reason, when there is none."""
    global _build_failure
    path = celcheck_path()
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    if os.environ.get("SLOSCALE_CELCHECK") != "1":
        if os.environ.get("CI"):
            pytest.fail(f"celcheck is not built ({path}): scripts/check builds it")
        pytest.skip(
            f"celcheck is not built ({path}): run `bash scripts/install-celcheck` (a go build "
            "of tools/celcheck, about 4 min on 2 cores) or set SLOSCALE_CELCHECK=1 for "
            "scripts/check to build it"
        )
    if _build_failure is None:
        proc = _installer(timeout=BUILD_TIMEOUT_S)
        if proc.returncode == 0 and path.is_file():
            return str(path)
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        _build_failure = lines[-2] if len(lines) > 1 else (lines[-1] if lines else "?")
    pytest.skip(f"celcheck could not be built by scripts/install-celcheck: {_build_failure}")
