"""Real ``driftwarden auditor run`` processes for tests: a site (namespace, Lease, Applications) and the
auditors started in it, each with its own log file, stopped at the end of the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.errors import KubeError
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import request_json, resource_path
from driftwarden.settings import environment
from tests.support.auditor import install_crd_and_rbac
from tests.support.gitrepo import GitRepo
from tests.support.identities import service_account_kubeconfig

ROOT = Path(__file__).parents[2]
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{color: {color}}}\n"
AUTOMATED = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}
# The auditor serves Prometheus metrics on a fixed default port; two on one host must not: turn it off.
METRICS_OFF = ("--metrics-port", "0")


@dataclass
class Auditor:
    """One ``driftwarden auditor run`` process and its log."""

    identity: str
    proc: asyncio.subprocess.Process
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        async with asyncio.timeout(20):
            return await self.proc.wait()


@dataclass
class Site:
    admin: client.ApiClient
    namespace: str
    plane: ControlPlane
    workdir: Path

    async def auditor(self, identity: str, *extra: str) -> Auditor:
        """``driftwarden auditor run`` as the auditor's service account (a token kubeconfig): with exactly the
        RBAC of manifests/rbac/auditor-clusterrole.yaml, never admin."""
        kubeconfig = self.workdir / "auditor.kubeconfig"
        if not kubeconfig.exists():
            await service_account_kubeconfig(self.plane, kubeconfig, contract.AUDITOR_SERVICE_ACCOUNT)
        log = self.workdir / f"{identity}.log"
        env = {k: v for k, v in environment().items() if k != "KUBECONFIG"}
        env.update(DRIFTWARDEN_CACHE=str(self.workdir / "cache"), PYTHONUNBUFFERED="1")
        argv = [
            "auditor", "run", "--kubeconfig", str(kubeconfig), "--namespace", self.namespace,
            "--leader-election-namespace", self.namespace, "--leader-id", identity, "--lease-duration", "3",
            "--poll-interval", "1", "--git-cache", str(self.workdir / f"git-{identity}"),
            "--kubectl", str(self.plane.binaries.kubectl), *METRICS_OFF, *extra,
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli.main", *argv, cwd=ROOT, env=env, stdout=out, stderr=out
            )
        return Auditor(identity, proc, log)

    async def holder(self) -> str | None:
        path = resource_path(group="coordination.k8s.io", version="v1", plural="leases",
                             namespace=self.namespace, name="driftwarden-auditor")  # fmt: skip
        try:
            lease = await request_json(self.admin, "GET", path)
        except KubeError as exc:
            if exc.status == 404:  # not created yet
                return None
            raise
        return str(lease["spec"].get("holderIdentity") or "")

    async def application(self, name: str, repo: GitRepo, destination: str) -> None:
        body = {
            "apiVersion": contract.API_VERSION, "kind": contract.APPLICATION_KIND,
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"source": {"repoURL": repo.url, "targetRevision": "main", "path": "app"},
                     "destination": {"namespace": destination}, "syncPolicy": AUTOMATED},
        }  # fmt: skip
        path = resource_path(group=contract.GROUP, version=contract.VERSION,
                             plural=contract.APPLICATION_PLURAL, namespace=self.namespace)  # fmt: skip
        await request_json(self.admin, "POST", path, body=body)

    async def get_application(self, name: str) -> dict[str, Any]:
        path = resource_path(group=contract.GROUP, version=contract.VERSION, name=name,
                             plural=contract.APPLICATION_PLURAL, namespace=self.namespace)  # fmt: skip
        return await request_json(self.admin, "GET", path)

    async def synced(self, name: str, destination: str, *, color: str, revision: str) -> bool:
        sync = ((await self.get_application(name)).get("status") or {}).get("sync") or {}
        try:
            cm = await client.CoreV1Api(self.admin).read_namespaced_config_map("settings", destination)
        except client.exceptions.ApiException:
            return False
        return cm.data == {"color": color} and sync == {"status": "Synced", "revision": revision}


@pytest.fixture
async def site(control_plane: ControlPlane, tmp_path: Path) -> AsyncIterator[Site]:
    assert control_plane.admin is not None
    admin = api_client_for(control_plane.admin)
    await install_crd_and_rbac(admin)
    namespace = f"ha-{uuid.uuid4().hex[:6]}"
    await client.CoreV1Api(admin).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    yield Site(admin, namespace, control_plane, tmp_path)
    await admin.close()


@pytest.fixture
async def auditors() -> AsyncIterator[list[Auditor]]:
    started: list[Auditor] = []
    yield started
    for auditor in started:
        if auditor.proc.returncode is None:
            auditor.proc.kill()
            with contextlib.suppress(TimeoutError):
                await auditor.stop(signal.SIGKILL)
