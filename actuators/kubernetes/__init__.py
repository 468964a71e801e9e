"""The Kubernetes adapter: the ``Cluster`` port over the official ``kubernetes`` client.

- ``build_cluster(...)`` -> a started ``KubernetesCluster`` (discovery caches running);
- ``build_leader_elector(...)`` -> a ``LeaderElector`` on a Lease; pass it as ``leader`` so
  only the leader writes;
- ``build_snapshot_store(...)`` -> the ``ConfigMapSnapshotStore`` the controller keeps its
  memory in, for a restart or a new leader to go on from (pass the elector as ``leader``);
- ``load_api(kubeconfig)`` -> the ``KubeApi`` all of them share (kubeconfig file, or in-cluster
  service account when ``kubeconfig`` is ``None`` and ``KUBERNETES_SERVICE_HOST`` is set, or
  the default kubeconfig otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration

from actuators.kubernetes.api import ApiCall, ApiError, KubeApi, Recorder, Resource
from actuators.kubernetes.cluster import (
    KubernetesCluster,
    KubernetesOptions,
    LeaderGate,
    ShadowRecord,
)
from actuators.kubernetes.leader import LeaderElector, LeaseConfig
from actuators.kubernetes.scope import Scope
from actuators.kubernetes.snapshots import DEFAULT_NAME, ConfigMapSnapshotStore
from controller.domain import SliceDialect

__all__ = [
    "ApiCall",
    "ApiError",
    "ConfigMapSnapshotStore",
    "KubeApi",
    "KubernetesCluster",
    "KubernetesOptions",
    "LeaderElector",
    "LeaderGate",
    "LeaseConfig",
    "Resource",
    "Scope",
    "ShadowRecord",
    "build_cluster",
    "build_leader_elector",
    "build_snapshot_store",
    "load_api",
]


def load_api(
    kubeconfig: str | None = None,
    *,
    context: str | None = None,
    identity: str = "sloscale",
    recorder: Recorder | None = None,
) -> KubeApi:
    """An API handle from a kubeconfig file, or the in-cluster service account."""
    configuration = Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    else:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    client = ApiClient(configuration)
    client.user_agent = f"sloscale/{identity}"
    return KubeApi(client, recorder=recorder)


def build_cluster(
    kubeconfig: str | None,
    namespaces: str | Iterable[str] | None,
    selector: str | None,
    dry_run: bool,
    *,
    node_selector: str | None = None,
    default_dialect: SliceDialect = SliceDialect.HAMI,
    identity: str | None = None,
    leader: LeaderGate | None = None,
    api: KubeApi | None = None,
    start: bool = True,
) -> KubernetesCluster:
    """The adapter ``sloscale run`` uses; its discovery starts at once unless ``start=False``.

    ``namespaces`` (``None`` or empty: every namespace; ``"a,b"`` or names) is the scope it
    reads and writes in (``scope.Scope``); ``node_selector`` narrows the GPU inventory."""
    who = identity or os.environ.get("POD_NAME") or "sloscale"
    options = KubernetesOptions(
        scope=Scope.of(namespaces),
        selector=selector,
        node_selector=node_selector,
        dry_run=dry_run,
        default_dialect=default_dialect,
        identity=who,
    )
    cluster = KubernetesCluster(api or load_api(kubeconfig, identity=who), options, leader=leader)
    return cluster.start() if start else cluster


def controller_namespace(namespace: str | None = None) -> str:
    """The controller's own namespace: ``namespace``, else the pod's (``POD_NAMESPACE``),
    else ``sloscale``."""
    return namespace or os.environ.get("POD_NAMESPACE") or "sloscale"


def build_snapshot_store(
    api: KubeApi,
    name: str = DEFAULT_NAME,
    namespace: str | None = None,
    *,
    leader: LeaderGate | None = None,
) -> ConfigMapSnapshotStore:
    """The ConfigMap ``name`` in the controller's own namespace (``controller_namespace``)."""
    return ConfigMapSnapshotStore(api, controller_namespace(namespace), name, leader=leader)


def build_leader_elector(
    api: KubeApi,
    namespace: str | None = None,
    *,
    identity: str | None = None,
    lease_name: str = "sloscale-leader",
    lease_duration_s: float = 15.0,
    renew_deadline_s: float = 10.0,
    retry_period_s: float = 2.0,
) -> LeaderElector:
    """A candidate for the Lease ``lease_name`` in ``namespace`` (default: the pod's own,
    from ``POD_NAMESPACE``); not started."""
    ns = controller_namespace(namespace)
    who = identity or os.environ.get("POD_NAME") or f"sloscale-{os.getpid()}"
    return LeaderElector(
        api,
        LeaseConfig(ns, lease_name, lease_duration_s, renew_deadline_s, retry_period_s),
        who,
    )
