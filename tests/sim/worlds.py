"""Small simulated worlds for the simulator's tests: one line each, every number visible."""

from __future__ import annotations

from actuators.sim.load import ConstantPattern
from actuators.sim.model import ModelParams
from actuators.sim.world import SimDeployment, SimJob, SimNode, SimWorld
from controller.domain import Allocation, JobAction, Plan, Reason, ScaleAction, WorkloadRef

NS = "t"
MODEL_MIB = 8192


def deployment(
    name: str,
    *,
    replicas: int = 1,
    slice_pct: int = 50,
    rate_rps: float = 5.0,
    t0_s: float = 0.05,
    s_sat_pct: float = 50.0,
    service_cv: float = 0.5,
    cold_start_s: float = 60.0,
    target_ms: float = 200.0,
    enabled: bool = True,
) -> SimDeployment:
    annotations = {"sloscale.io/latency-target-ms": str(target_ms)}
    if enabled:
        annotations["sloscale.io/enabled"] = "true"
    return SimDeployment(
        ref=WorkloadRef(NS, name),
        annotations=annotations,
        model=ModelParams(
            t0_s=t0_s,
            s_sat_pct=s_sat_pct,
            service_cv=service_cv,
            memory_mib=MODEL_MIB,
            cold_start_s=cold_start_s,
        ),
        load=ConstantPattern(rate_rps),
        replicas=replicas,
        slice_pct=slice_pct,
    )


def job(
    name: str,
    *,
    pods: int = 1,
    share_pct: int = 100,
    work_gpu_s: float = 3600.0,
    checkpoint_s: float | None = 600.0,
    submit_s: float = 0.0,
    memory_mib: int = 4096,
) -> SimJob:
    return SimJob(
        ref=WorkloadRef(NS, name, kind="Job"),
        annotations={"sloscale.io/preemptible": "true", "sloscale.io/priority": "low"},
        pods=pods,
        share_pct_per_pod=share_pct,
        memory_mib_per_pod=memory_mib,
        work_gpu_s=work_gpu_s,
        checkpoint_interval_s=checkpoint_s,
        submit_s=submit_s,
    )


def world(
    *deployments: SimDeployment,
    jobs: tuple[SimJob, ...] = (),
    cards: int = 2,
    seed: int = 0,
    card_mib: int = 81920,
) -> SimWorld:
    return SimWorld(
        nodes=(SimNode("node", cards, card_mib),),
        deployments=deployments,
        jobs=jobs,
        seed=seed,
    )


def ref(name: str) -> WorkloadRef:
    return WorkloadRef(NS, name)


def scale(name: str, replicas: int, slice_pct: int, memory_mib: int = MODEL_MIB) -> Plan:
    action = ScaleAction(ref(name), Allocation(replicas, slice_pct), memory_mib, Reason.SCALE_UP)
    return Plan(scale=(action,))


def suspend(name: str, *, suspend: bool = True) -> Plan:
    reason = Reason.PREEMPTED if suspend else Reason.RESUMED
    return Plan(jobs=(JobAction(WorkloadRef(NS, name, kind="Job"), suspend, reason),))
