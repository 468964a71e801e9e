"""A real Kubernetes control plane for tests, on 127.0.0.1, without a node that runs anything.

``scripts/install-kube`` builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kubectl and kwok from Go modules (``tests.support.gotool``: skipped with how to build them when
they are not built). ``ControlPlane`` starts them on free loopback ports in a work directory:

- etcd (``--unsafe-no-fsync``: a test's data need not survive a crash);
- kube-apiserver with RBAC (``--authorization-mode=Node,RBAC``), users from a static token
  file (``ADMIN``, in ``system:masters``; ``CONTROLLER``, named as sloscale's ServiceAccount
  ``sloscale/sloscale`` is, so the RBAC of ``deploy/`` applies to it unchanged, and nothing
  more), service-account tokens signed with a key made here, its own self-signed serving
  certificate (the kubeconfigs trust it);
- kube-controller-manager (every controller: ReplicaSets make pods, service accounts are
  created, ...) and kube-scheduler (binds pods by their requests, extended resources
  included);
- kwok, which plays the kubelet of the nodes annotated ``kwok.x-k8s.io/node: fake``: they
  become Ready and renew their Lease, and their pods Running and Ready (the Stages kwokctl
  uses, ``kwok-stages.yaml`` beside the binaries).

Then it creates ``FakeNode``s (8 GPUs as HAMi exposes them by default) and waits until they
are Ready: about 5 s from the first process. ``stop()`` ends every process (terminate, then
kill); the work directory, with each process's log, is the caller's to keep or remove. The
session fixture ``kube`` (``tests/k8s/conftest.py`` imports it) shares one among the tests,
and keeps its logs after a failure. Usage::

    def test_x(kube: ControlPlane) -> None:
        kube.kubectl("apply", "-f", "deploy/base/rbac.yaml")
        api = load_api(str(kube.kubeconfig(CONTROLLER)))

``python -m tests.support.kube`` starts one and prints its kubeconfigs, until interrupted.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import pytest

from tests.support.gotool import GoTool

JsonObj = dict[str, Any]

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)
STAGES = "kwok-stages.yaml"
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT = (_SETPRIV, "--pdeathsig", "KILL") if _SETPRIV else ()
"""util-linux's ``setpriv`` runs each binary with ``PR_SET_PDEATHSIG``: it is killed when the
process that started it dies, so a test run killed by a timeout leaves no control plane behind
(a ``preexec_fn`` doing the same is unsafe in a process with threads)."""

KUBE = GoTool(
    "the Kubernetes control plane",
    "install-kube",
    "SLOSCALE_KUBE",
    "go builds of etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and "
    "kwok, about 20 min on one core",
    files=(*BINARIES, STAGES),
    build_timeout_s=3600,  # a cold build on a new machine is about 20 min on one core
)

FAKE_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
"""What marks a node as kwok's (``--manage-nodes-with-annotation-selector``)."""

ADMIN = "admin"
CONTROLLER = "system:serviceaccount:sloscale:sloscale"
"""The user sloscale runs as in the cluster (its ServiceAccount, ``deploy/base``)."""

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def require_kube() -> Path:
    """The directory of the built binaries, or skip the calling test saying how to build them."""
    return Path(KUBE.require())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ec_private_key_pem() -> bytes:
    """A new P-256 private key, PEM ``EC PRIVATE KEY`` (RFC 5915), for signing service-account
    tokens, without a crypto library: the key is a random scalar below the curve's order, and
    the public key, optional in the format, is derived by whoever reads it (Go does)."""
    d = secrets.randbelow(P256_ORDER - 1) + 1
    prime256v1 = bytes.fromhex("06082a8648ce3d030107")  # OID 1.2.840.10045.3.1.7
    body = (
        bytes.fromhex("020101")  # version 1
        + b"\x04\x20"
        + d.to_bytes(32, "big")  # privateKey
        + b"\xa0"
        + bytes([len(prime256v1)])
        + prime256v1  # [0] parameters: the curve
    )
    der = b"\x30" + bytes([len(body)]) + body
    lines = base64.encodebytes(der).decode().strip()
    return f"-----BEGIN EC PRIVATE KEY-----\n{lines}\n-----END EC PRIVATE KEY-----\n".encode()


