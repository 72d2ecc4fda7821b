"""A reconcile pass against the real API server and real Git repositories on disk.

Acts as the auditor's real service account (bound by manifests/rbac/auditor-clusterrole.yaml); edits
"out of band" are made as admin, with no webhook installed.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from auditor.kube.cluster import Cluster
from auditor.reconcile import Reconciler
from devtools.controlplane import ControlPlane
from driftwarden import contract
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    create_application,
    get_application,
    key,
    service_reconciler,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.kubectl import kubectl
from tests.support.seed import SEED
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

CONFIG = """apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config}}
data: {{color: {color}}}
"""
SERVICE = """apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "{image}"}}]
"""
AUTOMATED = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}


@pytest.fixture
async def reconciler(
    admin: Cluster, clients: Clients, control_plane: ControlPlane, tmp_path: Path
) -> Reconciler:
    return await service_reconciler(control_plane, clients, tmp_path / "git-cache")


@pytest.fixture
def web_repo(git_repo: Callable[..., GitRepo]) -> GitRepo:
    return git_repo({
        "apps/web/config.yaml": CONFIG.format(color="blue"),
        "apps/web/service.yaml": SERVICE,
        "apps/web/deployment.yaml": DEPLOYMENT.format(image="nginx:1.27"),
    })  # fmt: skip


async def _app(
    clients: Clients, repo: GitRepo, path: str = "apps/web", **spec: Any
) -> tuple[dict[str, Any], str]:
    name, ns = f"web-{uuid.uuid4().hex[:6]}", f"dst-{uuid.uuid4().hex[:6]}"
    body = application(name, repo_url=repo.url, path=path, namespace=ns, **spec)
    return await create_application(clients.admin, body), ns


async def _pass(
    reconciler: Reconciler, clients: Clients, obj: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    await reconciler.run(await get_application(clients.admin, obj["metadata"]["name"]), **kwargs)
    return await get_application(clients.admin, obj["metadata"]["name"])


def _condition(app: dict[str, Any], type_: str) -> str:
    for condition in app["status"].get("conditions") or []:
        if condition["type"] == type_:
            return str(condition["message"])
    return ""


async def test_an_application_with_a_deployment_reaches_synced_and_healthy(
    reconciler: Reconciler, clients: Clients, web_repo: GitRepo
) -> None:
    """On the living local cluster the Deployment's Pods become Ready (kwok nodes), so the next pass
    finds every resource Healthy, as on a real cluster."""
    obj, ns = await _app(clients, web_repo, syncPolicy=AUTOMATED)
    await _pass(reconciler, clients, obj)
    apps = client.AppsV1Api(clients.admin)

    async def available() -> bool:
        status = (await apps.read_namespaced_deployment_status("web", ns)).status
        return status.available_replicas == 2 and status.updated_replicas == 2

    await eventually(available, seconds=60)
    app = await _pass(reconciler, clients, obj)
    assert app["status"]["sync"]["status"] == "Synced"
    assert app["status"]["health"]["status"] == "Healthy"
    assert {r["kind"]: r["health"]["status"] for r in app["status"]["resources"]} == {
        "ConfigMap": "Healthy",
        "Deployment": "Healthy",
        "Service": "Healthy",
    }


async def test_a_plain_directory_syncs_and_the_cluster_equals_the_render(
    reconciler: Reconciler, clients: Clients, web_repo: GitRepo
) -> None:
    obj, ns = await _app(clients, web_repo, syncPolicy=AUTOMATED)
    app = await _pass(reconciler, clients, obj)

    assert app["status"]["sync"] == {"status": "Synced", "revision": web_repo.head()}
    kinds = sorted(r["kind"] for r in app["status"]["resources"])
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    assert all(r["status"] == "Synced" for r in app["status"]["resources"])
    # Health right after the apply depends on how fast the Pods become Ready; the next test waits for it.
    assert len(app["status"]["history"]) == 1
    deploy = await client.AppsV1Api(clients.admin).read_namespaced_deployment("web", ns)
    assert deploy.spec.template.spec.containers[0].image == "nginx:1.27"
    assert deploy.metadata.labels[contract.LABEL_APP] == obj["metadata"]["name"]
    tracking = deploy.metadata.annotations[contract.ANNOTATION_TRACKING_ID]
    assert tracking == f"{AUDITOR_NS}/{obj['metadata']['name']}:apps/Deployment:{ns}/web"
    assert [m.manager for m in deploy.metadata.managed_fields if m.operation == "Apply"] == ["driftwarden"]


async def test_a_new_commit_is_applied_and_pruned_and_a_revert_brings_it_back(
    reconciler: Reconciler, clients: Clients, web_repo: GitRepo
) -> None:
    obj, ns = await _app(clients, web_repo, syncPolicy=AUTOMATED)
    await _pass(reconciler, clients, obj)
    change = web_repo.commit({"apps/web/deployment.yaml": DEPLOYMENT.format(image="nginx:1.28")},
                             remove=["apps/web/service.yaml"], message="new image, no service")  # fmt: skip
    app = await _pass(reconciler, clients, obj)
    assert app["status"]["sync"] == {"status": "Synced", "revision": change}
    core, apps = client.CoreV1Api(clients.admin), client.AppsV1Api(clients.admin)
    assert (await apps.read_namespaced_deployment("web", ns)).spec.template.spec.containers[
        0
    ].image == "nginx:1.28"
    with pytest.raises(ApiException) as gone:
        await core.read_namespaced_service("web", ns)
    assert gone.value.status == 404

    web_repo.git("revert", "--no-edit", change)
    app = await _pass(reconciler, clients, obj)
    assert app["status"]["sync"]["status"] == "Synced"
    assert (await apps.read_namespaced_deployment("web", ns)).spec.template.spec.containers[
        0
    ].image == "nginx:1.27"
    assert (await core.read_namespaced_service("web", ns)).spec.ports[0].port == 80
    assert [h["revision"] for h in app["status"]["history"]][-2:] == [change, web_repo.head()]


async def test_out_of_band_change_is_out_of_sync_and_healed_with_self_heal(
    reconciler: Reconciler, clients: Clients, web_repo: GitRepo
) -> None:
    manual_heal = {"automated": {"prune": True, "selfHeal": False}, "syncOptions": ["CreateNamespace=true"]}
    obj, ns = await _app(clients, web_repo, syncPolicy=manual_heal)
    await _pass(reconciler, clients, obj)
    core = client.CoreV1Api(clients.admin)
    await core.patch_namespaced_config_map("web-config", ns, {"data": {"color": "red"}})

    app = await _pass(reconciler, clients, obj)
    assert app["status"]["sync"]["status"] == "OutOfSync"
    (drifted,) = [r for r in app["status"]["resources"] if r["status"] == "OutOfSync"]
    assert (drifted["kind"], drifted["name"]) == ("ConfigMap", "web-config")
    assert (await core.read_namespaced_config_map("web-config", ns)).data == {"color": "red"}  # not healed
    result = await reconciler.run(await get_application(clients.admin, obj["metadata"]["name"]))
    assert result.comparison is not None
    (diff,) = [d for d in result.comparison.diffs if not d.in_sync]
    assert "/data/color" in diff.changed_paths
    assert "-  color: red" in diff.unified_diff and "+  color: blue" in diff.unified_diff

    await reconciler.clients.store.patch_application_spec(
        key(obj["metadata"]["name"]), {"syncPolicy": {"automated": {"selfHeal": True}}}
    )
    app = await _pass(reconciler, clients, obj)
    assert app["status"]["sync"]["status"] == "Synced"
    assert (await core.read_namespaced_config_map("web-config", ns)).data == {"color": "blue"}


@pytest.mark.parametrize("breakage", ["empty", "missing-path", "unreachable", "bad-yaml"])
async def test_broken_git_leaves_every_object_in_place_with_a_condition(
    reconciler: Reconciler, clients: Clients, web_repo: GitRepo, breakage: str
) -> None:
    obj, ns = await _app(clients, web_repo, syncPolicy=AUTOMATED)
    first = await _pass(reconciler, clients, obj)
    assert first["status"]["sync"]["status"] == "Synced"
    expected = {
        "empty": ("PruneRefused", "empty"),
        "missing-path": ("SyncFailed", "apps/web does not exist"),
        "unreachable": ("GitUnreachable", ""),
        "bad-yaml": ("SyncFailed", "apps/web/config.yaml:5"),  # the line of the broken mapping
    }[breakage]
    if breakage == "empty":
        web_repo.commit({"apps/web/.keep": ""}, remove=["apps/web/config.yaml", "apps/web/service.yaml",
                                                         "apps/web/deployment.yaml"])  # fmt: skip
    elif breakage == "missing-path":
        web_repo.commit({"README": "moved"}, remove=["apps/web"])
    elif breakage == "unreachable":
        web_repo.commit({"apps/web/config.yaml": CONFIG.format(color="green")})
        shutil.move(web_repo.path, web_repo.path.with_name("gone"))
    else:
        web_repo.commit({"apps/web/config.yaml": CONFIG.format(color="blue") + "  broken: [unclosed\n"})

    app = await _pass(reconciler, clients, obj)
    message = _condition(app, expected[0])
    assert message, app["status"].get("conditions")
    assert expected[1] in message
    core, apps = client.CoreV1Api(clients.admin), client.AppsV1Api(clients.admin)
    assert (await core.read_namespaced_config_map("web-config", ns)).data == {"color": "blue"}
    assert (await core.read_namespaced_service("web", ns)).metadata.deletion_timestamp is None
    assert (await apps.read_namespaced_deployment("web", ns)).metadata.deletion_timestamp is None


async def test_a_secret_diff_shows_that_it_differs_without_its_values(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: git-s3cret-value}\n"
    repo = git_repo({"apps/db/secret.yaml": secret})
    obj, ns = await _app(clients, repo, path="apps/db", syncPolicy={"syncOptions": ["CreateNamespace=true"]})
    result = await reconciler.run(await get_application(clients.admin, obj["metadata"]["name"]), manual=True)
    assert result.status["sync"]["status"] == "Synced"
    await client.CoreV1Api(clients.admin).patch_namespaced_secret(
        "db", ns, {"stringData": {"password": "live-0ther-value"}}
    )
    result = await reconciler.run(await get_application(clients.admin, obj["metadata"]["name"]))
    assert result.comparison is not None
    (diff,) = [d for d in result.comparison.diffs if not d.in_sync]
    assert diff.ref.kind == "Secret"
    assert "password" in diff.unified_diff
    for leaked in (
        "git-s3cret-value",
        "live-0ther-value",
        "Z2l0LXMzY3JldC12YWx1ZQ==",
        "bGl2ZS0wdGhlci12YWx1ZQ==",
    ):
        assert leaked not in diff.unified_diff
        assert leaked not in str(result.status)


@pytest.mark.parametrize(
    ("path", "extra", "expected"),
    [
        ("overlays/production", {}, {("Deployment", "prod-guestbook"), ("Service", "prod-guestbook")}),
        ("apps/web-app", {},
         {("Deployment", "web-app"), ("Service", "web-app"), ("ConfigMap", "web-config")}),
        ("charts/guestbook", {"helm": {"valueFiles": ["values-prod.yaml"], "releaseName": "gb"}},
         {("Deployment", "gb-guestbook"), ("Service", "gb-svc")}),
    ],
    ids=["kustomize-overlay", "plain-directory", "helm-chart"],
)  # fmt: skip
async def test_kustomize_directory_and_helm_applications_sync(
    reconciler: Reconciler,
    clients: Clients,
    git_repo: Callable[..., GitRepo],
    path: str,
    extra: dict[str, Any],
    expected: set[tuple[str, str]],
) -> None:
    repo = git_repo(SEED)
    source = {"repoURL": repo.url, "targetRevision": "main", "path": path, **extra}
    obj, ns = await _app(clients, repo, path=path, syncPolicy=AUTOMATED)
    await reconciler.clients.store.patch_application_spec(key(obj["metadata"]["name"]), {"source": source})
    app = await _pass(reconciler, clients, obj)

    assert app["status"]["sync"]["status"] == "Synced", app["status"].get("conditions")
    assert {(r["kind"], r["name"]) for r in app["status"]["resources"]} == expected
    apps = client.AppsV1Api(clients.admin)
    (name,) = [n for k, n in expected if k == "Deployment"]
    live = await apps.read_namespaced_deployment(name, ns)
    if path == "overlays/production":
        assert (live.spec.replicas, live.spec.template.spec.containers[0].image) == (5, "nginx:1.25.3")
    if path == "charts/guestbook":
        assert (live.spec.replicas, live.spec.template.spec.containers[0].image) == (3, "nginx:1.0")
    assert live.metadata.labels[contract.LABEL_APP] == obj["metadata"]["name"]


async def test_a_full_pass_dry_runs_only_what_changed(
    reconciler: Reconciler, clients: Clients, web_repo: GitRepo
) -> None:
    obj, ns = await _app(clients, web_repo, syncPolicy=AUTOMATED)
    await _pass(reconciler, clients, obj)
    hits = reconciler.dry_runs.hits
    await _pass(reconciler, clients, obj)
    assert reconciler.dry_runs.hits - hits == 3  # nothing changed: no object was dry-run again

    await client.CoreV1Api(clients.admin).patch_namespaced_config_map(
        "web-config", ns, {"data": {"color": "red"}}
    )
    hits = reconciler.dry_runs.hits
    app = await _pass(reconciler, clients, obj)
    assert reconciler.dry_runs.hits - hits >= 2  # the Deployment and Service were answered from the cache
    assert app["status"]["sync"]["status"] == "Synced"
    live = await client.CoreV1Api(clients.admin).read_namespaced_config_map("web-config", ns)
    assert live.data == {"color": "blue"}  # the changed one was dry-run, found drifted and healed


@pytest.mark.parametrize("strict", [False, True])
async def test_strict_self_heal_also_removes_what_kubectl_added(
    reconciler: Reconciler, clients: Clients, web_repo: GitRepo, control_plane: ControlPlane, strict: bool
) -> None:
    options = ["CreateNamespace=true"] + (["StrictSelfHeal=true"] if strict else [])
    obj, ns = await _app(clients, web_repo, syncPolicy={**AUTOMATED, "syncOptions": options})
    await _pass(reconciler, clients, obj)
    assert control_plane.admin is not None and control_plane.admin.kubeconfig is not None
    added = {"metadata": {"labels": {"hand-made": "yes"}}, "data": {"extra": "by hand"}}
    edit = [
        "-n",
        ns,
        "patch",
        "configmap",
        "web-config",
        "--field-manager=kubectl-edit",
        "-p",
        json.dumps(added),
    ]
    code, _, err = await kubectl(control_plane, control_plane.admin.kubeconfig, *edit)
    assert code == 0, err

    app = await _pass(reconciler, clients, obj)
    live = await client.CoreV1Api(clients.admin).read_namespaced_config_map("web-config", ns)
    if strict:
        assert live.data == {"color": "blue"}
        assert "hand-made" not in live.metadata.labels
        assert {m.manager for m in live.metadata.managed_fields} == {"driftwarden"}
    else:  # a plain heal leaves fields nobody in Git owns, as Argo CD does (#1613)
        assert live.data == {"color": "blue", "extra": "by hand"}
        assert live.metadata.labels["hand-made"] == "yes"
    assert app["status"]["sync"]["status"] == "Synced"
