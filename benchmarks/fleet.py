"""A fleet of managed objects on the local control plane, for the auditor's benchmarks (issue 17).

Benchmark set-up only: starts etcd + kube-apiserver (``ControlPlaneSettings(bare=True)``: ConfigMaps need
no controllers), installs the namespace, CRD, service accounts and RBAC from manifests/ as ``dev up`` does,
commits ``apps`` directories of ``per_app`` ConfigMaps each into a real Git repository, and creates the
objects *fast*: each is stamped exactly as the auditor stamps it (``auditor.objects.stamp``) and
server-side-applied as the GitOps manager, 32 requests at a time, so the auditor's first pass finds them
in sync instead of writing thousands of objects one by one. The Applications (automated, self-heal) are
created afterwards, by ``applications``. The real ``driftwarden auditor run`` is started by
``auditor_process`` as its service account (a token kubeconfig), never as admin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client

from auditor.application import parse_application
from auditor.kube.cluster import Cluster
from auditor.objects import stamp
from benchmarks.admission_load import write_json
from devtools.controlplane import ControlPlane, ControlPlaneSettings
from devtools.controlplane.serviceaccounts import service_account_credentials, write_token_kubeconfig
from devtools.dev.stack import INSTALL_FILES, MANIFESTS
from devtools.gitrepo import GitRepo, make_repo
from driftwarden import contract
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import APPLY_PATCH, request_json, resource_path
from driftwarden.settings import control_plane_bin_dir, environment

ROOT = Path(__file__).resolve().parents[1]
INSTALL_NS = contract.DEFAULT_INSTALL_NAMESPACE
GIT_VALUE = "from-git"
PARALLEL = 32
SELF_HEAL = {"automated": {"prune": True, "selfHeal": True}}


def app_name(index: int) -> str:
    return f"bench-{index:02d}"


def configmaps(app: int, per_app: int) -> str:
    """``per_app`` ConfigMaps in one multi-document file: what Git says for Application ``app``."""
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{n:05d}"},
         "data": {"value": GIT_VALUE, "app": app_name(app), "index": str(n)}}
        for n in range(per_app)
    ]  # fmt: skip
    return yaml.safe_dump_all(docs, sort_keys=False)


def application(index: int, repo: GitRepo) -> dict[str, Any]:
    name = app_name(index)
    return {
        "apiVersion": contract.API_VERSION, "kind": contract.APPLICATION_KIND,
        "metadata": {"name": name, "namespace": INSTALL_NS},
        "spec": {"source": {"repoURL": repo.url, "targetRevision": "main", "path": name},
                 "destination": {"namespace": name}, "syncPolicy": SELF_HEAL},
    }  # fmt: skip


def split(objects: int, apps: int) -> list[int]:
    """``objects`` spread over ``apps`` Applications (the first ones take the remainder)."""
    return [objects // apps + (1 if i < objects % apps else 0) for i in range(apps)]


@dataclass
class Fleet:
    plane: ControlPlane
    admin: client.ApiClient
    repo: GitRepo
    work: Path
    sizes: list[int]
    """ConfigMaps per Application, index = Application number."""
    create_seconds: float = 0.0

    @property
    def objects(self) -> int:
        return sum(self.sizes)

    @property
    def names(self) -> list[str]:
        return [app_name(i) for i in range(len(self.sizes))]

    async def kubectl(self, *args: str) -> str:
        assert self.plane.admin is not None and self.plane.admin.kubeconfig is not None
        proc = await asyncio.create_subprocess_exec(
            str(self.plane.binaries.kubectl), "--kubeconfig", str(self.plane.admin.kubeconfig), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        if proc.returncode not in (0, 1):  # kubectl diff exits 1 when something differs
            raise RuntimeError(f"kubectl {' '.join(args)}: {err.decode(errors='replace')}")
        return out.decode(errors="replace")

    async def applications(self) -> None:
        """The Applications (automated sync, self-heal), created once the objects exist."""
        path = resource_path(group=contract.GROUP, version=contract.VERSION,
                             plural=contract.APPLICATION_PLURAL, namespace=INSTALL_NS)  # fmt: skip
        for index in range(len(self.sizes)):
            await request_json(self.admin, "POST", path, body=application(index, self.repo))

    async def synced(self) -> int:
        """How many Applications report Synced."""
        path = resource_path(group=contract.GROUP, version=contract.VERSION,
                             plural=contract.APPLICATION_PLURAL, namespace=INSTALL_NS)  # fmt: skip
        listed = await request_json(self.admin, "GET", path)
        return sum(
            ((item.get("status") or {}).get("sync") or {}).get("status") == "Synced"
            for item in listed.get("items") or []
        )

    async def wait_synced(self, *, timeout: float, proc: asyncio.subprocess.Process | None = None) -> float:  # noqa: ASYNC109
        """Seconds until every Application is Synced."""
        started = time.perf_counter()
        while await self.synced() < len(self.sizes):
            if proc is not None and proc.returncode is not None:
                raise RuntimeError(f"the auditor exited with {proc.returncode}; see {self.work}/auditor.log")
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"not every Application was Synced after {timeout} s")
            await asyncio.sleep(0.5)
        return time.perf_counter() - started

    async def _create_objects(self) -> None:
        cluster = Cluster(self.admin)
        limit = asyncio.Semaphore(PARALLEL)

        async def put(path: str, body: dict[str, Any]) -> None:
            async with limit:
                query = {"fieldManager": contract.FIELD_MANAGER, "force": "true"}
                await request_json(self.admin, "PATCH", path, body=body, content_type=APPLY_PATCH,
                                   query=query)  # fmt: skip

        jobs = []
        for index in range(len(self.sizes)):
            app = parse_application(application(index, self.repo))
            namespace = app.destination.namespace
            await cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            for doc in yaml.safe_load_all((self.repo.path / app.source.path / "cm.yaml").read_text()):
                doc["metadata"]["namespace"] = namespace
                body = stamp(doc, app=app.key, guard_mode=app.guard.mode)
                path = resource_path(group="", version="v1", plural="configmaps", namespace=namespace,
                                     name=doc["metadata"]["name"])  # fmt: skip
                jobs.append(put(path, body))
        await asyncio.gather(*jobs)

    @contextlib.asynccontextmanager
    async def auditor_process(
        self, *extra: str, runner: tuple[str, ...] = ("-m", "cli.main")
    ) -> AsyncIterator[asyncio.subprocess.Process]:
        """``driftwarden auditor run`` as its service account, stopped (SIGTERM) when the block ends.

        ``runner``: how Python runs the CLI (``benchmarks.heapdump`` wraps it to say where memory goes).
        """
        creds = await service_account_credentials(
            self.admin, INSTALL_NS, contract.AUDITOR_SERVICE_ACCOUNT,
            server=self.plane.url, ca_file=self.plane.pki.serving_ca_file, expiration_seconds=24 * 3600,
        )  # fmt: skip
        kubeconfig = await asyncio.to_thread(write_token_kubeconfig, creds, self.work / "auditor.kubeconfig")
        env = {k: v for k, v in environment().items() if k != "KUBECONFIG"}
        env.update(DRIFTWARDEN_CACHE=str(self.work / "cache"), PYTHONUNBUFFERED="1")
        argv = [
            "auditor", "run", "--kubeconfig", str(kubeconfig), "--namespace", INSTALL_NS, "--no-leader-elect",
            "--git-cache", str(self.work / "git-cache"), "--kubectl", str(self.plane.binaries.kubectl),
            "--poll-interval", "600", "--metrics-port", "0", "--log-level", "warning", *extra,
        ]  # fmt: skip
        with (self.work / "auditor.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *runner, *argv, cwd=ROOT, env=env, stdout=log, stderr=log
            )
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    async with asyncio.timeout(20):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


def status_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of ``pid`` from /proc/<pid>/status (VmRSS: resident now; VmHWM: its peak), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def plane_pids() -> dict[str, int]:
    """The kube-apiserver and etcd this process started (its children, by command name)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            comm, rest = stat.read_text().split("(", 1)[1].rsplit(")", 1)
            if int(rest.split()[1]) == os.getpid() and comm in ("kube-apiserver", "etcd"):
                found[comm] = int(stat.parent.name)
    return found


