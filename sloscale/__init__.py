"""sloscale's application shells: the composition roots and what only they use.

The command line (``cli``), ``run`` (production: the Kubernetes adapter and Prometheus),
``demo`` (the embedded simulated cluster), the HTTP API (``api``), the controller's own
Prometheus metrics (``telemetry``), ``validate`` and the benchmark (``bench``). They wire the
adapters in ``actuators`` to the core in ``controller``, which imports none of them.
"""
