"""The real ``driftwarden webhook serve``, installed in the cluster, for fault tests: killed, frozen, rotated.

The in-process webhook (tests.support.guard) shares the test's event loop, so it cannot be stopped with a
signal; the fault tests need a webhook that dies or stalls the way a pod does, registered with the API
server (tests.support.webhookproc's process, for direct callers, is not). This starts ``webhook serve``
as a child process with its own log, installs its configurations with ``driftwarden webhook install`` (the
command an operator runs, with the admin's kubeconfig: installing is an operator's act, not the webhook's)
and on exit uninstalls them, resumes a frozen process and stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from certs.pki import KeyPair
from devtools.controlplane import ControlPlane
from devtools.controlplane.plane import free_port
from driftwarden.errors import DriftwardenError
from driftwarden.kube.client import api_client_for
from driftwarden.probe import check_answers
from driftwarden.settings import environment
from tests.support.guard import BREAKGLASS_GROUP, serving_certificate, serving_pair
from webhook.install import uninstall

ROOT = Path(__file__).parents[2]


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment without a KUBECONFIG or OTEL_* exporters (no collector runs here)."""
    env = {k: v for k, v in environment().items() if k != "KUBECONFIG" and not k.startswith("OTEL_")}
    env.update(PYTHONUNBUFFERED="1", NO_COLOR="1", **extra)
    return env


async def driftwarden(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the ``driftwarden`` command to completion: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", *argv, cwd=ROOT, env=env or child_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


@dataclass
class InstalledWebhook:
    """One ``driftwarden webhook serve`` process, its log and where it listens."""

    proc: asyncio.subprocess.Process
    url: str
    metrics_port: int
    ca: KeyPair
    ca_file: Path
    log: Path

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def reloads(self) -> int:
        """How many times it has swapped in new TLS material (it logs each one)."""
        return self.text().count("reloaded TLS certificate")

    async def served(self) -> bytes:
        """The certificate (DER) a new TLS connection is handed now."""
        context = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        _, port = self.url.rsplit(":", 1)
        _reader, writer = await asyncio.open_connection("127.0.0.1", int(port), ssl=context)
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
            await writer.wait_closed()
        assert isinstance(der, bytes)
        return der

    def on_disk(self) -> bytes:
        """The certificate (DER) in the serving certificate file."""
        return ssl.PEM_cert_to_DER_cert(self.ca_file.with_name("tls.crt").read_text())

    def rotate(self) -> None:
        """A new serving certificate and key from the same CA, each file replaced atomically, one after
        the other (so for a moment the pair on disk does not match, as with a rotator that writes twice)."""
        leaf = serving_certificate(self.ca, now=dt.datetime.now(dt.UTC))
        for name, pem in (("tls.crt", leaf.cert_pem), ("tls.key", leaf.key_pem)):
            staged = self.ca_file.with_name(f".{name}.new")
            staged.write_bytes(pem)
            os.replace(staged, self.ca_file.with_name(name))

    def freeze(self) -> None:
        """SIGSTOP: the socket stays open and accepts connections, but nothing answers (a stalled pod)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    async def kill(self) -> None:
        """SIGKILL: nothing listens any more (a crashed pod)."""
        if self.proc.returncode is None:
            self.proc.kill()
        async with asyncio.timeout(20):
            await self.proc.wait()

    async def stop(self) -> None:
        self.thaw()
        if self.proc.returncode is None:
            self.proc.terminate()
        async with asyncio.timeout(30):
            await self.proc.wait()


async def _wait_serving(hook: InstalledWebhook, ca: bytes) -> None:
    async with asyncio.timeout(60):
        while True:
            if hook.proc.returncode is not None:
                raise AssertionError(f"webhook serve exited {hook.proc.returncode}:\n{hook.text()}")
            with contextlib.suppress(DriftwardenError):
                await check_answers(hook.url, ca, within=2)
                return
            await asyncio.sleep(0.2)


async def install_webhook(
    plane: ControlPlane, hook: InstalledWebhook, *, failure_policy: str, timeout_seconds: int
) -> None:
    """``driftwarden webhook install`` pointing at ``hook``, as the cluster's admin, with the break-glass
    group ``installed_webhook`` serves with (install and serve take the same decision flags)."""
    assert plane.admin is not None and plane.admin.kubeconfig is not None
    code, out, err = await driftwarden(
        "webhook", "install", "--url", hook.url, "--ca-file", str(hook.ca_file),
        "--failure-policy", failure_policy, "--timeout-seconds", str(timeout_seconds),
        "--breakglass-group", BREAKGLASS_GROUP, "--kubeconfig", str(plane.admin.kubeconfig),
    )  # fmt: skip
    assert code == 0, (out, err)


@contextlib.asynccontextmanager
async def installed_webhook(
    plane: ControlPlane,
    workdir: Path,
    *extra: str,
    failure_policy: str = "Fail",
    timeout_seconds: int = 5,
    env: dict[str, str] | None = None,
) -> AsyncIterator[InstalledWebhook]:
    """``webhook serve`` (plus ``extra`` flags) running and installed for the block; uninstalled after."""
    ca, cert, key = serving_pair(workdir / "tls")
    ca_file = workdir / "tls" / "ca.crt"
    ca_file.write_bytes(ca.cert_pem)
    port, metrics_port = free_port(), free_port()
    log = workdir / "webhook.log"
    argv: Sequence[str] = (
        "webhook", "serve", "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port),
        "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--breakglass-group", BREAKGLASS_GROUP, *extra,
    )  # fmt: skip
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli.main", *argv, cwd=ROOT, env=env or child_env(), stdout=out, stderr=out
        )
    hook = InstalledWebhook(proc, f"https://127.0.0.1:{port}", metrics_port, ca, ca_file, log)
    try:
        await _wait_serving(hook, ca.cert_pem)
        await install_webhook(plane, hook, failure_policy=failure_policy, timeout_seconds=timeout_seconds)
        yield hook
    finally:
        assert plane.admin is not None
        admin = api_client_for(plane.admin)
        try:
            await uninstall(admin)
        finally:
            await admin.close()
            await hook.stop()
