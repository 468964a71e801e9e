"""sloscale controller: the core (SLO specs, capacity model, planner, forecasts, control loop).

It imports no adapter and no client library; the application shells that wire it to
Kubernetes, Prometheus and the simulator (CLI, ``run``, ``demo``, API, bench) are ``sloscale``.
"""

__version__ = "0.1.0"
