"""From a process id to the Kubernetes pod it runs in, through ``/proc/<pid>/cgroup``.

Purely computational except ``pod_of_pid``, which reads one file. The kubelet puts every
container in a cgroup whose path names the pod UID and the container id:

- cgroup v1, cgroupfs driver: ``/kubepods/burstable/pod<uid>/<container-id>``;
- cgroup v1/v2, systemd driver: ``/kubepods.slice/kubepods-burstable.slice/
  kubepods-burstable-pod<uid with _ for ->.slice/cri-containerd-<id>.scope`` (also
  ``docker-<id>.scope``, ``crio-<id>.scope``);
- cgroup v2 has a single line ``0::<path>``.

The UID is then resolved to ``namespace/name`` by a ``PodResolver`` (the kubelet's pod list
on a node, a fixed table in tests).
"""

from __future__ import annotations

import json
import re
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_POD_UID = re.compile(
    r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})"
)
_CONTAINER = re.compile(r"(?:cri-containerd-|docker-|crio-)?([0-9a-f]{64})(?:\.scope)?$")


@dataclass(frozen=True, slots=True)
class PodIdentity:
    """What the cgroup path tells: the pod's UID and the container's id."""

    uid: str
    container_id: str | None = None


@dataclass(frozen=True, slots=True)
class PodName:
    namespace: str
    name: str
    container: str = ""


def parse_cgroup(text: str) -> PodIdentity | None:
    """The pod of one ``/proc/<pid>/cgroup`` file's content, or ``None`` outside Kubernetes."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        match = _POD_UID.search(path)
        if match is None:
            continue
        uid = match.group(1).replace("_", "-")
        last = path.rstrip("/").rsplit("/", 1)[-1]
        container = _CONTAINER.search(last)
        return PodIdentity(uid, container.group(1) if container else None)
    return None


def pod_of_pid(pid: int, proc_root: Path = Path("/proc")) -> PodIdentity | None:
    """Read ``<proc_root>/<pid>/cgroup``; ``None`` when unreadable or not in a pod."""
    try:
        return parse_cgroup((proc_root / str(pid) / "cgroup").read_text())
    except OSError:
        return None


class PodResolver(Protocol):
    def resolve(self, identity: PodIdentity) -> PodName | None:
        """The pod's namespace and name (and container name when known)."""
        ...


class StaticPodResolver:
    """A fixed ``uid -> PodName`` table (tests, or a caller that already listed pods)."""

    def __init__(self, pods: Mapping[str, PodName]) -> None:
        self.pods = dict(pods)

    def resolve(self, identity: PodIdentity) -> PodName | None:
        return self.pods.get(identity.uid)


class KubeletPodResolver:
    """Resolves UIDs from the kubelet's ``/pods`` list (refreshed when a UID is unknown)."""

    def __init__(
        self,
        url: str = "https://127.0.0.1:10250/pods",
        *,
        token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        insecure_skip_verify: bool = True,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.token_file = token_file
        self.insecure_skip_verify = insecure_skip_verify
        self.timeout_s = timeout_s
        self._pods: dict[str, PodName] = {}
        self._containers: dict[str, str] = {}

    def resolve(self, identity: PodIdentity) -> PodName | None:
        if identity.uid not in self._pods:
            self.refresh()
        pod = self._pods.get(identity.uid)
        if pod is None:
            return None
        container = self._containers.get(identity.container_id or "", "")
        return PodName(pod.namespace, pod.name, container)

    def refresh(self) -> None:
        headers = {}
        if self.token_file.exists():
            headers["Authorization"] = f"Bearer {self.token_file.read_text().strip()}"
        context = ssl.create_default_context()
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(self.url, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=context) as resp:
                body = json.loads(resp.read())
        except (OSError, ValueError):
            return
        self._pods, self._containers = parse_pod_list(body)


def parse_pod_list(body: object) -> tuple[dict[str, PodName], dict[str, str]]:
    """A ``PodList`` (kubelet ``/pods``) to ``uid -> PodName`` and ``container id -> name``."""
    pods: dict[str, PodName] = {}
    containers: dict[str, str] = {}
    items = body.get("items", []) if isinstance(body, dict) else []
    for item in items:
        meta = item.get("metadata", {})
        uid = meta.get("uid")
        if not uid:
            continue
        pods[uid] = PodName(meta.get("namespace", ""), meta.get("name", ""))
        for status in item.get("status", {}).get("containerStatuses", []) or []:
            cid = str(status.get("containerID", "")).rsplit("//", 1)[-1]
            if cid:
                containers[cid] = str(status.get("name", ""))
    return pods, containers
