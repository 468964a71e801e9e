"""Adapters behind the ``Cluster`` port: the simulated GPU cluster (and later Kubernetes)."""
