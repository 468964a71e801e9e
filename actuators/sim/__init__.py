"""The embedded simulated GPU cluster (``sloscale demo``, ``sloscale bench``).

``SimulatedCluster`` implements the ``Cluster`` port and the clock; ``SimMetricsSource``
implements ``MetricsSource`` over what the cluster's exporters expose. The model parameters
and load patterns behind them are hidden from the controller.
"""

from actuators.sim.cluster import SimulatedCluster
from actuators.sim.exporter import LATENCY_BUCKETS_S, Scrape, WorkloadSeries, render_openmetrics
from actuators.sim.load import ConstantPattern, DiurnalPattern, LoadPattern, TracePattern
from actuators.sim.metrics import SimMetricsSource, fraction_at_or_below, histogram_quantile
from actuators.sim.model import ModelParams
from actuators.sim.report import JobReport, MinuteRow, PoolReport, SimReport, WorkloadReport
from actuators.sim.scenarios import demo_world
from actuators.sim.world import SimDeployment, SimJob, SimNode, SimWorld

__all__ = [
    "LATENCY_BUCKETS_S",
    "ConstantPattern",
    "DiurnalPattern",
    "JobReport",
    "LoadPattern",
    "MinuteRow",
    "ModelParams",
    "PoolReport",
    "Scrape",
    "SimDeployment",
    "SimJob",
    "SimMetricsSource",
    "SimNode",
    "SimReport",
    "SimWorld",
    "SimulatedCluster",
    "TracePattern",
    "WorkloadReport",
    "WorkloadSeries",
    "demo_world",
    "fraction_at_or_below",
    "histogram_quantile",
    "render_openmetrics",
]