@dataclass(frozen=True, slots=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    token: str = field(default_factory=lambda: secrets.token_hex(16))


@dataclass(frozen=True, slots=True)
class FakeNode:
    """A node kwok keeps Ready. By default a HAMi node of ``gpus`` 80 GiB cards: allocatable
    ``nvidia.com/gpu`` (one per card), ``gpucores`` (100 per card) and ``gpumem`` (MiB), with
    GPU feature discovery's count and memory labels."""

    name: str
    gpus: int = 8
    card_memory_mib: int = 81920
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def manifest(self) -> JsonObj:
        resources = {
            "cpu": "64",
            "memory": "512Gi",
            "pods": "110",
            "nvidia.com/gpu": str(self.gpus),
            "nvidia.com/gpucores": str(100 * self.gpus),
            "nvidia.com/gpumem": str(self.card_memory_mib * self.gpus),
        }
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "annotations": {
                    FAKE_NODE_ANNOTATION[0]: FAKE_NODE_ANNOTATION[1],
                    "node.alpha.kubernetes.io/ttl": "0",
                    **self.annotations,
                },
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                    "nvidia.com/gpu.count": str(self.gpus),
                    "nvidia.com/gpu.memory": str(self.card_memory_mib),
                    **self.labels,
                },
            },
            "status": {"capacity": resources, "allocatable": dict(resources)},
        }


class ControlPlaneError(RuntimeError):
    pass


