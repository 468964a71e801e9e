"""Grafana dashboards and Prometheus SLO rules for sloscale, generated from code.

``main_dashboards`` and ``main_rules`` are the ``sloscale dashboards`` and ``sloscale rules``
commands; ``dashboards.catalog`` holds the dashboards and ``dashboards.rules`` the burn-rate
rules. Generation is pure and imports no client library; only the commands (``dashboards.cli``,
imported on first call) read and write files and YAML.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashboards.cli import SnapshotSource


def main_dashboards(argv: Sequence[str]) -> int:
    """``sloscale dashboards --out DIR``; returns the exit code."""
    from dashboards.cli import main_dashboards as run

    return run(argv)


def main_rules(argv: Sequence[str], *, cluster: SnapshotSource | None = None) -> int:
    """``sloscale rules [FILE... | --from-cluster]``; returns the exit code.

    ``cluster`` (anything with ``snapshot()``, e.g. the Kubernetes ``Cluster`` adapter) serves
    ``--from-cluster``; without one that option is a one-line error, exit 2.
    """
    from dashboards.cli import main_rules as run

    return run(argv, cluster=cluster)


__all__ = ["main_dashboards", "main_rules"]
