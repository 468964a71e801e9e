"""``sloscale bench``: sloscale against HPA, Knative, static and the oracle on real traces.

``main(argv)`` is the command; ``sloscale.bench.cli`` parses it, ``setup`` builds the
shared world from a trace, ``runner`` replays it once per policy, ``results``/``output``
score and print, ``report`` draws the plots.
"""

from sloscale.bench.cli import main

__all__ = ["main"]