@dataclass
class LoggedProcess:
    """A process started by a test, its output in ``log_path``: the control plane's
    components, and the ``sloscale run`` processes the end-to-end tests start."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, grace_s: float = 60.0) -> None:
        """``sig``, then SIGKILL after ``grace_s``; the log closed either way."""
        if self.alive():
            self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
        self.log.close()

    def tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"--- {self.name} ({self.log_path})\n" + "\n".join(text[-lines:])


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok under
    ``workdir``; ``start()`` returns once the API server is ready, every controller is
    serving and the fake nodes are Ready."""

    def __init__(
        self,
        binaries: Path,
        workdir: Path,
        *,
        nodes: Sequence[FakeNode] = (FakeNode("gpu-1"), FakeNode("gpu-2")),
        users: Sequence[User] = (),
    ) -> None:
        self.binaries = binaries
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = tuple(nodes)
        components = ("kube-controller-manager", "kube-scheduler", "kwok")
        self.users: dict[str, User] = {
            ADMIN: User(ADMIN, ("system:masters",)),
            CONTROLLER: User(
                CONTROLLER, ("system:serviceaccounts", "system:serviceaccounts:sloscale")
            ),
            **{c: User(f"test:{c}", ("system:masters",)) for c in components},
            **{u.name: u for u in users},
        }
        self.port = free_port()
        self.startup_s: dict[str, float] = {}
        """Seconds from the first process's start until each step was reached."""
        self._processes: list[LoggedProcess] = []
        self._t0 = 0.0

    # ---- what tests use ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The CA of the API server's self-signed serving certificate, which the kubeconfigs
        trust and the controller manager publishes (``--root-ca-file``)."""
        return self.workdir / "pki" / "ca.crt"

    def kubeconfig(self, user: str = ADMIN) -> Path:
        """A kubeconfig file for ``user`` (``ADMIN``, ``CONTROLLER`` or one of ``users``)."""
        path = self.workdir / "kubeconfig" / f"{user.replace(':', '_')}.yaml"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "kube",
                        "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                    }
                ],
                "users": [{"name": user, "user": {"token": self.users[user].token}}],
                "contexts": [{"name": "kube", "context": {"cluster": "kube", "user": user}}],
                "current-context": "kube",
            }
            path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        return path

    def kubectl(
        self, *args: str, user: str = ADMIN, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binaries / "kubectl"), f"--kubeconfig={self.kubeconfig(user)}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and proc.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def request(
        self, method: str, path: str, body: JsonObj | None = None, *, user: str = ADMIN
    ) -> JsonObj:
        """One API request as ``user``; a JSON answer, or ``ControlPlaneError`` with the
        server's message."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.users[user].token}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._tls(), timeout=10) as resp:
                answer: JsonObj = json.loads(resp.read() or b"{}")
                return answer
        except urllib.error.HTTPError as e:
            raise ControlPlaneError(f"{method} {path}: {e.code} {e.read().decode()}") from e
        except OSError as e:  # URLError included: refused, reset, timed out
            raise ControlPlaneError(f"{method} {path}: {e}") from e

    def answer(
        self, method: str, path: str, body: JsonObj | None = None, *, user: str = ADMIN
    ) -> tuple[int, JsonObj]:
        """One API request as ``user``: the HTTP status and the JSON answer, a refusal's
        ``Status`` too (``request`` raises on it)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.users[user].token}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._tls(), timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def create_namespace(self, name: str, timeout_s: float = 30.0) -> None:
        """A namespace, once its ``default`` ServiceAccount exists (pods are refused before:
        the controller manager creates it)."""
        self.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        self.wait_for(
            f"ServiceAccount {name}/default",
            lambda: self._exists(f"/api/v1/namespaces/{name}/serviceaccounts/default"),
            timeout_s,
        )

    def wait_for(self, what: str, check: Callable[[], bool], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return
            self._check_alive()
            time.sleep(0.1)
        raise ControlPlaneError(f"{what}: not reached in {timeout_s:g} s\n{self.log_tails()}")

    def log_tails(self, lines: int = 15) -> str:
        """The last ``lines`` of every process's log, each headed by its path."""
        out = []
        for log in sorted(self.workdir.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()
            out.append(f"--- {log}\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    # ---- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout_s: float = 120.0) -> Self:
        try:
            self._start(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout_s: float) -> None:
        self._t0 = time.monotonic()
        w = self.workdir
        (w / "pki").mkdir(exist_ok=True)
        key = w / "pki" / "service-account.key"
        key.write_bytes(ec_private_key_pem())
        tokens = w / "pki" / "tokens.csv"
        tokens.write_text(
            "".join(
                f'{u.token},{u.name},{u.name},"{",".join(u.groups)}"\n' for u in self.users.values()
            )
        )
        etcd_port, etcd_peer = free_port(), free_port()
        self._spawn(
            "etcd",
            f"--data-dir={w / 'etcd'}",
            "--name=default",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        )
        self._spawn(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={w / 'pki'}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={key}",
            f"--service-account-signing-key-file={key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            # The "kubernetes" Service's endpoints would be 127.0.0.1, which Endpoints refuse.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        )
        deadline = self._t0 + timeout_s
        self.wait_for("kube-apiserver /readyz", self._api_ready, deadline - time.monotonic())
        self.startup_s["kube-apiserver"] = time.monotonic() - self._t0
        controller_port, scheduler_port = free_port(), free_port()
        self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={self.kubeconfig('kube-controller-manager')}",
            "--bind-address=127.0.0.1",
            f"--secure-port={controller_port}",
            "--controllers=*",
            "--leader-elect=false",
            f"--service-account-private-key-file={key}",
            f"--root-ca-file={self.ca_file}",
            "--use-service-account-credentials=false",
            "--profiling=false",
        )
        self._spawn(
            "kube-scheduler",
            f"--kubeconfig={self.kubeconfig('kube-scheduler')}",
            "--bind-address=127.0.0.1",
            f"--secure-port={scheduler_port}",
            "--leader-elect=false",
            "--profiling=false",
        )
        self._spawn(
            "kwok",
            f"--kubeconfig={self.kubeconfig('kwok')}",
            f"--config={self.binaries / STAGES}",  # not ~/.kwok/kwok.yaml
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=" + "=".join(FAKE_NODE_ANNOTATION),
            f"--server-address=127.0.0.1:{free_port()}",
        )
        for name, port in (
            ("kube-controller-manager", controller_port),
            ("kube-scheduler", scheduler_port),
        ):
            self.wait_for(f"{name} /healthz", partial(_healthy, port), deadline - time.monotonic())
            self.startup_s[name] = time.monotonic() - self._t0
        for node in self.nodes:
            self.request("POST", "/api/v1/nodes", node.manifest())
        self.wait_for("fake nodes Ready", self._nodes_ready, deadline - time.monotonic())
        self.startup_s["nodes Ready"] = time.monotonic() - self._t0
        self.wait_for(
            "ServiceAccount default/default",
            lambda: self._exists("/api/v1/namespaces/default/serviceaccounts/default"),
            deadline - time.monotonic(),
        )
        self.startup_s["ready"] = time.monotonic() - self._t0

    def stop(self) -> None:
        """Every process, last started first, each ended before the next is told: SIGTERM,
        then SIGKILL after 10 s. (All at once, etcd goes before the API server, which then
        waits on it until it is killed.)"""
        while self._processes:
            self._processes.pop().stop(signal.SIGTERM, grace_s=10)

    # ---- internals ---------------------------------------------------------------------------

    def _spawn(self, name: str, *args: str) -> None:
        log_path = self.workdir / f"{name}.log"
        log = log_path.open("ab")
        popen = subprocess.Popen(
            [*_DIE_WITH_PARENT, str(self.binaries / name), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        self._processes.append(LoggedProcess(name, popen, log_path, log))

    def _check_alive(self) -> None:
        for p in self._processes:
            if p.popen.poll() is not None:
                raise ControlPlaneError(
                    f"{p.name} exited ({p.popen.returncode})\n{self.log_tails()}"
                )

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _api_ready(self) -> bool:
        if not self.ca_file.exists() and not self._write_ca():
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", context=self._tls(), timeout=2) as r:
                return bool(r.read() == b"ok")
        except (OSError, urllib.error.URLError, ssl.SSLError):
            return False

    def _write_ca(self) -> bool:
        """``ca_file`` from the chain the API server writes before it serves: its serving
        certificate, then the CA that signed it (``--cert-dir``, no ``--tls-cert-file``)."""
        serving = self.workdir / "pki" / "apiserver.crt"
        end = "-----END CERTIFICATE-----"
        blocks = serving.read_text().split(end) if serving.exists() else []
        certificates = [b.strip() + f"\n{end}\n" for b in blocks if b.strip()]
        if len(certificates) < 2:
            return False
        self.ca_file.write_text(certificates[-1])
        return True

    def _exists(self, path: str) -> bool:
        try:
            self.request("GET", path)
        except ControlPlaneError:
            return False
        return True

    def _nodes_ready(self) -> bool:
        items = self.request("GET", "/api/v1/nodes")["items"]
        ready = {
            n["metadata"]["name"]
            for n in items
            for c in n.get("status", {}).get("conditions", [])
            if c["type"] == "Ready" and c["status"] == "True"
        }
        return {n.name for n in self.nodes} <= ready


def _healthy(port: int) -> bool:
    """``/healthz`` of a controller's own HTTPS server (a self-signed certificate, not checked:
    only whether it answers ok)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}/healthz", context=context, timeout=2
        ) as resp:
            return bool(resp.read() == b"ok")
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture(scope="session")
def kube(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ControlPlane]:
    """One control plane for the session (its start-up takes seconds, not milliseconds): tests
    share it, each in its own namespace. Its work directory, with every process's log, is
    removed after a session without failures and kept (and named) after one with."""
    binaries = require_kube()
    workdir = tmp_path_factory.mktemp("kube")
    failed = request.session.testsfailed
    with ControlPlane(binaries, workdir) as plane:
        yield plane
    if request.session.testsfailed == failed:
        shutil.rmtree(workdir, ignore_errors=True)
        return
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"tests.support.kube: the control plane's logs are in {workdir}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
    """Start one, print its kubeconfigs and start-up times, wait for Ctrl-C."""
    binaries = Path(argv[0]) if argv else KUBE.path()
    workdir = Path(tempfile.mkdtemp(prefix="sloscale-kube-"))
    with ControlPlane(binaries, workdir) as kube:
        print(json.dumps(kube.startup_s, indent=2))
        for user in (ADMIN, CONTROLLER):
            print(f"{user}: KUBECONFIG={kube.kubeconfig(user)}")
        print(f"logs: {workdir}; Ctrl-C stops it", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` and `timeout` stop it cleanly too
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def eventually(
    what: str, check: Callable[[], Any], timeout_s: float = 30.0, poll_s: float = 0.1
) -> Any:
    """``check()``'s first truthy value, polled every ``poll_s``; fails saying what was
    awaited (the real control plane acts on its own time: tests poll, never sleep)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll_s)
    pytest.fail(f"{what}: not reached in {timeout_s:g} s")
