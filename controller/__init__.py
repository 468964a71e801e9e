"""sloscale controller: SLO specs, planner, control loop, API and CLI."""

__version__ = "0.1.0"
