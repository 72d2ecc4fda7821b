"""Break-glass that holds, on the real control plane: the webhook for real, the auditor running, real users.

An edit let through by break-glass — the webhook's ``--breakglass-group``, or the Application's
``spec.guard.allow`` stamped on its objects — puts the object on hold instead of being reverted. The
hold shows in ``app get`` and ``status.holds`` (who, which fields, until when) and ends after
``spec.guard.breakglassHold``, or early with ``driftwarden app release``; then the object is healed.
Each step is an Event and a notification.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from auditor.notify import NotificationEvent, Notifier
from devtools.controlplane import ControlPlane
from driftwarden import contract
from tests.cli.test_cli_app import Cli, make_cli, prepare_cluster, rows
from tests.support.auditor import (
    AUDITOR_NS,
    RunningAuditor,
    application,
    auditor_api,
    create_application,
    get_application,
    running_auditor,
    synced_and_watched,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.guard import BREAKGLASS_GROUP, ensure_namespace, grant_cluster_admin, running_guard
from tests.support.seed import SELF_HEALING, WEB_DEPLOYMENT
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster


class Recorder(Notifier):
    """Keeps the notifications instead of sending them (the sender itself is tested in test_notify)."""

    def __init__(self) -> None:
        self.sent: list[NotificationEvent] = []

    def notify(self, event: NotificationEvent) -> None:
        self.sent.append(event)


@dataclass
class Setup:
    cli: Cli
    run: RunningAuditor
    notes: Recorder
    admin: client.ApiClient


@pytest.fixture
async def setup(
    control_plane: ControlPlane,
    clients: Clients,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> AsyncIterator[Setup]:
    await prepare_cluster(control_plane)
    admin = clients.admin
    await ensure_namespace(admin, AUDITOR_NS)
    await grant_cluster_admin(admin, users=["sre", "bob", "alice"])
    notes = Recorder()
    api = await auditor_api(control_plane, clients)
    cli = make_cli(control_plane, capsys, monkeypatch, tmp_path / "cache")
    guard = running_guard(admin, tmp_path / "guard")
    async with guard, running_auditor(control_plane, api, tmp_path / "git", notifier=notes) as run:
        yield Setup(cli, run, notes, admin)


async def _deploy(setup: Setup, repo: GitRepo, guard: dict[str, Any]) -> tuple[str, str]:
    name, ns = f"glass-{uuid.uuid4().hex[:6]}", f"glass-{uuid.uuid4().hex[:6]}"
    body = application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=SELF_HEALING,
                       guard=guard)  # fmt: skip
    await create_application(setup.admin, body)
    await eventually(lambda: synced_and_watched(setup.admin, name, setup.run.healer, ("apps", "Deployment")))
    await asyncio.sleep(0.5)  # the Deployment watch has listed
    return name, ns


def _image_patch(image: str) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}


async def _image(setup: Setup, ns: str) -> str:
    live = await client.AppsV1Api(setup.admin).read_namespaced_deployment("web", ns)
    return str(live.spec.template.spec.containers[0].image)


async def _holds(setup: Setup, name: str) -> list[dict[str, Any]]:
    return list(((await get_application(setup.admin, name)).get("status") or {}).get("holds") or [])


async def _reasons(setup: Setup, name: str) -> list[str]:
    listed = await client.EventsV1Api(setup.admin).list_namespaced_event(AUDITOR_NS)
    return [e.reason for e in listed.items if e.regarding.name == name]


async def test_a_breakglass_edit_is_held_then_healed_when_the_hold_expires(
    setup: Setup, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"web/deployment.yaml": WEB_DEPLOYMENT})
    name, ns = await _deploy(setup, repo, {"mode": "enforce", "breakglassHold": "4s"})
    sre = client.AppsV1Api(await clients.user("sre", groups=(BREAKGLASS_GROUP,)))
    await sre.patch_namespaced_deployment("web", ns, _image_patch("nginx:hotfix"))  # the webhook's flag

    async def held() -> bool:
        return bool(await _holds(setup, name))

    await eventually(held, seconds=10)
    (hold,) = await _holds(setup, name)
    assert hold["user"] == "sre" and any("image" in f for f in hold["fields"]) and hold["until"]
    assert await _image(setup, ns) == "nginx:hotfix"  # not reverted
    live = await client.AppsV1Api(setup.admin).read_namespaced_deployment("web", ns)
    assert contract.ANNOTATION_HOLD in live.metadata.annotations
    assert contract.ANNOTATION_DRIFT not in live.metadata.annotations
    shown = await setup.cli("get", name)
    assert shown.code == 0
    (row,) = rows(shown.out, "HELD")
    assert (row["HELD"], row["BY"], row["UNTIL"]) == ("Deployment/web", "sre", hold["until"])
    assert setup.run.healer.heals == 0

    async def healed() -> bool:
        return await _image(setup, ns) == "nginx:1.27"

    await eventually(healed, seconds=15)  # the hold ran out: Git's state again
    assert await _holds(setup, name) == []
    assert {"BreakGlassHold", "BreakGlassHoldEnded"} <= set(await _reasons(setup, name))
    kinds = [(n.kind, n.manager) for n in setup.notes.sent if n.app.name == name]
    assert ("breakglass_hold", "sre") in kinds and ("hold_ended", "sre") in kinds
    ended = [n for n in setup.notes.sent if n.app.name == name and n.kind == "hold_ended"]
    assert "expired" in ended[0].detail


async def test_spec_guard_allow_reaches_the_webhook_and_app_release_ends_the_hold_early(
    setup: Setup, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"web/deployment.yaml": WEB_DEPLOYMENT})
    name, ns = await _deploy(setup, repo, {"mode": "enforce", "allow": {"users": ["bob"]}})
    apps = client.AppsV1Api(setup.admin)
    live = await apps.read_namespaced_deployment("web", ns)
    assert json.loads(live.metadata.annotations[contract.ANNOTATION_GUARD_ALLOW]) == {
        "users": ["bob"], "groups": []
    }  # fmt: skip

    alice = client.AppsV1Api(await clients.user("alice"))
    with pytest.raises(ApiException) as denied:  # not on the list: the guard holds
        await alice.patch_namespaced_deployment("web", ns, _image_patch("nginx:alice"))
    assert denied.value.status == 403
    allow_self = {"metadata": {"annotations": {contract.ANNOTATION_GUARD_ALLOW: '{"users":["alice"]}'}}}
    with pytest.raises(ApiException) as protected:  # the list is protected like the guard mode
        await alice.patch_namespaced_deployment("web", ns, allow_self)
    assert protected.value.status == 403

    bob = client.AppsV1Api(await clients.user("bob"))
    await bob.patch_namespaced_deployment("web", ns, _image_patch("nginx:bob"))  # on the list

    async def held() -> bool:
        return bool(await _holds(setup, name))

    await eventually(held, seconds=10)
    await asyncio.sleep(1.0)
    assert await _image(setup, ns) == "nginx:bob"  # held, not reverted (the hold is 1h by default)

    released = await setup.cli("release", name, "--resource", "Deployment/web")
    assert released.code == 0, released.err
    assert f"Released Deployment.apps {ns}/web" in released.out

    async def healed() -> bool:
        return await _image(setup, ns) == "nginx:1.27"

    await eventually(healed, seconds=10)
    assert await _holds(setup, name) == []
    ended = [n for n in setup.notes.sent if n.app.name == name and n.kind == "hold_ended"]
    assert ended and "released" in ended[0].detail
    nothing = await setup.cli("release", name)
    assert nothing.code == 2 and "has no break-glass holds" in nothing.err


async def test_a_full_pass_leaves_a_held_object_alone_until_git_changes_the_held_fields(
    setup: Setup, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"web/deployment.yaml": WEB_DEPLOYMENT})
    name, ns = await _deploy(setup, repo, {"mode": "enforce", "allow": {"groups": ["oncall"]}})
    oncall = client.AppsV1Api(await clients.user("carol", groups=("oncall",)))
    await grant_cluster_admin(setup.admin, users=["carol"])
    await oncall.patch_namespaced_deployment("web", ns, _image_patch("nginx:oncall"))

    async def held() -> bool:
        return bool(await _holds(setup, name))

    await eventually(held, seconds=10)
    key = setup.run.loop.workers
    passes = next(w for k, w in key.items() if k.name == name).passes
    repo.commit({"web/deployment.yaml": WEB_DEPLOYMENT.replace("replicas: 2", "replicas: 3")})  # not held
    assert setup.run.loop.refresh(next(k for k in key if k.name == name))

    async def passed() -> bool:
        return next(w for k, w in key.items() if k.name == name).passes > passes

    await eventually(passed, seconds=15)
    app = await get_application(setup.admin, name)
    results = {r["name"]: r for r in app["status"]["operationState"]["syncResult"]["resources"]}
    assert results["web"]["status"] == "Held" and "carol" in results["web"]["message"]
    assert await _image(setup, ns) == "nginx:oncall" and await _holds(setup, name)

    repo.commit({"web/deployment.yaml": WEB_DEPLOYMENT.replace("nginx:1.27", "nginx:1.28")})  # the held field
    assert setup.run.loop.refresh(next(k for k in key if k.name == name))

    async def git_won() -> bool:
        return await _image(setup, ns) == "nginx:1.28"

    await eventually(git_won, seconds=15)
    assert await _holds(setup, name) == []
    ended = [n for n in setup.notes.sent if n.app.name == name and n.kind == "hold_ended"]
    assert ended and "Git changed" in ended[0].detail
