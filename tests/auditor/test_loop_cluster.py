"""The auditor loop against the real API server: new Applications, spec changes and new commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from auditor.loop import AuditorLoop
from devtools.controlplane import ControlPlane
from tests.support.auditor import (
    application,
    auditor_api,
    create_application,
    get_application,
    key,
    running_auditor,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{color: {color}}}\n"
AUTOMATED = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}


@pytest.fixture
async def running(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path
) -> AsyncIterator[AuditorLoop]:
    api = await auditor_api(control_plane, clients)
    async with running_auditor(control_plane, api, tmp_path / "git", poll_interval=1.0) as run:
        yield run.loop


async def _color(core: client.CoreV1Api, ns: str) -> str | None:
    try:
        return str((await core.read_namespaced_config_map("settings", ns)).data["color"])
    except client.exceptions.ApiException:
        return None


async def test_the_loop_syncs_new_apps_spec_changes_and_new_commits(
    running: AuditorLoop, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"app/cm.yaml": CM.format(color="blue"), "other/cm.yaml": CM.format(color="green")})
    name, ns = f"loop-{uuid.uuid4().hex[:6]}", f"loop-{uuid.uuid4().hex[:6]}"
    await create_application(clients.admin, application(name, repo_url=repo.url, path="app", namespace=ns,
                                                        syncPolicy=AUTOMATED))  # fmt: skip
    core = client.CoreV1Api(clients.admin)

    async def synced_to(color: str) -> bool:
        app: dict[str, Any] = await get_application(clients.admin, name)
        return (
            await _color(core, ns) == color
            and (app.get("status") or {}).get("sync", {}).get("status") == "Synced"
        )

    await eventually(lambda: synced_to("blue"))

    # A spec change reconciles at once (the poll interval alone would also get there; both are fast here).
    await running.clients.store.patch_application_spec(key(name), {"source": {"path": "other"}})
    await eventually(lambda: synced_to("green"))

    # A new commit is picked up by the poll.
    repo.commit({"other/cm.yaml": CM.format(color="purple")})
    await eventually(lambda: synced_to("purple"))
    # A pass is counted once it returns, just after its status write: wait for the count to catch up
    # (the two passes every new Application used to get hid that; issue 16).
    await eventually(lambda: _passes_at_least(running, name, 3), seconds=5)


async def test_a_new_application_gets_one_pass_not_two(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path, git_repo: Callable[..., GitRepo]
) -> None:
    """Its creation woke the worker, and the first pass read the Application after that: no second pass."""
    repo = git_repo({"app/cm.yaml": CM.format(color="blue")})
    name, ns = f"once-{uuid.uuid4().hex[:6]}", f"once-{uuid.uuid4().hex[:6]}"
    api = await auditor_api(control_plane, clients)
    async with running_auditor(control_plane, api, tmp_path / "git") as run:  # polls every 10 minutes
        await create_application(clients.admin, application(name, repo_url=repo.url, path="app", namespace=ns,
                                                            syncPolicy=AUTOMATED))  # fmt: skip

        async def synced() -> bool:
            app: dict[str, Any] = await get_application(clients.admin, name)
            return (app.get("status") or {}).get("sync", {}).get("status") == "Synced"

        await eventually(synced)
        await asyncio.sleep(1.5)  # a second pass would have come at once
        assert run.loop.workers[key(name)].passes == 1
        # A spec change is one more pass, and only one.
        await run.loop.clients.store.patch_application_spec(key(name), {"revisionHistoryLimit": 5})
        await eventually(lambda: _passes_at_least(run.loop, name, 2))
        await asyncio.sleep(1.5)
        assert run.loop.workers[key(name)].passes == 2


async def _passes_at_least(loop: AuditorLoop, name: str, count: int) -> bool:
    return loop.workers[key(name)].passes >= count
