"""The fault suite's scene (issue 18): an Application of many ConfigMaps in real Git, synced by real
``driftwarden auditor run`` processes, each with its own user (so the API server's audit log tells their
writes apart), and the four checks made after every fault:

(a) every object Git wants exists and equals the render; (b) nothing outside the Application's tracking
ids was deleted or changed (two bystanders in the destination: one unmarked, one carrying the app's label
but another tracking id); (c) the Application's status and conditions tell the truth; (d) it all comes
back without a restart by hand, and ``recovered`` measures how long that took.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client

from auditor.kube.cluster import Cluster
from devtools.controlplane import ControlPlane, ControlPlaneSettings
from devtools.controlplane.kubeconfig import kubeconfig
from driftwarden import contract
from driftwarden.kube.client import UserCredentials, api_client_for
from driftwarden.kube.rest import MERGE_PATCH, request_json, resource_path
from driftwarden.settings import control_plane_bin_dir, environment
from tests.support.auditor import install_crd_and_rbac, wait_until_allowed
from tests.support.auditorprocs import Auditor, Site
from tests.support.gitrepo import GitRepo, make_repo
from tests.support.waiting import eventually

AUTOMATED: dict[str, Any] = {
    "automated": {"prune": True, "selfHeal": True},
    "syncOptions": ["CreateNamespace=true"],
}
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
ERROR_CONDITIONS = frozenset({"SyncFailed", "ComparisonError", "GitUnreachable", "InvalidSpecError"})
CM = """apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}}}
data: {{generation: "{gen}", index: "{i}"}}
"""


def files(count: int, gen: str, *, path: str = "app") -> dict[str, str]:
    """``count`` ConfigMaps ``cm-000``... whose data names the generation ``gen``."""
    return {f"{path}/cm-{i:03d}.yaml": CM.format(name=f"cm-{i:03d}", gen=gen, i=i) for i in range(count)}


def wanted(count: int, gen: str) -> dict[str, dict[str, str]]:
    """What (a) expects in the destination: name → data."""
    return {f"cm-{i:03d}": {"generation": gen, "index": str(i)} for i in range(count)}


@pytest.fixture(scope="module")
async def fault_plane(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ControlPlane]:
    """A control plane of the module's own (the faults restart and compact it): etcd and kube-apiserver,
    with the API server's audit log of every write, and no watch cache (etcd serves every watch, so a
    compaction reaches a resuming watch as 410 Gone)."""
    settings = ControlPlaneSettings(
        bin_dir=control_plane_bin_dir(environment()),
        work_dir=tmp_path_factory.mktemp("fault-plane"),
        bare=True,
        audit=True,
        watch_cache=False,
    )
    async with ControlPlane(settings) as plane:
        yield plane


@pytest.fixture
async def made(
    fault_plane: ControlPlane, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Scene]:
    """A scene of the test module's ``COUNT`` ConfigMaps on the module's fault plane."""
    async with scene_in(fault_plane, tmp_path, files(request.module.COUNT, "g0")) as scene_:
        yield scene_


def proxied(plane: ControlPlane, user: UserCredentials, port: int, directory: Path) -> Path:
    """A kubeconfig for ``user`` that reaches the API server through a proxy on ``port``."""
    assert user.cert_file is not None and user.key_file is not None
    config = kubeconfig(f"https://127.0.0.1:{port}", ca_pem=plane.pki.serving_ca.cert_pem, user=user.user,
                        cert_pem=user.cert_file.read_bytes(), key_pem=user.key_file.read_bytes())  # fmt: skip
    path = directory / f"{user.user}-via-{port}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class Scene:
    """One Application (``name``) of ConfigMaps from ``repo`` into ``destination``, and its bystanders."""

    site: Site
    repo: GitRepo
    name: str
    destination: str
    bystanders: dict[str, str] = field(default_factory=dict)
    """Name → resourceVersion of the objects no sync may touch."""
    repo_url: str = ""
    """What the Application names (the repository's own file URL when empty)."""
    metrics_url: str = ""
    """The leading auditor's ``/metrics``, when it serves them: (c) checks its sync gauge too."""

    @property
    def plane(self) -> ControlPlane:
        return self.site.plane

    def user(self, identity: str) -> UserCredentials:
        """Replica ``identity``'s own user (the audit log counts writes by it), with the auditor's RBAC."""
        return self.plane.user(f"auditor-{identity}", groups=(REPLICAS_GROUP,))

    async def auditor(self, identity: str, *extra: str, kubeconfig: Path | None = None) -> Auditor:
        """``driftwarden auditor run`` as its own user ``auditor-<identity>`` (a later flag wins)."""
        config = kubeconfig or self.user(identity).kubeconfig
        return await self.site.auditor(identity, "--kubeconfig", str(config), *extra)

    async def application(self, *, policy: Mapping[str, Any] = AUTOMATED, revision: str = "main",
                          path: str = "app") -> None:  # fmt: skip
        body = {
            "apiVersion": contract.API_VERSION, "kind": contract.APPLICATION_KIND,
            "metadata": {"name": self.name, "namespace": self.site.namespace},
            "spec": {"source": {"repoURL": self.repo_url or self.repo.url, "targetRevision": revision,
                                "path": path},
                     "destination": {"namespace": self.destination}, "syncPolicy": dict(policy)},
        }  # fmt: skip
        path_ = resource_path(group=contract.GROUP, version=contract.VERSION,
                              plural=contract.APPLICATION_PLURAL, namespace=self.site.namespace)  # fmt: skip
        await request_json(self.site.admin, "POST", path_, body=body)

    async def patch_spec(self, spec: Mapping[str, Any]) -> None:
        path = resource_path(group=contract.GROUP, version=contract.VERSION, name=self.name,
                             plural=contract.APPLICATION_PLURAL, namespace=self.site.namespace)  # fmt: skip
        await request_json(
            self.site.admin, "PATCH", path, body={"spec": dict(spec)}, content_type=MERGE_PATCH
        )

    async def status(self) -> dict[str, Any]:
        return dict((await self.site.get_application(self.name)).get("status") or {})

    async def condition(self, type_: str) -> str:
        for condition in (await self.status()).get("conditions") or []:
            if condition.get("type") == type_:
                return str(condition.get("message", ""))
        return ""

    async def live(self) -> dict[str, dict[str, Any]]:
        """The destination's ConfigMaps that carry this Application's tracking id: name → object."""
        listed = await request_json(
            self.site.admin, "GET", f"/api/v1/namespaces/{self.destination}/configmaps"
        )
        out = {}
        for obj in listed.get("items") or []:
            tracking = (obj["metadata"].get("annotations") or {}).get(contract.ANNOTATION_TRACKING_ID, "")
            if tracking.startswith(f"{self.site.namespace}/{self.name}:"):
                out[obj["metadata"]["name"]] = obj
        return out

    async def place_bystanders(self) -> None:
        """An unmarked ConfigMap, and one with this app's label but another app's tracking id."""
        core = client.CoreV1Api(self.site.admin)
        await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=self.destination)))
        other = f"{self.site.namespace}/other:/ConfigMap:{self.destination}/impostor"
        for name, labels, notes in (
            ("bystander", {}, {}),
            ("impostor", {contract.LABEL_APP: self.name}, {contract.ANNOTATION_TRACKING_ID: other}),
        ):
            meta = client.V1ObjectMeta(name=name, labels=labels, annotations=notes)
            made = await core.create_namespaced_config_map(
                self.destination, client.V1ConfigMap(metadata=meta, data={"keep": "me"})
            )
            self.bystanders[name] = made.metadata.resource_version

    async def problems(self, want: Mapping[str, Mapping[str, str]], revision: str) -> list[str]:
        """What (a), (b) and (c) find wrong now; empty when the scene is converged."""
        found: list[str] = []
        live = await self.live()
        wrong = [n for n, data in want.items() if n not in live or live[n].get("data") != dict(data)]
        extra = sorted(set(live) - set(want))
        if wrong or extra:
            found.append(f"(a) {len(wrong)} objects missing or not as rendered, {len(extra)} extra: "
                         f"{wrong[:3]} {extra[:3]}")  # fmt: skip
        core = client.CoreV1Api(self.site.admin)
        for name, version in self.bystanders.items():
            try:
                now = (
                    await core.read_namespaced_config_map(name, self.destination)
                ).metadata.resource_version
            except client.exceptions.ApiException as exc:
                now = f"gone ({exc.status})"
            if now != version:
                found.append(f"(b) bystander {name} changed: resourceVersion {version} -> {now}")
        status = await self.status()
        if status.get("sync") != {"status": "Synced", "revision": revision}:
            found.append(f"(c) sync is {status.get('sync')}, not Synced at {revision[:8]}")
        errors = [c["type"] for c in status.get("conditions") or [] if c.get("type") in ERROR_CONDITIONS]
        if errors:
            found.append(f"(c) stale error conditions {errors}")
        if self.metrics_url and await self.synced_gauge() != 1:
            found.append("(c) the metric driftwarden_app_sync_status does not say Synced")
        return found

    async def synced_gauge(self) -> float | None:
        """``driftwarden_app_sync_status{status="Synced"}`` of this Application, as /metrics says now
        (None before the auditor serves it)."""
        sample = f'driftwarden_app_sync_status{{app="{self.site.namespace}/{self.name}",status="Synced"}} '
        try:
            async with aiohttp.ClientSession() as session, session.get(self.metrics_url) as resp:
                text = await resp.text()
        except aiohttp.ClientError:
            return None  # not serving yet
        return next(
            (float(line[len(sample) :]) for line in text.splitlines() if line.startswith(sample)), None
        )

    async def recovered(
        self, want: Mapping[str, Mapping[str, str]], revision: str, *, seconds: float
    ) -> float:
        """(d): wait until nothing is wrong; seconds it took. The failure names what was still wrong."""
        started = time.monotonic()
        last: list[str] = []

        async def clean() -> bool:
            nonlocal last
            last = await self.problems(want, revision)
            return not last

        try:
            await eventually(clean, seconds=seconds, every=0.25)
        except TimeoutError:
            pytest.fail(f"not recovered after {seconds}s: {last}")
        return time.monotonic() - started


