"""``Replace=true`` and ``Force=true`` on the real API server (issue 16): an immutable field (a Job's Pod
template, an immutable ConfigMap's data) fails clearly without them, ``Replace=true`` writes with a PUT
(fields Git lacks are gone, whoever wrote them) but cannot change an immutable field, and ``Force=true``
deletes and recreates the object, per Application or per object (``argocd.argoproj.io/sync-options``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from auditor.kube.cluster import Cluster
from auditor.objects import AppKey
from auditor.reconcile import Reconciler
from devtools.controlplane import ControlPlane
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    create_application,
    get_application,
    service_reconciler,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo

pytestmark = pytest.mark.cluster

OPTIONS = ["CreateNamespace=true"]


def job(image: str, *, options: str = "") -> str:
    annotations = f"{{argocd.argoproj.io/sync-options: '{options}'}}" if options else "{}"
    return f"""apiVersion: batch/v1
kind: Job
metadata: {{name: report, annotations: {annotations}}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: "{image}"}}]
"""


CONFIG = """apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{color: {color}}}
"""


@pytest.fixture
async def reconciler(
    admin: Cluster, clients: Clients, control_plane: ControlPlane, tmp_path: Path
) -> Reconciler:
    return await service_reconciler(
        control_plane, clients, tmp_path / "git-cache", group="batch", resource="jobs"
    )


async def _app(clients: Clients, repo: GitRepo, *options: str) -> tuple[str, str]:
    name, ns = f"replace-{uuid.uuid4().hex[:6]}", f"replace-{uuid.uuid4().hex[:6]}"
    policy = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": [*OPTIONS, *options]}
    await create_application(clients.admin, application(name, repo_url=repo.url, path="app", namespace=ns,
                                                        syncPolicy=policy))  # fmt: skip
    return name, ns


async def _pass(reconciler: Reconciler, clients: Clients, name: str) -> dict[str, Any]:
    await reconciler.run(await get_application(clients.admin, name))
    return await get_application(clients.admin, name)


async def _options(reconciler: Reconciler, name: str, *options: str) -> None:
    spec = {"syncPolicy": {"syncOptions": [*OPTIONS, *options]}}
    await reconciler.clients.store.patch_application_spec(AppKey(AUDITOR_NS, name), spec)


def _messages(app: dict[str, Any]) -> str:
    """Every condition's message and the last operation's: where a user reads why a sync failed."""
    texts = [str(c.get("message", "")) for c in app["status"].get("conditions") or []]
    texts.append(str((app["status"].get("operationState") or {}).get("message", "")))
    texts += [str(r.get("message", "")) for r in (app["status"].get("operationState") or {})
              .get("syncResult", {}).get("resources", [])]  # fmt: skip
    return "\n".join(texts)


async def _job(clients: Clients, ns: str) -> client.V1Job:
    return await client.BatchV1Api(clients.admin).read_namespaced_job("report", ns)


async def test_an_immutable_change_fails_clearly_and_replace_force_recreates_it(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"app/job.yaml": job("busybox:1.36")})
    name, ns = await _app(clients, repo)
    await _pass(reconciler, clients, name)
    first = await _job(clients, ns)

    repo.commit({"app/job.yaml": job("busybox:1.37")}, message="a new image: the template is immutable")
    app = await _pass(reconciler, clients, name)
    messages = _messages(app)
    assert "immutable" in messages and "Replace=true,Force=true" in messages, messages
    assert (await _job(clients, ns)).metadata.uid == first.metadata.uid  # nothing changed

    await _options(reconciler, name, "Replace=true")  # a PUT cannot change an immutable field either
    app = await _pass(reconciler, clients, name)
    assert app["status"]["operationState"]["phase"] == "Failed"
    (result,) = [
        r for r in app["status"]["operationState"]["syncResult"]["resources"] if r["name"] == "report"
    ]
    assert result["status"] == "SyncFailed" and "add the sync option Force=true" in result["message"], result
    assert (await _job(clients, ns)).metadata.uid == first.metadata.uid

    await _options(reconciler, name, "Replace=true", "Force=true")
    app = await _pass(reconciler, clients, name)
    assert app["status"]["operationState"]["phase"] == "Succeeded", app["status"]["operationState"]
    recreated = await _job(clients, ns)
    assert recreated.metadata.uid != first.metadata.uid
    assert recreated.spec.template.spec.containers[0].image == "busybox:1.37"
    assert app["status"]["sync"]["status"] == "Synced"


async def test_force_alone_per_object_recreates_what_apply_cannot_change(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"app/job.yaml": job("busybox:1.36", options="Force=true")})
    name, ns = await _app(clients, repo)
    await _pass(reconciler, clients, name)
    first = await _job(clients, ns)

    repo.commit({"app/job.yaml": job("busybox:1.37", options="Force=true")}, message="new image")
    app = await _pass(reconciler, clients, name)
    assert app["status"]["operationState"]["phase"] == "Succeeded", app["status"]["operationState"]
    recreated = await _job(clients, ns)
    assert recreated.metadata.uid != first.metadata.uid
    assert recreated.spec.template.spec.containers[0].image == "busybox:1.37"


async def test_replace_writes_the_whole_object(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    """With server-side apply a label another writer added stays (Argo CD's behaviour too); a replace
    (PUT) writes exactly Git's object, so it is gone."""
    repo = git_repo({"app/settings.yaml": CONFIG.format(color="blue")})
    name, ns = await _app(clients, repo, "Replace=true")
    await _pass(reconciler, clients, name)
    core = client.CoreV1Api(clients.admin)
    await core.patch_namespaced_config_map("settings", ns, {"metadata": {"labels": {"added-by": "kubectl"}}})

    repo.commit({"app/settings.yaml": CONFIG.format(color="green")}, message="green")
    app = await _pass(reconciler, clients, name)
    assert app["status"]["operationState"]["phase"] == "Succeeded", app["status"]["operationState"]
    live = await core.read_namespaced_config_map("settings", ns)
    assert live.data == {"color": "green"}
    assert "added-by" not in (live.metadata.labels or {})
    # The PUT is an Update entry of driftwarden's; its Apply entry (what the webhook guards) stays.
    assert sorted(m.operation for m in live.metadata.managed_fields if m.manager == "driftwarden") == [
        "Apply",
        "Update",
    ]


FROZEN = """apiVersion: v1
kind: ConfigMap
metadata: {{name: frozen}}
immutable: true
data: {{color: {color}}}
"""


async def test_an_immutable_configmap_changes_only_by_force(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    """Another kind of immutable field: a ConfigMap marked ``immutable`` (its data cannot change)."""
    repo = git_repo({"app/frozen.yaml": FROZEN.format(color="blue")})
    name, ns = await _app(clients, repo)
    await _pass(reconciler, clients, name)
    core = client.CoreV1Api(clients.admin)
    first = await core.read_namespaced_config_map("frozen", ns)

    repo.commit({"app/frozen.yaml": FROZEN.format(color="green")}, message="green")
    app = await _pass(reconciler, clients, name)
    assert "Replace=true,Force=true" in _messages(app)
    assert (await core.read_namespaced_config_map("frozen", ns)).data == {"color": "blue"}

    await _options(reconciler, name, "Force=true")
    app = await _pass(reconciler, clients, name)
    assert app["status"]["operationState"]["phase"] == "Succeeded", app["status"]["operationState"]
    live = await core.read_namespaced_config_map("frozen", ns)
    assert (live.data, live.metadata.uid != first.metadata.uid) == ({"color": "green"}, True)
