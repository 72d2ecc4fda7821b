"""Source types on the real API server: jsonnet with TLAs, extVars and libraries; Helm charts with a vendored
dependency, with a ``file://`` dependency built, and from a chart repository served on 127.0.0.1; a
directory nothing renders refused with a condition; and Argo CD's namePrefix, checked against
``kubectl kustomize`` of the kustomization that ``kustomize edit set nameprefix`` leaves.

Passes run as the auditor's real service account (manifests/rbac/auditor-clusterrole.yaml).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from auditor.kube.cluster import Cluster
from auditor.reconcile import Reconciler
from devtools.controlplane import ControlPlane
from driftwarden.settings import environment
from tests.support.auditor import application, create_application, get_application, key, service_reconciler
from tests.support.charts import (
    CHARTS_IN_GIT,
    DEPENDENCY_CASES,
    oci_registry,
    packaged,
    push,
    registry_bin_dir,
    repository_dir,
    serve,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.seed import SEED
from tests.support.sources import JSONNET, JSONNET_OPTIONS

pytestmark = pytest.mark.cluster

AUTOMATED = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}


@pytest.fixture
async def reconciler(
    admin: Cluster, clients: Clients, control_plane: ControlPlane, tmp_path: Path
) -> Reconciler:
    return await service_reconciler(control_plane, clients, tmp_path / "git-cache")


async def _app(clients: Clients, source: dict[str, Any], **spec: Any) -> tuple[str, str]:
    name, ns = f"src-{uuid.uuid4().hex[:6]}", f"dst-{uuid.uuid4().hex[:6]}"
    body = application(name, repo_url=source["repoURL"], path=".", namespace=ns, syncPolicy=AUTOMATED, **spec)
    body["spec"]["source"] = source
    await create_application(clients.admin, body)
    return name, ns


def _git(repo: GitRepo, path: str, **options: Any) -> dict[str, Any]:
    """``spec.source`` for ``path`` of ``repo`` at main, with ``options`` (``helm=``, ``directory=``...)."""
    return {"repoURL": repo.url, "targetRevision": "main", "path": path, **options}


async def _pass(reconciler: Reconciler, clients: Clients, name: str) -> dict[str, Any]:
    await reconciler.run(await get_application(clients.admin, name))
    return await get_application(clients.admin, name)


def _resources(app: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["kind"], r["name"]) for r in app["status"].get("resources") or []}


def _conditions(app: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["message"] for c in app["status"].get("conditions") or []}


async def test_a_jsonnet_application_with_tlas_ext_vars_and_libraries(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo(JSONNET)
    name, ns = await _app(clients, _git(repo, "jsonnet/app", directory=JSONNET_OPTIONS))
    app = await _pass(reconciler, clients, name)

    assert app["status"]["sync"]["status"] == "Synced", _conditions(app)
    assert _resources(app) == {("ConfigMap", "plain"), ("ConfigMap", "web-settings"), ("Deployment", "web"),
                               ("Service", "web")}  # fmt: skip
    live = await client.AppsV1Api(clients.admin).read_namespaced_deployment("web", ns)
    assert (live.spec.replicas, live.spec.template.spec.containers[0].image) == (2, "nginx:1.27")
    settings = await client.CoreV1Api(clients.admin).read_namespaced_config_map("web-settings", ns)
    assert settings.data == {"color": "blue", "env": "prod", "tier": "3"}

    # Compared through the API server: an edit is drift, and Git's values come back.
    await client.CoreV1Api(clients.admin).patch_namespaced_config_map(
        "web-settings", ns, {"data": {"env": "x"}}
    )
    app = await _pass(reconciler, clients, name)
    assert app["status"]["sync"]["status"] == "Synced"
    settings = await client.CoreV1Api(clients.admin).read_namespaced_config_map("web-settings", ns)
    assert settings.data["env"] == "prod"


@pytest.mark.parametrize("path", sorted(DEPENDENCY_CASES))
async def test_charts_with_dependencies_sync(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo], path: str
) -> None:
    expected = {f"gb-{chart}": color for chart, color in DEPENDENCY_CASES[path].items()}
    repo = git_repo(CHARTS_IN_GIT)
    name, ns = await _app(clients, _git(repo, path, helm={"releaseName": "gb"}))
    app = await _pass(reconciler, clients, name)

    assert app["status"]["sync"]["status"] == "Synced", _conditions(app)
    assert _resources(app) == {("ConfigMap", cm) for cm in expected}
    core = client.CoreV1Api(clients.admin)
    for cm, color in expected.items():
        assert (await core.read_namespaced_config_map(cm, ns)).data["color"] == color


@contextlib.asynccontextmanager
async def _chart_repository(kind: str, helm: Path, work: Path) -> AsyncIterator[str]:
    """A Helm repository over HTTP, or an OCI registry, on 127.0.0.1 with hello 1.0.0 and 1.1.0; its URL."""
    versions = {"hello": ["1.0.0", "1.1.0"]}
    if kind == "http":
        async with serve(await asyncio.to_thread(repository_dir, helm, work, versions)) as url:
            yield url
        return
    archives = await asyncio.to_thread(packaged, helm, work, versions)
    async with oci_registry(registry_bin_dir(environment()) / "registry", work) as host:
        for archive in sorted(archives.glob("*.tgz")):
            await asyncio.to_thread(push, helm, archive, f"{host}/charts", work)
        yield f"oci://{host}/charts"


@pytest.mark.parametrize("kind", ["http", "oci"])
async def test_a_chart_from_a_chart_repository(
    reconciler: Reconciler, clients: Clients, tmp_path: Path, kind: str
) -> None:
    helm = reconciler.clients.settings.tools.helm
    assert helm is not None
    async with _chart_repository(kind, helm, tmp_path) as url:
        source = {"repoURL": url, "chart": "hello", "targetRevision": "1.0.0"}
        name, ns = await _app(clients, source)
        app = await _pass(reconciler, clients, name)
        assert app["status"]["sync"]["status"] == "Synced", _conditions(app)
        assert app["status"]["sync"]["revision"] == "1.0.0"
        assert _resources(app) == {("ConfigMap", f"{name}-hello")}
        cm = await client.CoreV1Api(clients.admin).read_namespaced_config_map(f"{name}-hello", ns)
        assert cm.data == {"chart": "hello", "version": "1.0.0", "color": "v1.0.0"}
        (entry,) = app["status"]["history"]
        assert (entry["revision"], entry["source"]["chart"], entry["source"]["repoURL"]) == (
            "1.0.0",
            "hello",
            url,
        )

        # A new version in Git's place: the Application moves to it, and the object follows.
        await reconciler.clients.store.patch_application_spec(
            key(name), {"source": {**source, "targetRevision": "~1.1"}}
        )
        app = await _pass(reconciler, clients, name)
    assert app["status"]["sync"]["revision"] == "1.1.0"
    cm = await client.CoreV1Api(clients.admin).read_namespaced_config_map(f"{name}-hello", ns)
    assert cm.data["version"] == "1.1.0"


@pytest.mark.parametrize("path", ["plugin", "jsonnet/libonly"])
async def test_a_source_nothing_renders_is_refused_never_synced_with_nothing(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo], path: str
) -> None:
    repo = git_repo(JSONNET)
    name, _ = await _app(clients, _git(repo, path))
    app = await _pass(reconciler, clients, name)

    assert app["status"]["sync"]["status"] == "Unknown"
    message = _conditions(app)["InvalidSpecError"]
    assert message.startswith(f"path {path} renders nothing: ")
    assert ("source type 'plugin'" in message) == (path == "plugin")
    assert not app["status"].get("resources")
    # A directory of nothing but docs is a genuinely empty render: Synced, with nothing to apply.
    name, _ = await _app(clients, _git(repo, "docs-only"))
    app = await _pass(reconciler, clients, name)
    assert app["status"]["sync"]["status"] == "Synced" and "InvalidSpecError" not in _conditions(app)


async def test_name_prefix_replaces_the_kustomization_prefix_as_kustomize_edit_set_nameprefix(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo], control_plane: ControlPlane,
    tmp_path: Path,
) -> None:  # fmt: skip
    repo = git_repo(SEED)
    options = {"namePrefix": "team-", "nameSuffix": "-v2"}
    name, ns = await _app(clients, _git(repo, "overlays/production", kustomize=options))
    app = await _pass(reconciler, clients, name)
    assert app["status"]["sync"]["status"] == "Synced", _conditions(app)

    # What Argo CD builds: the kustomization after `kustomize edit set nameprefix -- team-` and
    # `kustomize edit set namesuffix -- -v2` (both set the field), built by the pinned kubectl.
    edited = tmp_path / "edited"
    for rel, text in SEED.items():
        (edited / rel).parent.mkdir(parents=True, exist_ok=True)
        (edited / rel).write_text(text)
    kfile = edited / "overlays/production/kustomization.yml"
    kustomization = yaml.safe_load(kfile.read_text())
    kfile.write_text(yaml.safe_dump({**kustomization, "namePrefix": "team-", "nameSuffix": "-v2"}))
    proc = await asyncio.create_subprocess_exec(
        str(control_plane.binaries.kubectl), "kustomize", str(kfile.parent), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    built = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out) if d}

    assert _resources(app) == built == {("Service", "team-guestbook-v2"), ("Deployment", "team-guestbook-v2")}
    live = await client.AppsV1Api(clients.admin).read_namespaced_deployment("team-guestbook-v2", ns)
    assert live.spec.replicas == 5  # the rest of the kustomization still applies