REPLICAS_GROUP = "driftwarden:test-auditor-replicas"
"""The group of the replicas' own users, bound to the manifests' auditor ClusterRole and nothing else: each
replica needs a name of its own in the audit log, and exactly the service account's rights (issue 18)."""


async def _bind_replicas(plane: ControlPlane, admin: client.ApiClient) -> None:
    rbac = "rbac.authorization.k8s.io"
    await Cluster(admin).apply({
        "apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "driftwarden-auditor-test-replicas"},
        "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "driftwarden-auditor"},  # manifests/rbac
        "subjects": [{"apiGroup": rbac, "kind": "Group", "name": REPLICAS_GROUP}],
    }, field_manager="driftwarden-installer")  # fmt: skip
    probe = api_client_for(plane.user("auditor-rbac-probe", groups=(REPLICAS_GROUP,)))
    try:
        await wait_until_allowed(probe, verb="patch", group="", resource="configmaps")
    finally:
        await probe.close()


async def scene(plane: ControlPlane, workdir: Path, repo_files: Mapping[str, str]) -> Scene:
    """A fresh namespace for the Applications and the Lease, a repository and a destination."""
    admin = api_client_for(plane.admin) if plane.admin is not None else None
    assert admin is not None
    await install_crd_and_rbac(admin)
    await _bind_replicas(plane, admin)
    namespace, suffix = f"fault-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:6]
    await client.CoreV1Api(admin).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    repo = make_repo(workdir / f"repo-{suffix}", repo_files)
    made = Scene(Site(admin, namespace, plane, workdir), repo, f"app-{suffix}", f"dst-{suffix}")
    await made.place_bystanders()
    return made


