"""``tools/celcheck`` for tests, as ``scripts/install-celcheck`` builds it: the Kubernetes API
server's ValidatingAdmissionPolicy evaluation (k8s.io/apiserver) as a command (about 4 minutes
on 2 cores on a new machine, then cached by a hash of its sources; ``tests.support.gotool``)::

    celcheck = require_celcheck()   # the cached binary, or skip saying how to build it
"""

from __future__ import annotations

from tests.support.gotool import GoTool

CELCHECK = GoTool(
    "celcheck",
    "install-celcheck",
    "SLOSCALE_CELCHECK",
    "a go build of tools/celcheck, about 4 min on 2 cores",
)


def require_celcheck() -> str:
    return CELCHECK.require()
