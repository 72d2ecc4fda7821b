"""The reconcile pass and the heal really notify: a sync failure and a healed drift reach a chat endpoint."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client

from auditor.notify import Notifier, NotifierSettings
from devtools.controlplane import ControlPlane
from devtools.controlplane.plane import free_port
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    auditor_api,
    create_application,
    key,
    running_auditor,
    synced_and_watched,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n"
POLICY = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}


@pytest.fixture
async def chat() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A Slack-compatible incoming-webhook endpoint on loopback that keeps what it is sent."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/hook", received
    await runner.cleanup()


async def test_sync_failure_and_healed_drift_are_notified(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path, git_repo: Callable[..., GitRepo],
    chat: tuple[str, list[dict[str, Any]]],
) -> None:  # fmt: skip
    url, received = chat
    api = await auditor_api(control_plane, clients)
    repo = git_repo({"app/cm.yaml": CM})
    name, ns = f"notify-{uuid.uuid4().hex[:6]}", f"notify-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(clients.admin)

    async with (
        Notifier(NotifierSettings(url=url, backoff_initial=0.1)) as notifier,
        running_auditor(control_plane, api, tmp_path / "git", notifier=notifier) as run,
    ):
        await create_application(
            clients.admin, application(name, repo_url=repo.url, path="app", namespace=ns, syncPolicy=POLICY)
        )
        await eventually(lambda: synced_and_watched(clients.admin, name, run.healer, ("", "ConfigMap")))
        await asyncio.sleep(0.5)
        await core.patch_namespaced_config_map("settings", ns, {"data": {"color": "red"}})
        await eventually(lambda: _has(received, "Drift healed"), seconds=10)

        repo.commit({"app/cm.yaml": CM + "  oops: [\n"})
        run.loop.refresh(key(name))
        await eventually(lambda: _has(received, "Sync failed"), seconds=15)

    healed = next(m["text"] for m in received if m["text"].startswith("Drift healed"))
    assert f"Application {AUDITOR_NS}/{name}" in healed
    assert f"{ns}/settings" in healed and "/data/color" in healed
    assert "red" not in healed and "blue" not in healed  # paths, never values


async def _has(received: list[dict[str, Any]], title: str) -> bool:
    return any(str(m.get("text", "")).startswith(title) for m in received)
