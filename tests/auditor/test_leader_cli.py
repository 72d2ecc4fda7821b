"""Two real ``driftwarden auditor run`` processes with leader election, against the real API server.

Each runs as ``python -m driftwarden.cli`` with the admin kubeconfig, a 3 s lease, its own Git cache and
its own log file. Their Applications live in a namespace of their own (``--namespace``), and so does the
Lease, so Applications of other tests are never touched. The leader is killed with SIGKILL (no release);
the standby must take over and sync a commit made after the kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from auditor.leaderlease import ElectionSettings
from driftwarden import contract
from driftwarden.cli import build_parser
from driftwarden.commands.auditorrun import ServeOptions, default_identity, options_from
from driftwarden.controlplane import ControlPlane
from driftwarden.errors import ConfigError, KubeError
from driftwarden.kube import api_client_for
from driftwarden.kuberest import request_json, resource_path
from driftwarden.settings import environment
from tests.support.auditor import install_crd_and_rbac
from tests.support.gitrepo import GitRepo
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).parents[2]
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{color: {color}}}\n"
AUTOMATED = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}
# Where the auditor serves Prometheus metrics (a fixed default port), two on one host must not: turn it off.
METRICS_OFF = (
    ["--metrics-port", "0"] if hasattr(build_parser().parse_args(["auditor", "run"]), "metrics_port") else []
)


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
        assert self.plane.admin is not None and self.plane.admin.kubeconfig is not None
        log = self.workdir / f"{identity}.log"
        env = {k: v for k, v in environment().items() if k != "KUBECONFIG"}
        env.update(DRIFTWARDEN_CACHE=str(self.workdir / "cache"), PYTHONUNBUFFERED="1")
        argv = [
            "auditor", "run", "--kubeconfig", str(self.plane.admin.kubeconfig), "--namespace", self.namespace,
            "--leader-election-namespace", self.namespace, "--leader-id", identity, "--lease-duration", "3",
            "--poll-interval", "1", "--git-cache", str(self.workdir / f"git-{identity}"),
            "--kubectl", str(self.plane.binaries.kubectl), *METRICS_OFF, *extra,
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "driftwarden.cli", *argv, cwd=ROOT, env=env, stdout=out, stderr=out
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


def test_leader_flags_become_election_settings() -> None:
    def options(*argv: str) -> ServeOptions:
        return options_from(build_parser().parse_args(["auditor", "run", *argv]), {})

    election = options("--install-namespace", "infra", "--lease-duration", "3").election
    assert election is not None
    assert (election.namespace, election.name, election.lease_duration, election.renew_deadline) == (
        "infra", "driftwarden-auditor", 3, 2.0,
    )  # fmt: skip
    assert election.retry_period == pytest.approx(0.4)
    assert options("--leader-id", "pod-1", "--leader-election-namespace", "le").election == ElectionSettings(
        "pod-1", "le", lease_duration=15, renew_deadline=10.0, retry_period=2.0
    )
    assert options("--no-leader-elect").election is None
    with pytest.raises(ConfigError, match="lease duration"):
        options("--lease-duration", "5", "--renew-deadline", "6")


def test_the_default_identity_is_the_host_name_with_a_random_suffix() -> None:
    one, two = default_identity(), default_identity()
    assert one.startswith(socket.gethostname() + "_") and two.startswith(socket.gethostname() + "_")
    assert one != two


async def test_only_the_leader_reconciles_and_the_standby_takes_over_when_it_is_killed(
    site: Site, auditors: list[Auditor], git_repo: Callable[..., GitRepo]
) -> None:
    auditors += [await site.auditor("auditor-a"), await site.auditor("auditor-b")]
    await eventually(lambda: _is_one_of(site.holder(), {"auditor-a", "auditor-b"}), seconds=30)
    holder = await site.holder()
    leader, standby = auditors if holder == "auditor-a" else auditors[::-1]

    repo = git_repo({"app/cm.yaml": CM.format(color="blue")})
    name, destination = "web", f"ha-dst-{uuid.uuid4().hex[:6]}"
    await site.application(name, repo, destination)
    await eventually(lambda: site.synced(name, destination, color="blue", revision=repo.head()), seconds=30)

    # Only the leader runs the auditor loop; the standby stands by, naming the leader.
    await eventually(lambda: _has(standby, "lease held by " + leader.identity), seconds=10)
    assert "started leading as " + leader.identity in leader.text()
    assert "started leading" not in standby.text()
    assert await site.holder() == leader.identity

    leader.proc.kill()  # SIGKILL: no release, the Lease still names the dead leader
    killed = time.monotonic()
    assert await leader.stop() == -signal.SIGKILL
    assert await site.holder() == leader.identity
    revision = repo.commit({"app/cm.yaml": CM.format(color="red")})

    await eventually(lambda: _is_one_of(site.holder(), {standby.identity}), seconds=15)
    took = time.monotonic() - killed
    assert took < 3 + 3, f"the standby took over {took:.1f}s after the leader died (3s lease)"
    await eventually(lambda: site.synced(name, destination, color="red", revision=revision), seconds=30)
    assert "started leading as " + standby.identity in standby.text()
    # The new leader also heals the next out-of-band edit.
    core = client.CoreV1Api(site.admin)
    await core.patch_namespaced_config_map("settings", destination, {"data": {"color": "green"}})
    await eventually(lambda: site.synced(name, destination, color="red", revision=revision), seconds=15)

    # A graceful stop releases the Lease.
    assert await standby.stop() == 0
    assert await site.holder() == ""
    assert "released the lease" in standby.text()


async def _is_one_of(value: Any, allowed: set[str]) -> bool:
    return await value in allowed


async def _has(auditor: Auditor, text: str) -> bool:
    return text in auditor.text()