@contextlib.asynccontextmanager
async def fleet(work: Path, *, objects: int, apps: int) -> AsyncIterator[Fleet]:
    """The control plane with ``objects`` managed ConfigMaps over ``apps`` Git directories, already created
    as the auditor would create them; no Application yet (``Fleet.applications``)."""
    sizes = split(objects, apps)
    files = {f"{app_name(i)}/cm.yaml": configmaps(i, n) for i, n in enumerate(sizes)}
    repo = await asyncio.to_thread(make_repo, work / "repo", files)
    settings = ControlPlaneSettings(bin_dir=control_plane_bin_dir(environment()), work_dir=work / "plane",
                                    bare=True)  # fmt: skip
    async with ControlPlane(settings) as plane:
        assert plane.admin is not None
        admin = api_client_for(plane.admin)
        try:
            made = Fleet(plane, admin, repo, work, sizes)
            for rel in INSTALL_FILES:
                await made.kubectl("apply", "--server-side", "--field-manager=driftwarden-installer",
                                   "-f", str(MANIFESTS / rel))  # fmt: skip
            await Cluster(admin).wait_established(contract.APPLICATION_CRD_NAME, timeout=60)
            started = time.perf_counter()
            await made._create_objects()
            made.create_seconds = time.perf_counter() - started
            yield made
        finally:
            await admin.close()


def fleet_parser(module: str, doc: str, *, objects: list[int], apps: int) -> argparse.ArgumentParser:
    """The options every fleet benchmark takes: ``--objects`` (sizes), ``--apps`` and ``--json``."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n", maxsplit=1)[0])
    parser.add_argument("--objects", type=lambda s: [int(n) for n in s.split(",")], default=objects,
                        help="managed objects, one fleet per size (comma-separated)")  # fmt: skip
    parser.add_argument("--apps", type=int, default=apps, help="Applications the objects are spread over")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser


def run_sizes(
    args: argparse.Namespace,
    one_size: Callable[[int, argparse.Namespace], Awaitable[dict[str, Any]]],
    *,
    settings: dict[str, Any],
    line: Callable[[dict[str, Any]], str],
) -> int:
    """``one_size`` for each size, one after the other; prints ``line`` of each and writes the JSON."""

    async def every() -> list[dict[str, Any]]:
        return [await one_size(objects, args) for objects in args.objects]

    report = {"settings": {"apps": args.apps, **settings}, "sizes": asyncio.run(every())}
    for size in report["sizes"]:
        print(line(size))
    write_json(args.json, report)
    return 0
