"""driftwarden's own writes on the real API server: never drift, never twice, never a lost label.

- ``CreateNamespace=true`` with the Namespace in Git: passes keep its label and annotations, record no
  drift, and add no history entry when nothing changed.
- A warn-mode edit (webhook for real, as alice) is healed once, its stamp removed, one drift record.
- A sync made by another driftwarden process (``app sync --revision``) is not recorded as drift.
- A render failure does not leave an earlier ``PruneRefused`` beside the ``SyncFailed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from devtools.controlplane import ControlPlane
from driftwarden import contract
from tests.support.auditor import (
    AUDITOR_NS,
    RunningAuditor,
    application,
    auditor_api,
    create_application,
    get_application,
    key,
    reconciler_for,
    running_auditor,
    settings_for,
    synced_and_watched,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.guard import ensure_namespace, grant_cluster_admin, running_guard
from tests.support.seed import SELF_HEALING, WEB_DEPLOYMENT
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web}}\ndata: {{color: {color}}}\n"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {{team: web}}\n"


def _status(app: dict[str, Any]) -> dict[str, Any]:
    return app.get("status") or {}


async def test_create_namespace_with_the_namespace_in_git_keeps_its_label_and_history(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path, git_repo: Callable[..., GitRepo]
) -> None:
    name, ns = f"nsgit-{uuid.uuid4().hex[:6]}", f"nsgit-{uuid.uuid4().hex[:6]}"
    files = {"web/namespace.yaml": NAMESPACE.format(name=ns), "web/config.yaml": CONFIG.format(color="a")}
    repo = git_repo(files)
    core = client.CoreV1Api(clients.admin)
    api = await auditor_api(control_plane, clients)
    async with running_auditor(control_plane, api, tmp_path / "git") as run:
        body = application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=SELF_HEALING)
        await create_application(clients.admin, body)
        await eventually(lambda: synced_and_watched(clients.admin, name, run.healer, ("", "Namespace")))
        for _ in range(3):  # full passes (a poll, a push): each syncs with selfHeal on
            passes = run.loop.workers[key(name)].passes
            assert run.loop.refresh(key(name))
            await eventually(lambda p=passes: _passed(run.loop, name, p + 1))  # type: ignore[misc]
        # A manual sync of the same revision, as `driftwarden app sync` runs it (a ledger of its own).
        manual = reconciler_for(api, settings_for(control_plane, tmp_path / "git-cli"))
        result = await manual.run(await get_application(clients.admin, name), manual=True)
        assert result.status["sync"]["status"] == "Synced"
        await asyncio.sleep(1.5)  # any watch event of those passes has arrived

        live = await core.read_namespace(ns)
        assert live.metadata.labels[contract.LABEL_APP] == name and live.metadata.labels["team"] == "web"
        assert contract.ANNOTATION_TRACKING_ID in live.metadata.annotations
        app = await get_application(clients.admin, name)
        assert not _status(app).get("drift")  # no "deleted ... recreated"
        assert len(_status(app)["history"]) == 1  # syncs that changed nothing add no entry
        assert run.healer.heals == 0


async def _passed(loop: Any, name: str, count: int) -> bool:
    worker = loop.workers.get(key(name))
    return worker is not None and worker.passes >= count


@contextlib.asynccontextmanager
async def warn_mode_app(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path, git_repo: Callable[..., GitRepo]
) -> AsyncIterator[tuple[RunningAuditor, str, str]]:
    """The webhook and the auditor running, and a warn-mode Application of WEB_DEPLOYMENT, synced and
    watched; alice may edit (cluster-admin, so only admission decides)."""
    admin = clients.admin
    await ensure_namespace(admin, AUDITOR_NS)
    await grant_cluster_admin(admin, users=["alice"])
    repo = git_repo({"web/deployment.yaml": WEB_DEPLOYMENT})
    name, ns = f"warn-{uuid.uuid4().hex[:6]}", f"warn-{uuid.uuid4().hex[:6]}"
    body = application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=SELF_HEALING,
                       guard={"mode": "warn"})  # fmt: skip
    api = await auditor_api(control_plane, clients)
    guard = running_guard(admin, tmp_path / "guard")
    async with guard, running_auditor(control_plane, api, tmp_path / "git") as run:
        await create_application(admin, body)
        await eventually(lambda: synced_and_watched(admin, name, run.healer, ("apps", "Deployment")))
        await asyncio.sleep(0.5)  # the Deployment watch has listed
        yield run, name, ns


async def test_a_warn_mode_edit_is_healed_exactly_once(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path, git_repo: Callable[..., GitRepo]
) -> None:
    admin, apps = clients.admin, client.AppsV1Api(clients.admin)
    alice = client.AppsV1Api(await clients.user("alice"))
    async with warn_mode_app(control_plane, clients, tmp_path, git_repo) as (run, name, ns):
        for i in range(3):
            edit = [{"name": "web", "image": f"nginx:9.{i}"}]
            patch = {"spec": {"template": {"spec": {"containers": edit}}}}
            await alice.patch_namespaced_deployment("web", ns, patch)

            async def healed() -> bool:
                live = await apps.read_namespaced_deployment("web", ns)
                unstamped = contract.ANNOTATION_DRIFT not in (live.metadata.annotations or {})
                return bool(live.spec.template.spec.containers[0].image == "nginx:1.27" and unstamped)

            await eventually(healed, seconds=10)
            await asyncio.sleep(1.5)  # a second heal would come now (and a person's next edit is later)
            assert run.healer.heals == i + 1
        records = _status(await get_application(admin, name)).get("drift") or []
        assert [(r["user"], r["action"]) for r in records] == [("alice", "healed")] * 3


async def test_a_sync_by_another_driftwarden_process_is_not_drift(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"web/config.yaml": CONFIG.format(color="blue")})
    first = repo.head()
    name, ns = f"own-{uuid.uuid4().hex[:6]}", f"own-{uuid.uuid4().hex[:6]}"
    policy = {"automated": {"prune": True}, "syncOptions": ["CreateNamespace=true"]}  # reports, not heals
    api = await auditor_api(control_plane, clients)
    core = client.CoreV1Api(clients.admin)
    async with running_auditor(control_plane, api, tmp_path / "git") as run:
        await create_application(clients.admin, application(name, repo_url=repo.url, path="web", namespace=ns,
                                                             syncPolicy=policy))  # fmt: skip
        await eventually(lambda: synced_and_watched(clients.admin, name, run.healer, ("", "ConfigMap")))
        second = repo.commit({"web/config.yaml": CONFIG.format(color="green")})
        assert run.loop.refresh(key(name))

        async def at_second() -> bool:
            status = _status(await get_application(clients.admin, name))
            return bool(status.get("sync", {}).get("revision") == second)

        await eventually(at_second)
        # `driftwarden app sync NAME --revision <first>`: another process, another ledger, as driftwarden.
        cli = reconciler_for(api, settings_for(control_plane, tmp_path / "git-cli"))
        await cli.run(await get_application(clients.admin, name), manual=True, revision=first)
        assert (await core.read_namespaced_config_map("web", ns)).data == {"color": "blue"}
        await asyncio.sleep(1.5)  # its watch event has reached the heal
        assert not _status(await get_application(clients.admin, name)).get("drift")


async def test_a_render_failure_leaves_no_stale_prune_refused(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"web/config.yaml": CONFIG.format(color="blue"), "other/readme.txt": "x"})
    name, ns = f"stale-{uuid.uuid4().hex[:6]}", f"stale-{uuid.uuid4().hex[:6]}"
    api = await auditor_api(control_plane, clients)
    reconciler = reconciler_for(api, settings_for(control_plane, tmp_path / "git"))
    await create_application(clients.admin, application(name, repo_url=repo.url, path="web", namespace=ns,
                                                         syncPolicy=SELF_HEALING))  # fmt: skip
    await reconciler.run(await get_application(clients.admin, name))
    repo.commit({"web/.keep": ""}, remove=["web/config.yaml"])  # an empty render: pruning all is refused
    await reconciler.run(await get_application(clients.admin, name))
    types = {c["type"] for c in _status(await get_application(clients.admin, name))["conditions"]}
    assert "PruneRefused" in types
    repo.commit(remove=["web"])  # now the path is gone: the render fails
    await reconciler.run(await get_application(clients.admin, name))
    types = {c["type"] for c in _status(await get_application(clients.admin, name))["conditions"]}
    assert "SyncFailed" in types and "PruneRefused" not in types


async def test_a_warn_mode_label_removal_is_healed_once_and_names_the_user(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path, git_repo: Callable[..., GitRepo]
) -> None:
    """Removing the app label takes the object out of the heal's label-selected watch (a DELETED event),
    though it still exists: it is judged as it is, healed once, and the stamp's user is named."""
    admin, apps = clients.admin, client.AppsV1Api(clients.admin)
    alice = client.AppsV1Api(await clients.user("alice"))
    async with warn_mode_app(control_plane, clients, tmp_path, git_repo) as (run, name, ns):
        unlabel = {"metadata": {"labels": {contract.LABEL_APP: None}}}
        await alice.patch_namespaced_deployment("web", ns, unlabel)

        async def healed() -> bool:
            live = await apps.read_namespaced_deployment("web", ns)
            unstamped = contract.ANNOTATION_DRIFT not in (live.metadata.annotations or {})
            return (live.metadata.labels or {}).get(contract.LABEL_APP) == name and unstamped

        await eventually(healed, seconds=10)
        await asyncio.sleep(2.0)  # the Deployment controller's status writes come meanwhile
        assert run.healer.heals == 1
        records = _status(await get_application(admin, name)).get("drift") or []
        assert [(r["user"], r["action"]) for r in records] == [("alice", "healed")]
