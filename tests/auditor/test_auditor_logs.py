"""``driftwarden auditor run --log-format json``: one INFO line per sync and per heal, and no Secret value.

A real auditor process syncs an Application whose Git holds a ConfigMap and a Secret; the Secret's value is a
sentinel. Out-of-band edits of both are healed. Every line of the log must be JSON, the sync and the heals
must each have their event line, and the sentinel (nor its base64 form) must appear nowhere.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio import client

from tests.support.auditorprocs import CM, Auditor, Site
from tests.support.gitrepo import GitRepo
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

SENTINEL = "s3ntinel-do-not-log"
ENCODED = base64.b64encode(SENTINEL.encode()).decode()
SECRET = (
    f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\ntype: Opaque\ndata: {{password: {ENCODED}}}\n"
)


def events(auditor: Auditor, name: str) -> list[dict[str, Any]]:
    return [record for record in map(json.loads, auditor.text().splitlines()) if record.get("event") == name]


async def test_sync_and_heal_lines_are_json_and_carry_no_secret_value(
    site: Site, auditors: list[Auditor], git_repo: Callable[..., GitRepo]
) -> None:
    auditor = await site.auditor("logs", "--no-leader-elect", "--log-format", "json")
    auditors.append(auditor)
    repo = git_repo({"app/cm.yaml": CM.format(color="blue"), "app/secret.yaml": SECRET})
    name, destination = "logged", f"logs-dst-{uuid.uuid4().hex[:6]}"
    await site.application(name, repo, destination)
    await eventually(lambda: site.synced(name, destination, color="blue", revision=repo.head()), seconds=60)

    async def synced_line() -> bool:
        return any(r["app"] == f"{site.namespace}/{name}" for r in events(auditor, "sync"))

    await eventually(synced_line, seconds=10)
    (sync, *_) = events(auditor, "sync")
    assert (sync["level"], sync["revision"], sync["result"], sync["applied"], sync["failed"]) == (
        "INFO", repo.head(), "Synced", 2, 0,
    )  # fmt: skip

    core = client.CoreV1Api(site.admin)
    other = base64.b64encode(b"other").decode()
    await core.patch_namespaced_config_map("settings", destination, {"data": {"color": "red"}})
    await core.patch_namespaced_secret("db", destination, {"data": {"password": other}})

    async def healed() -> bool:
        objects = {r["object"] for r in events(auditor, "heal")}
        return any("ConfigMap" in o for o in objects) and any("Secret" in o for o in objects)

    await eventually(healed, seconds=30)
    secret_heal = next(r for r in events(auditor, "heal") if "Secret" in r["object"])
    assert secret_heal["app"] == f"{site.namespace}/{name}" and secret_heal["fields"] == ["/data/password"]
    assert secret_heal["seconds"] >= 0 and secret_heal["level"] == "INFO"
    stored = await core.read_namespaced_secret("db", destination)
    assert stored.data == {"password": ENCODED}  # healed back to what Git says

    assert await auditor.stop() == 0
    text = auditor.text()
    assert all(json.loads(line) for line in text.splitlines())  # every line is one JSON object
    assert SENTINEL not in text and ENCODED not in text and other not in text
