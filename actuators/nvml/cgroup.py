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
import logging
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger("sloscale.agent")

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


REFRESH_INTERVAL_S = 30.0
"""How often, at most, the kubelet's pod list is read again for UIDs it did not name."""

_DENIED_HINT = {
    401: (
        "the kubelet did not accept the agent's ServiceAccount token (is the token mounted, "
        "and the kubelet's webhook authentication on?)"
    ),
    403: (
        "grant the agent's ServiceAccount get on nodes/pods (deploy/agent/rbac.yaml; kubelets "
        "before 1.33, or with KubeletFineGrainedAuthz off, ask for nodes/proxy instead: see "
        "deploy/agent/rbac.yaml before granting it)"
    ),
}


class KubeletPodResolver:
    """Resolves UIDs from the kubelet's ``/pods`` list.

    The list is read again when a UID is unknown, but at most once per
    ``min_refresh_interval_s``: a UID the kubelet does not name (a process outside the pods
    it lists, a pod just gone) or a kubelet that refuses the list (401, 403) costs one request
    per interval, not one per GPU process per scrape. Meanwhile unknown UIDs resolve to
    ``None``: the processes count on their card and are named by ``pod_uid`` only. A refusal
    is logged once, with what to grant, until a read succeeds again. Not thread-safe: the
    ``Exporter`` collects under its lock.
    """

    def __init__(
        self,
        url: str = "https://127.0.0.1:10250/pods",
        *,
        token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        insecure_skip_verify: bool = True,
        timeout_s: float = 5.0,
        min_refresh_interval_s: float = REFRESH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.token_file = token_file
        self.insecure_skip_verify = insecure_skip_verify
        self.timeout_s = timeout_s
        self.min_refresh_interval_s = min_refresh_interval_s
        self.clock = clock
        self._pods: dict[str, PodName] = {}
        self._containers: dict[str, str] = {}
        self._refreshed_at_s: float | None = None
        self._reported: str | None = None  # the failure last logged, until a read succeeds

    def resolve(self, identity: PodIdentity) -> PodName | None:
        if identity.uid not in self._pods and self._may_refresh():
            self.refresh()
        pod = self._pods.get(identity.uid)
        if pod is None:
            return None
        container = self._containers.get(identity.container_id or "", "")
        return PodName(pod.namespace, pod.name, container)

    def _may_refresh(self) -> bool:
        last = self._refreshed_at_s
        return last is None or self.clock() - last >= self.min_refresh_interval_s

    def refresh(self) -> None:
        """Read the kubelet's pod list now; on failure keep the last one."""
        self._refreshed_at_s = self.clock()
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
        except urllib.error.HTTPError as e:
            self._report(f"HTTP {e.code} {e.reason}", _DENIED_HINT.get(e.code))
            return
        except (OSError, ValueError) as e:
            self._report(f"{type(e).__name__}: {e}", None)
            return
        if self._reported is not None:
            log.info("kubelet pod list %s read again: GPU processes are named by pod", self.url)
            self._reported = None
        self._pods, self._containers = parse_pod_list(body)

    def _report(self, failure: str, hint: str | None) -> None:
        """Log a failure once (then at debug level) until a read succeeds."""
        if failure == self._reported:
            log.debug("kubelet pod list %s: %s", self.url, failure)
            return
        self._reported = failure
        log.warning(
            "kubelet pod list %s: %s; GPU processes of pods not listed before are not named "
            "(they count on their card's series only; retried at most every %gs)%s",
            self.url,
            failure,
            self.min_refresh_interval_s,
            f": {hint}" if hint else "",
        )


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
