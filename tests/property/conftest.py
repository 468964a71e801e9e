"""Hypothesis settings for the property tests: they must pass on a loaded 2-core machine.

Generation time is no property of the code under test: with both cores busy (a parallel
build, a benchmark) the ``too_slow`` health check and per-example deadlines fail tests whose
strategies are fine, so both are off; the number of examples stays the default.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("sloscale", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sloscale")
