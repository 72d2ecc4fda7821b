"""Watches on the real API server: a kind it does not serve backs off with one log line, and the watch is
removed when the Application that needed it is deleted (issue 16)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.kube.rest import request_json, resource_path
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    auditor_api,
    create_application,
    get_application,
    running_auditor,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

WIDGET = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1}\n"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n"
AUTOMATED = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}
WIDGET_KIND = ("example.com", "Widget")


async def test_an_unserved_kind_is_watched_with_back_off_logged_once_and_dropped_with_its_application(
    control_plane: ControlPlane,
    clients: Clients,
    tmp_path: Path,
    git_repo: Callable[..., GitRepo],
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = git_repo({"app/widget.yaml": WIDGET, "app/cm.yaml": CM})  # no CRD serves Widget
    name, ns = f"widget-{uuid.uuid4().hex[:6]}", f"widget-{uuid.uuid4().hex[:6]}"
    caplog.set_level(logging.INFO, logger="auditor")
    api = await auditor_api(control_plane, clients)
    async with running_auditor(control_plane, api, tmp_path / "git") as run:
        await create_application(clients.admin, application(name, repo_url=repo.url, path="app", namespace=ns,
                                                            syncPolicy=AUTOMATED))  # fmt: skip

        async def watched() -> bool:
            status: dict[str, Any] = (await get_application(clients.admin, name)).get("status") or {}
            return bool(status.get("resources")) and WIDGET_KIND in run.healer._watches

        await eventually(watched)
        await asyncio.sleep(5)  # once every 2 s this used to log a traceback: 2 or 3 by now
        about = [
            r for r in caplog.records if "Widget" in r.getMessage() and r.name.startswith("auditor.heal")
        ]
        assert len(about) == 1, [r.getMessage() for r in about]
        assert about[0].levelno == logging.WARNING and about[0].exc_info is None
        assert (
            "cannot watch Widget.example.com" in about[0].getMessage() and "back-off" in about[0].getMessage()
        )
        assert ("", "ConfigMap") in run.healer._watches

        plural = contract.APPLICATION_PLURAL
        path = resource_path(group=contract.GROUP, version=contract.VERSION, plural=plural,
                             namespace=AUDITOR_NS, name=name)  # fmt: skip
        await request_json(clients.admin, "DELETE", path)

        async def dropped() -> bool:
            return WIDGET_KIND not in run.healer._watches

        await eventually(dropped)
        assert any("stopped watching Widget.example.com" in r.getMessage() for r in caplog.records)
