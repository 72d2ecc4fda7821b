"""``driftwarden dev up``: the living local cluster with driftwarden installed and running, as in production.

Orchestration, development only: it starts the local cluster (``devtools.controlplane``), installs the CRD,
namespace, service accounts and RBAC from ``manifests/`` with the built kubectl, issues the webhook's
certificates with ``certs``, runs ``driftwarden webhook serve`` and installs its configurations with
``driftwarden webhook install`` (both real processes), runs ``driftwarden auditor run`` as the auditor's
service account (a token kubeconfig from the TokenRequest API, so RBAC is exactly the manifests'), starts
Jaeger when it is built, and makes two people: ``alice`` (bound to ``edit``) and ``sre`` (``edit`` and the
break-glass group). Nothing here is imported at run time by the webhook or the auditor.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from certs.pki import CertRequest, issue, new_ca
from devtools.controlplane import ControlPlane, ControlPlaneSettings
from devtools.controlplane.plane import free_port
from devtools.controlplane.processes import ManagedProcess
from devtools.controlplane.serviceaccounts import service_account_credentials, write_token_kubeconfig
from devtools.dev import BREAKGLASS_GROUP
from devtools.jaeger import Jaeger
from driftwarden import contract
from driftwarden.errors import ControlPlaneError
from driftwarden.kube.client import api_client_for

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
INSTALL_FILES = (
    "base/namespace.yaml",
    "crd/applications.driftwarden.io.yaml",
    "rbac/auditor-clusterrole.yaml",
    "base/serviceaccounts.yaml",
    "base/rbac.yaml",
)
"""What ``dev up`` installs from manifests/ (the Deployments, CronJob and NetworkPolicies need an image)."""
PEOPLE = {"alice": (), "sre": (BREAKGLASS_GROUP,)}
TOKEN_SECONDS = 24 * 3600


@dataclass(frozen=True)
class DevSettings:
    """How to run the stack; built once by the entry point."""

    work_dir: Path
    bin_dir: Path
    kwok_dir: Path
    jaeger: Path | None = None
    """The jaeger binary; None runs without tracing."""
    nodes: int = 2
    default_mode: str = "enforce"
    poll_interval: float = 30.0
    python: str = sys.executable
    extra_env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class DevStack:
    """What runs, and how a person reaches it; filled in by ``running``."""

    plane: ControlPlane
    settings: DevSettings
    kubeconfigs: dict[str, Path] = field(default_factory=dict)
    webhook_url: str = ""
    push_url: str = ""
    push_secret: str = ""
    jaeger: Jaeger | None = None
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def admin_kubeconfig(self) -> Path:
        assert self.plane.admin is not None and self.plane.admin.kubeconfig is not None
        return self.plane.admin.kubeconfig

    @property
    def kubectl(self) -> Path:
        return self.plane.binaries.kubectl

    def log(self, name: str) -> Path:
        return self.settings.work_dir / f"{name}.log"


async def _run(argv: Sequence[str], *, what: str, env: Mapping[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise ControlPlaneError(
            f"{what} failed (exit {proc.returncode}): {err.decode(errors='replace').strip()}"
        )
    return out.decode()


async def kubectl(stack: DevStack, *args: str, user: str = "admin") -> str:
    """Run the built kubectl as ``user`` (admin, alice, sre); ControlPlaneError with its stderr on failure."""
    config = stack.admin_kubeconfig if user == "admin" else stack.kubeconfigs[user]
    return await _run([str(stack.kubectl), "--kubeconfig", str(config), *args], what=f"kubectl {args[0]}")


def _driftwarden(stack: DevStack, *args: str) -> list[str]:
    return [stack.settings.python, "-m", "cli.main", *args]


def _write_tls(directory: Path) -> tuple[Path, Path, Path]:
    """The webhook's CA and a serving certificate for 127.0.0.1 (``certs.pki``, as ``certs issue`` uses)."""
    now = dt.datetime.now(dt.UTC)
    ca = new_ca("driftwarden-dev-webhook-ca", now=now, validity=dt.timedelta(days=30))
    leaf = issue(
        CertRequest(common_name="driftwarden-webhook", dns_names=("localhost",), ip_addresses=("127.0.0.1",),
                    server=True, validity=dt.timedelta(days=7)),
        ca=ca, now=now,
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.crt", directory / "tls.crt", directory / "tls.key"
    paths[0].write_bytes(ca.cert_pem)
    paths[1].write_bytes(leaf.cert_pem)
    paths[2].write_bytes(leaf.key_pem)
    paths[2].chmod(0o600)
    return paths


async def _wait_https(url: str, ca_file: Path, proc: ManagedProcess, *, seconds: float = 60) -> None:
    context = ssl.create_default_context(cafile=str(ca_file))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        async with asyncio.timeout(seconds):
            while True:
                if not proc.running:
                    raise ControlPlaneError(f"{proc.name} exited while starting:\n{proc.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    # Any answer over TLS the CA verifies means it serves (the admission port has no probes).
                    async with session.get(url, ssl=context):
                        return
                await asyncio.sleep(0.2)


async def _people(stack: DevStack) -> None:
    for name, groups in PEOPLE.items():
        creds = await asyncio.to_thread(stack.plane.user, name, groups=groups)
        assert creds.kubeconfig is not None
        stack.kubeconfigs[name] = creds.kubeconfig
        await kubectl(
            stack, "create", "clusterrolebinding", f"{name}-edit", "--clusterrole=edit", f"--user={name}"
        )


async def _auditor_kubeconfig(stack: DevStack) -> Path:
    assert stack.plane.admin is not None
    admin = api_client_for(stack.plane.admin)
    try:
        creds = await service_account_credentials(
            admin, contract.DEFAULT_INSTALL_NAMESPACE, contract.AUDITOR_SERVICE_ACCOUNT,
            server=stack.plane.url, ca_file=stack.plane.pki.serving_ca_file, expiration_seconds=TOKEN_SECONDS,
        )  # fmt: skip
    finally:
        await admin.close()
    path = stack.settings.work_dir / "auditor.kubeconfig"
    return await asyncio.to_thread(write_token_kubeconfig, creds, path)


async def _start(stack: DevStack, name: str, argv: list[str], env: Mapping[str, str]) -> ManagedProcess:
    proc = ManagedProcess(name, argv, stack.log(name), env=dict(env))
    stack.processes.append(proc)
    await proc.start()
    return proc


@contextlib.asynccontextmanager
async def running(settings: DevSettings, *, env: Mapping[str, str]) -> AsyncIterator[DevStack]:
    """The whole stack for the block; everything is stopped (in reverse) when it ends."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    plane_settings = ControlPlaneSettings(
        bin_dir=settings.bin_dir, work_dir=settings.work_dir / "cluster", keep_work_dir=True,
        kwok_dir=settings.kwok_dir, nodes=settings.nodes,
    )  # fmt: skip
    async with contextlib.AsyncExitStack() as exits:
        plane = await exits.enter_async_context(ControlPlane(plane_settings))
        stack = DevStack(plane, settings)
        exits.push_async_callback(_stop_all, stack)
        child_env = {**env, **settings.extra_env, "PYTHONUNBUFFERED": "1"}
        child_env.pop("KUBECONFIG", None)
        if settings.jaeger is not None:
            jaeger = await exits.enter_async_context(Jaeger(settings.jaeger, settings.work_dir / "jaeger"))
            stack.jaeger = jaeger
            child_env.update(jaeger.otel_env())
        for rel in INSTALL_FILES:
            await kubectl(stack, "apply", "--server-side", "--field-manager=driftwarden-installer", "-f",
                          str(MANIFESTS / rel))  # fmt: skip
        await kubectl(stack, "wait", "--for=condition=Established", "--timeout=60s",
                      f"crd/{contract.APPLICATION_CRD_NAME}")  # fmt: skip
        await _people(stack)
        await _webhook(stack, child_env)
        await _auditor(stack, child_env)
        yield stack


async def _webhook(stack: DevStack, env: Mapping[str, str]) -> None:
    ca, cert, key = _write_tls(stack.settings.work_dir / "webhook-tls")
    port = free_port()
    stack.webhook_url = f"https://127.0.0.1:{port}"
    proc = await _start(stack, "webhook", _driftwarden(
        stack, "webhook", "serve", "--host", "127.0.0.1", "--port", str(port), "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--breakglass-group", BREAKGLASS_GROUP,
        "--default-mode", stack.settings.default_mode, "--metrics-port", str(free_port()),
    ), {**env, "OTEL_SERVICE_NAME": "driftwarden-webhook"})  # fmt: skip
    await _wait_https(f"{stack.webhook_url}/validate", ca, proc)
    await _run(_driftwarden(
        stack, "webhook", "install", "--url", stack.webhook_url, "--ca-file", str(ca),
        "--kubeconfig", str(stack.admin_kubeconfig), "--breakglass-group", BREAKGLASS_GROUP,
        "--default-mode", stack.settings.default_mode,
    ), what="driftwarden webhook install", env=env)  # fmt: skip


async def _auditor(stack: DevStack, env: Mapping[str, str]) -> None:
    config = await _auditor_kubeconfig(stack)
    push_port = free_port()
    stack.push_secret = "dev-push-secret"
    stack.push_url = f"http://127.0.0.1:{push_port}/api/webhook"
    await _start(stack, "auditor", _driftwarden(
        stack, "auditor", "run", "--kubeconfig", str(config),
        "--namespace", contract.DEFAULT_INSTALL_NAMESPACE,
        "--no-leader-elect", "--git-cache", str(stack.settings.work_dir / "git-cache"),
        "--kubectl", str(stack.kubectl), "--poll-interval", str(stack.settings.poll_interval),
        "--metrics-port", "0", "--webhook-host", "127.0.0.1", "--webhook-port", str(push_port),
    ), {**env, "OTEL_SERVICE_NAME": "driftwarden-auditor",
        "DRIFTWARDEN_WEBHOOK_SECRET": stack.push_secret})  # fmt: skip


async def _stop_all(stack: DevStack) -> None:
    with contextlib.suppress(ControlPlaneError):
        await _run(_driftwarden(stack, "webhook", "uninstall", "--kubeconfig", str(stack.admin_kubeconfig)),
                   what="driftwarden webhook uninstall")  # fmt: skip
    for proc in reversed(stack.processes):
        await proc.stop()
