"""A list-then-watch lists in pages (driftwarden.kube.watch.Informer, issue 17): every object once, in the
API server's order, one page decoded at a time, and the watch resumes from the list's snapshot, so a
change made after the list arrives as an event."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest

from driftwarden.kube.rest import request_json, resource_path
from driftwarden.kube.watch import Informer
from tests.support.clients import Clients
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster


async def test_a_relist_in_pages_delivers_every_object_once_then_the_watch_goes_on(clients: Clients) -> None:
    admin = clients.admin
    ns = f"pages-{uuid.uuid4().hex[:6]}"
    await request_json(admin, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    path = resource_path(group="", version="v1", plural="configmaps", namespace=ns)

    async def create(name: str) -> None:
        body = {"metadata": {"name": name, "labels": {"paged": "yes"}}, "data": {"n": name}}
        await request_json(admin, "POST", path, body=body)

    names = [f"cm-{n}" for n in range(8)]  # three pages of three: the last one short
    for name in names:
        await create(name)
    await request_json(admin, "POST", path, body={"metadata": {"name": "not-selected"}, "data": {}})

    events: list[tuple[str, str]] = []

    async def handler(kind: str, obj: dict[str, Any]) -> None:
        assert obj["kind"] == "ConfigMap" and obj["apiVersion"] == "v1"
        events.append((kind, obj["metadata"]["name"]))

    informer = Informer(admin, path, label_selector="paged=yes", page_size=3)
    task = asyncio.create_task(informer.run(handler))
    try:
        await eventually(lambda: _settled(events, len(names)))
        await asyncio.sleep(0.5)  # nothing more comes
        assert events == [("ADDED", name) for name in names]  # the API server lists by name
        assert informer.relists == 1
        assert informer.resource_version
        await create("cm-late")
        await eventually(lambda: _settled(events, len(names) + 1))
        assert events[-1] == ("ADDED", "cm-late")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _settled(events: list[tuple[str, str]], count: int) -> bool:
    return len(events) >= count
