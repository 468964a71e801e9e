"""Reusable test helpers: a real Prometheus server, test exporters, a delaying proxy."""
