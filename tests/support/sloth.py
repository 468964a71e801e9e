"""Sloth's CLI for tests, as ``scripts/install-sloth`` builds it from its Go module (about 5
minutes on 2 cores on a new machine, then cached by version; ``tests.support.gotool``)::

    sloth = require_sloth()      # the cached binary, or skip saying how to build it
"""

from __future__ import annotations

from tests.support.gotool import GoTool

SLOTH = GoTool(
    "Sloth's CLI",
    "install-sloth",
    "SLOSCALE_SLOTH",
    "a go install of github.com/slok/sloth, about 5 min on 2 cores",
)


def require_sloth() -> str:
    return SLOTH.require()