@contextlib.asynccontextmanager
async def scene_in(plane: ControlPlane, workdir: Path, repo_files: Mapping[str, str]) -> AsyncIterator[Scene]:
    """``scene``, and its admin client closed afterwards."""
    made = await scene(plane, workdir, repo_files)
    try:
        yield made
    finally:
        await made.site.admin.close()


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def writes_by(plane: ControlPlane, user: str, *, after: dt.datetime) -> list[dict[str, Any]]:
    """The audit log's writes by ``user`` received after ``after``: every create, update, patch and
    delete, except dry runs (they write nothing) and the Lease (the election itself)."""
    out = []
    for line in plane.audit_log.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if (
            (event.get("user") or {}).get("username") == user
            and event.get("verb") in WRITE_VERBS
            and "dryRun=All" not in event.get("requestURI", "")
            and ref.get("resource") != "leases"
            and _time(event["requestReceivedTimestamp"]) > after
        ):
            out.append(event)
    return out


def last_write(plane: ControlPlane, user: str) -> dt.datetime | None:
    """When the API server last received a write of ``user`` (same filter as ``writes_by``)."""
    found = writes_by(plane, user, after=dt.datetime.min.replace(tzinfo=dt.UTC))
    return _time(found[-1]["requestReceivedTimestamp"]) if found else None
