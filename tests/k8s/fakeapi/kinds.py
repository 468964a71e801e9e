"""The resources the fake API server knows, and its ``Status`` errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JsonObj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    has_status: bool = True
    has_generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "pods", "Pod"),
    Kind("", "v1", "nodes", "Node", namespaced=False),
    Kind("", "v1", "events", "Event", has_status=False),
    Kind("", "v1", "configmaps", "ConfigMap", has_status=False),
    Kind("apps", "v1", "deployments", "Deployment", has_generation=True),
    Kind("batch", "v1", "jobs", "Job", has_generation=True),
    Kind("batch", "v1", "cronjobs", "CronJob", has_generation=True),
    Kind("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", has_generation=True),
    Kind("coordination.k8s.io", "v1", "leases", "Lease", has_status=False),
    Kind("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    Kind("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", has_generation=True),
)
BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}
BY_KIND = {k.kind: k for k in KINDS}


class ApiFailureError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: JsonObj | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> JsonObj:
        body: JsonObj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


__all__ = ["BY_KIND", "BY_PATH", "KINDS", "ApiFailureError", "JsonObj", "Kind"]
