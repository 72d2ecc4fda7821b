"""Start and stop a real local Kubernetes control plane on loopback.

By default a living one: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok playing
``nodes`` Nodes, so Deployments get Pods that become Ready, Jobs complete, Namespaces finish deleting, the
garbage collector runs and aggregated RBAC roles have rules. ``bare=True`` starts only etcd and
kube-apiserver, the way controller-runtime's envtest does.

Orchestration: it owns the work directory, the ports, the processes and the readiness waits, and hands
out credentials for real users (client certificates signed by the client CA). It must not know anything
about driftwarden's webhook or auditor.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import yaml

from devtools.controlplane.binaries import BinarySet, KwokFiles, find_binaries, find_kwok
from devtools.controlplane.components import (
    CONTROLLER_MANAGER_USER,
    SCHEDULER_USER,
    ControllerFiles,
    audit_argv,
    controller_manager_argv,
    kwok_argv,
    node_manifest,
    node_names,
    nodes_ready,
    roles_aggregated,
    scheduler_argv,
)
from devtools.controlplane.kubeconfig import kubeconfig
from devtools.controlplane.pkifiles import ControlPlanePki, create_pki
from devtools.controlplane.processes import ManagedProcess
from driftwarden.errors import ControlPlaneError
from driftwarden.kube.client import UserCredentials

ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters",)

_Check = Callable[[aiohttp.ClientSession], Awaitable[bool]]


@dataclass(frozen=True)
class ControlPlaneSettings:
    """How to run the control plane; built once by the entry point (CLI or test fixture)."""

    bin_dir: Path
    work_dir: Path | None = None
    """Where data, certificates, logs and kubeconfigs go; a temporary directory when None."""
    start_timeout: float = 90.0
    keep_work_dir: bool = False
    bare: bool = False
    """Only etcd and kube-apiserver: no controllers, scheduler or nodes."""
    kwok_dir: Path | None = None
    """Where kwok and its stages are (``devtools.controlplane.binaries.kwok_dir``); needed unless bare."""
    nodes: int = 2
    """How many fake Nodes kwok plays."""
    apiserver_flags: tuple[str, ...] = ()
    """Extra kube-apiserver flags, appended after the plane's own (``--admission-control-config-file=...``
    for one); the files they name are the caller's to write and keep."""
    audit: bool = False
    """Write the API server's audit log (every write, at Metadata level) to ``audit.log`` in the work dir."""
    watch_cache: bool = True
    """Off: every watch is served by etcd itself, so a compaction reaches resuming watches as 410 Gone."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ControlPlane:
    """etcd + kube-apiserver. ``async with ControlPlane(settings) as cp:`` starts and always stops it."""

    def __init__(self, settings: ControlPlaneSettings) -> None:
        self.settings = settings
        self.binaries: BinarySet = find_binaries(settings.bin_dir, bare=settings.bare)
        self.kwok: KwokFiles | None = None
        if not settings.bare:
            if settings.kwok_dir is None:
                raise ControlPlaneError("a living control plane needs kwok: set kwok_dir, or run it bare")
            self.kwok = find_kwok(settings.kwok_dir)
        self._own_dir = settings.work_dir is None
        self.work_dir = settings.work_dir or Path(tempfile.mkdtemp(prefix="driftwarden-cp-"))
        self.etcd_url = ""
        self.apiserver_port = 0
        self._pki: ControlPlanePki | None = None
        self._etcd: ManagedProcess | None = None
        self._etcd_argv: list[str] = []
        self._apiserver: ManagedProcess | None = None
        self._living: list[ManagedProcess] = []
        self.admin: UserCredentials | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def pki(self) -> ControlPlanePki:
        if self._pki is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._pki

    async def __aenter__(self) -> ControlPlane:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def processes(self) -> tuple[str, ...]:
        """The names of the processes this plane runs, in start order."""
        if self.settings.bare:
            return ("etcd", "kube-apiserver")
        return ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

    @property
    def node_names(self) -> tuple[str, ...]:
        return () if self.settings.bare else node_names(self.settings.nodes)

    async def start(self) -> None:
        """Start etcd, then kube-apiserver, then (unless bare) the controllers, the scheduler and kwok.

        Returns when ``/readyz`` and the default namespace answer and, for a living plane, when every Node
        is Ready and schedulable and the aggregated ``edit`` role has its rules.
        """
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._pki = await asyncio.to_thread(create_pki, self.work_dir / "pki", now=_now())
        try:
            await self._start_etcd()
            self.apiserver_port = free_port()
            self.admin = await asyncio.to_thread(self.user, ADMIN_USER, groups=ADMIN_GROUPS)
            await self.start_apiserver()
            if not self.settings.bare:
                await self._start_living()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop kwok, the scheduler and the controllers, then kube-apiserver, then etcd; remove the work
        directory unless asked to keep it."""
        for proc in reversed(self._living):
            await proc.stop()
        if self._apiserver is not None:
            await self._apiserver.stop()
        if self._etcd is not None:
            await self._etcd.stop()
        if self._own_dir and not self.settings.keep_work_dir:
            await asyncio.to_thread(shutil.rmtree, self.work_dir, True)

    async def stop_apiserver(self) -> None:
        """Stop only kube-apiserver (etcd keeps the data), to test clients that must survive it."""
        if self._apiserver is not None:
            await self._apiserver.stop()

    async def start_apiserver(self) -> None:
        """Start kube-apiserver on the same port and data as before, and wait until it is ready."""
        self._apiserver = ManagedProcess(
            "kube-apiserver", self._apiserver_argv(), self.work_dir / "kube-apiserver.log"
        )
        await self._apiserver.start()
        await self._wait_apiserver_ready()

    async def restart(self, name: str, *, down: float = 0.0) -> None:
        """Stop ``etcd`` or ``kube-apiserver`` and start it again in place (same ports, same data), after
        ``down`` seconds; returns when it is ready again. Everything else keeps running."""
        if name == "etcd" and self._etcd is not None:
            await self._etcd.stop()
            await asyncio.sleep(down)
            await self._run_etcd()
        elif name == "kube-apiserver":
            await self.stop_apiserver()
            await asyncio.sleep(down)
            await self.start_apiserver()
        else:
            raise ControlPlaneError(f"cannot restart {name!r}: only etcd and kube-apiserver restart in place")

    async def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision (so watches from before get 410 Gone);
        returns that revision. Through etcd's own JSON gateway, as ``etcdctl compact`` does."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.post(f"{self.etcd_url}/v3/kv/range", json={"key": "AA==", "limit": 1}) as resp:
                revision = int((await resp.json(content_type=None))["header"]["revision"])
            body = {"revision": revision, "physical": True}
            async with session.post(f"{self.etcd_url}/v3/kv/compaction", json=body) as resp:
                if resp.status != 200:
                    raise ControlPlaneError(f"etcd compaction failed: {resp.status} {await resp.text()}")
        return revision

    @property
    def audit_log(self) -> Path:
        """The API server's audit log (JSON lines), written when the plane runs with ``audit``."""
        return self.work_dir / "audit.log"

    async def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._etcd_argv = [
            str(self.binaries.etcd),
            f"--data-dir={self.work_dir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=default=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]
        await self._run_etcd()

    async def _run_etcd(self) -> None:
        self._etcd = ManagedProcess("etcd", self._etcd_argv, self.work_dir / "etcd.log")
        await self._etcd.start()
        await self._poll(self._etcd, self._etcd_healthy, what="etcd /health")

    async def _start_living(self) -> None:
        assert self.kwok is not None and self.admin is not None and self.admin.kubeconfig is not None
        controller_manager, scheduler = await asyncio.to_thread(
            lambda: (self.user(CONTROLLER_MANAGER_USER), self.user(SCHEDULER_USER))
        )
        assert controller_manager.kubeconfig is not None and scheduler.kubeconfig is not None
        files = ControllerFiles(
            controller_manager_kubeconfig=controller_manager.kubeconfig,
            scheduler_kubeconfig=scheduler.kubeconfig,
            kwok_kubeconfig=self.admin.kubeconfig,
            kwok_stages=self.kwok.stages,
            service_account_key=self.pki.sa_key_file,
            serving_ca=self.pki.serving_ca_file,
        )
        binaries = self.binaries
        assert binaries.kube_controller_manager is not None and binaries.kube_scheduler is not None
        for name, argv in (
            (
                "kube-controller-manager",
                controller_manager_argv(binaries.kube_controller_manager, files),
            ),
            ("kube-scheduler", scheduler_argv(binaries.kube_scheduler, files)),
            ("kwok", kwok_argv(self.kwok.kwok, files)),
        ):
            proc = ManagedProcess(name, argv, self.work_dir / f"{name}.log")
            self._living.append(proc)
            await proc.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for node in self.node_names:
                await self._create_node(session, node)
        kwok_proc = self._living[-1]
        await self._poll(kwok_proc, self._nodes_ready, what=f"{self.settings.nodes} kwok Nodes Ready")
        await self._poll(self._living[0], self._controllers_ready, what="kube-controller-manager")

    async def _create_node(self, session: aiohttp.ClientSession, name: str) -> None:
        url = f"{self.url}/api/v1/nodes"
        async with session.post(url, json=node_manifest(name), ssl=self._admin_ssl()) as resp:
            if resp.status not in (201, 409):
                raise ControlPlaneError(f"cannot create Node {name}: {resp.status} {await resp.text()}")

    async def _get_json(self, session: aiohttp.ClientSession, path: str) -> dict[str, Any] | None:
        async with session.get(f"{self.url}{path}", ssl=self._admin_ssl()) as resp:
            if resp.status != 200:
                return None
            body: dict[str, Any] = await resp.json()
            return body

    async def _nodes_ready(self, session: aiohttp.ClientSession) -> bool:
        nodes = await self._get_json(session, "/api/v1/nodes")
        return nodes is not None and nodes_ready(nodes, self.node_names)

    async def _controllers_ready(self, session: aiohttp.ClientSession) -> bool:
        # Aggregation and the service-account controller are among the first controllers to act: when
        # both have, the controller manager is running with working credentials.
        edit = await self._get_json(session, "/apis/rbac.authorization.k8s.io/v1/clusterroles/edit")
        account = await self._get_json(session, "/api/v1/namespaces/default/serviceaccounts/default")
        return edit is not None and roles_aggregated(edit) and account is not None

    def _apiserver_argv(self) -> list[str]:
        pki = self.pki
        return [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd_url}",
            f"--secure-port={self.apiserver_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--tls-cert-file={pki.apiserver_cert_file}",
            f"--tls-private-key-file={pki.apiserver_key_file}",
            f"--client-ca-file={pki.client_ca_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer=https://127.0.0.1:{self.apiserver_port}/",
            f"--service-account-key-file={pki.sa_pub_file}",
            f"--service-account-signing-key-file={pki.sa_key_file}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            *(
                # A bare plane runs no controllers, so nothing would make the ServiceAccounts this
                # plugin expects; a living one runs with it, as a real cluster does.
                ["--disable-admission-plugins=ServiceAccount"] if self.settings.bare else []
            ),
            f"--cert-dir={self.work_dir / 'apiserver-certs'}",
            *self._audit_argv(),
            *([] if self.settings.watch_cache else ["--watch-cache=false"]),
            *self.settings.apiserver_flags,
        ]

    def _audit_argv(self) -> list[str]:
        return audit_argv(self.work_dir, self.audit_log) if self.settings.audit else []

    def user(self, name: str, *, groups: tuple[str, ...] = ()) -> UserCredentials:
        """Client-certificate credentials (and a kubeconfig) for a real user ``name`` in ``groups``."""
        pair = self.pki.issue_user(name, groups=groups, now=_now())
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        directory = self.work_dir / "users"
        directory.mkdir(exist_ok=True)
        cert_file, key_file = directory / f"{safe}.crt", directory / f"{safe}.key"
        cert_file.write_bytes(pair.cert_pem)
        key_file.write_bytes(pair.key_pem)
        key_file.chmod(0o600)
        config = kubeconfig(
            self.url,
            ca_pem=self.pki.serving_ca.cert_pem,
            user=name,
            cert_pem=pair.cert_pem,
            key_pem=pair.key_pem,
        )
        path = directory / f"{safe}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return UserCredentials(
            self.url, self.pki.serving_ca_file, name, cert_file=cert_file, key_file=key_file, kubeconfig=path
        )

    def _admin_ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.serving_ca_file))
        admin = self.admin
        if admin is None or admin.cert_file is None or admin.key_file is None:
            raise ControlPlaneError("admin credentials were not issued")
        context.load_cert_chain(str(admin.cert_file), str(admin.key_file))
        return context

    async def _etcd_healthy(self, session: aiohttp.ClientSession) -> bool:
        async with session.get(f"{self.etcd_url}/health") as resp:
            return resp.status == 200 and (await resp.json(content_type=None)).get("health") == "true"

    async def _apiserver_ready(self, session: aiohttp.ClientSession) -> bool:
        ssl_context = self._admin_ssl()
        async with session.get(f"{self.url}/readyz", ssl=ssl_context) as resp:
            if resp.status != 200:
                return False
        async with session.get(f"{self.url}/api/v1/namespaces/default", ssl=ssl_context) as resp:
            return resp.status == 200

    async def _wait_apiserver_ready(self) -> None:
        assert self._apiserver is not None
        await self._poll(self._apiserver, self._apiserver_ready, what="kube-apiserver /readyz")

    async def _poll(self, proc: ManagedProcess, check: _Check, *, what: str) -> None:
        deadline = time.monotonic() + self.settings.start_timeout
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() < deadline:
                if not proc.running:
                    raise ControlPlaneError(f"{proc.name} exited while starting:\n{proc.log_tail()}")
                try:
                    if await check(session):
                        return
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    pass  # not listening yet
                await asyncio.sleep(0.2)
        raise ControlPlaneError(
            f"{what} not ready after {self.settings.start_timeout:.0f}s; log {proc.log_file}:\n"
            f"{proc.log_tail()}"
        )
