"""Start and stop a real etcd + kube-apiserver on loopback, the way controller-runtime's envtest does.

Orchestration: it owns the work directory, the ports, the two processes and the readiness waits, and
hands out credentials for real users (client certificates signed by the client CA). It must not
know anything about driftwarden's webhook or auditor.
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

import aiohttp
import yaml

from devtools.controlplane.binaries import BinarySet, find_binaries
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
        self.binaries: BinarySet = find_binaries(settings.bin_dir)
        self._own_dir = settings.work_dir is None
        self.work_dir = settings.work_dir or Path(tempfile.mkdtemp(prefix="driftwarden-cp-"))
        self.etcd_url = ""
        self.apiserver_port = 0
        self._pki: ControlPlanePki | None = None
        self._etcd: ManagedProcess | None = None
        self._apiserver: ManagedProcess | None = None
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

    async def start(self) -> None:
        """Start etcd, then kube-apiserver; return when ``/readyz`` and the default namespace answer."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._pki = await asyncio.to_thread(create_pki, self.work_dir / "pki", now=_now())
        try:
            await self._start_etcd()
            self.apiserver_port = free_port()
            self.admin = await asyncio.to_thread(self.user, ADMIN_USER, groups=ADMIN_GROUPS)
            await self.start_apiserver()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop kube-apiserver, then etcd; remove the work directory unless asked to keep it."""
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

    async def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        argv = [
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
        self._etcd = ManagedProcess("etcd", argv, self.work_dir / "etcd.log")
        await self._etcd.start()
        await self._poll(self._etcd, self._etcd_healthy, what="etcd /health")

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
            # No controllers run, so nothing would mint the tokens this plugin expects.
            "--disable-admission-plugins=ServiceAccount",
            f"--cert-dir={self.work_dir / 'apiserver-certs'}",
        ]

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
