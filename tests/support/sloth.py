"""Sloth's CLI for tests, as ``scripts/install-sloth`` builds it from its Go module.

Usage::

    sloth = require_sloth()      # the cached binary, or skip saying how to build it

``scripts/check`` (the README's test command, and CI's) builds it first with ``--require``:
about 5 minutes on 2 cores on a new machine, then cached outside the repository, keyed by
version. A test run outside it (plain ``pytest``) skips with how to build it, except under CI
(``CI`` set), where a missing binary fails: the acceptance test must not vanish silently.
With ``SLOSCALE_SLOTH=1`` and no binary yet, the first test that needs one builds it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "install-sloth"
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


def sloth_path() -> Path:
    """Where ``scripts/install-sloth`` puts (or would put) the binary."""
    return Path(_installer("--print-path", timeout=30).stdout.strip())


def require_sloth() -> str:
    """The built Sloth binary; skips the calling test, with the reason, when there is none."""
    global _build_failure
    path = sloth_path()
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    if os.environ.get("SLOSCALE_SLOTH") != "1":
        if os.environ.get("CI"):
            pytest.fail(f"Sloth's CLI is not built ({path}): scripts/check builds it")
        pytest.skip(
            f"Sloth's CLI is not built ({path}): run `bash scripts/install-sloth` (a go install "
            "of github.com/slok/sloth, about 5 min on 2 cores) or set SLOSCALE_SLOTH=1 for "
            "scripts/check to build it"
        )
    if _build_failure is None:
        proc = _installer(timeout=BUILD_TIMEOUT_S)
        if proc.returncode == 0 and path.is_file():
            return str(path)
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        _build_failure = lines[-2] if len(lines) > 1 else (lines[-1] if lines else "?")
    pytest.skip(f"Sloth's CLI could not be built by scripts/install-sloth: {_build_failure}")
