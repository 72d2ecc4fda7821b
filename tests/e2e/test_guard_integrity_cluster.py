"""Guard integrity through the real API server (issue 13): each way around the guard that was found,
made by alice with kubectl, is denied in enforce mode, and in warn mode let through with a warning,
stamped with alice's name (not one she chose), healed by the auditor and recorded as hers.

One Application per mode deploys ``web`` (a Deployment) and ``db`` (a Secret written with stringData);
the webhook is registered through real configurations and the auditor heals through its watches.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

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
    synced_and_watched,
)
from tests.support.clients import Clients
from tests.support.gitrepo import make_repo
from tests.support.guard import ensure_namespace, grant_cluster_admin, managed, running_guard
from tests.support.kubectl import kubectl
from tests.support.seed import SELF_HEALING, WEB_DEPLOYMENT
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ntype: Opaque\nstringData: {password: hunter2}\n"
MODES = ("enforce", "warn")


@dataclass
class App:
    name: str
    ns: str


@dataclass
class World:
    plane: ControlPlane
    admin: client.ApiClient
    alice: Path
    apps: dict[str, App]
    workdir: Path


@pytest.fixture(scope="module")
async def world(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    workdir = tmp_path_factory.mktemp("integrity")
    clients = Clients(control_plane)
    admin = clients.admin
    await ensure_namespace(admin, AUDITOR_NS)
    await grant_cluster_admin(admin, users=["alice"])  # RBAC never hides what admission decides
    repo = make_repo(workdir / "repo", {"web/deployment.yaml": WEB_DEPLOYMENT, "web/secret.yaml": SECRET})
    api = await auditor_api(control_plane, clients)
    alice = await clients.user_credentials("alice")
    assert alice.kubeconfig is not None
    async with (
        running_auditor(control_plane, api, workdir / "git") as run,
        running_guard(admin, workdir / "guard"),
    ):
        apps = {}
        for mode in MODES:
            app = App(f"integrity-{mode}-{uuid.uuid4().hex[:6]}", f"integrity-{uuid.uuid4().hex[:6]}")
            body = application(app.name, repo_url=repo.url, path="web", namespace=app.ns,
                               syncPolicy=SELF_HEALING, guard={"mode": mode})  # fmt: skip
            await create_application(admin, body)
            apps[mode] = app
        for app in apps.values():
            await eventually(
                lambda app=app: synced_and_watched(
                    admin, app.name, run.healer, ("apps", "Deployment"), ("", "Secret")
                ),
                seconds=60,
            )
        yield World(control_plane, admin, alice.kubeconfig, apps, workdir)
    await clients.close()


async def _as_alice(world: World, *args: str) -> tuple[int, str, str]:
    return await kubectl(world.plane, world.alice, *args)


RESOURCES = {"deployment": ("apps", "v1", "deployments"), "secret": ("", "v1", "secrets")}


async def _live(world: World, app: App, kind: str = "deployment", name: str = "web") -> dict[str, Any]:
    group, version, plural = RESOURCES[kind]
    path = resource_path(group=group, version=version, plural=plural, namespace=app.ns, name=name)
    return await request_json(world.admin, "GET", path)


async def _records(world: World, app: App) -> list[dict[str, Any]]:
    status = (await get_application(world.admin, app.name)).get("status") or {}
    return list(status.get("drift") or [])


async def _edit(world: World, mode: str, *args: str, check: Any = None) -> dict[str, Any] | None:
    """Make alice's edit; enforce: denied and nothing changed; warn: warned, stamped with her name, then
    healed (``check`` says when) and recorded as hers. Returns the object as her edit stored it (warn)."""
    app = world.apps[mode]
    before = await _records(world, app)
    code, out, err = await _as_alice(world, "-n", app.ns, *args, "-o", "json")
    if mode == "enforce":
        assert code != 0 and "denied the request: driftwarden" in err, (code, err)
        return None
    assert code == 0, err
    assert "Warning: driftwarden" in err  # kubectl shows the admission warnings to the person
    stored: dict[str, Any] = json.loads(out)
    stamp = contract.drift_stamp(stored)
    assert stamp is not None and stamp.user == "alice", stored["metadata"].get("annotations")

    async def healed() -> bool:
        kind = stored["kind"].lower()
        live = await _live(world, app, kind, stored["metadata"]["name"])
        return contract.drift_stamp(live) is None and (check is None or check(live))

    async def recorded() -> bool:
        records = await _records(world, app)
        return len(records) > len(before) or (bool(records) and records[-1] != (before or [None])[-1])

    await eventually(healed, seconds=20)
    await eventually(recorded, seconds=20)
    record = (await _records(world, app))[-1]
    assert (record["user"], record["action"]) == ("alice", "healed"), record
    return stored


def _image(live: dict[str, Any]) -> str:
    return str(live["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.mark.parametrize("mode", MODES)
async def test_an_apply_as_the_gitops_manager_after_a_planted_entry(world: World, mode: str) -> None:
    """Issue 13, item 1: a planted entry taught the diff how containers are keyed; it must teach nothing."""
    app = world.apps[mode]
    live = await _live(world, app)
    planted = {"manager": "evil", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
               "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                   'k:{"image":"nginx:1.27"}': {".": {}}}}}}}}  # fmt: skip
    plant = {"metadata": {"managedFields": [*live["metadata"]["managedFields"], planted]}}
    code, _, err = await _as_alice(
        world, "-n", app.ns, "patch", "deploy/web", "--type=merge", "-p", json.dumps(plant)
    )
    assert code == 0, err  # planting an entry under another manager is allowed, and now harmless
    manifest = managed(yaml.safe_load(WEB_DEPLOYMENT), app=app.name, guard=mode)
    manifest["metadata"]["namespace"] = app.ns
    manifest["metadata"]["annotations"][contract.ANNOTATION_TRACKING_ID] = (
        f"{AUDITOR_NS}/{app.name}:apps/Deployment:{app.ns}/web"
    )
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    path = world.workdir / f"evil-{mode}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    stored = await _edit(
        world, mode, "apply", "--server-side", "--field-manager=driftwarden", "--force-conflicts", "-f",
        str(path), check=lambda live: _image(live) == "nginx:1.27",
    )  # fmt: skip
    if stored is None:
        assert _image(await _live(world, app)) == "nginx:1.27"
    else:
        stamp = contract.drift_stamp(stored)
        assert stamp is not None and any("image" in field for field in stamp.fields)


@pytest.mark.parametrize("mode", MODES)
async def test_a_managed_fields_reset(world: World, mode: str) -> None:
    """Item 2: ``managedFields: [{}]`` strips them all, after which Git's labels were free to edit."""
    app = world.apps[mode]

    def gitops_entry_back(live: dict[str, Any]) -> bool:
        entries = live["metadata"].get("managedFields") or []
        return any(e.get("manager") == contract.FIELD_MANAGER for e in entries)

    stored = await _edit(world, mode, "patch", "deploy/web", "--type=merge", "-p",
                         '{"metadata":{"managedFields":[{}]}}', check=gitops_entry_back)  # fmt: skip
    assert gitops_entry_back(await _live(world, app))
    if stored is not None:
        assert not gitops_entry_back(stored)  # it was reset, and the heal's apply gave Git its entry back


@pytest.mark.parametrize("mode", MODES)
async def test_an_owner_reference_added(world: World, mode: str) -> None:
    """Item 3: a new owner would let the garbage collector delete the object when the owner goes."""
    app = world.apps[mode]
    core = client.CoreV1Api(world.admin)
    bait = await core.create_namespaced_config_map(
        app.ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"bait-{uuid.uuid4().hex[:6]}"))
    )
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": bait.metadata.name, "uid": bait.metadata.uid}
    patch = json.dumps({"metadata": {"ownerReferences": [owner]}})
    stored = await _edit(world, mode, "patch", "deploy/web", "--type=merge", "-p", patch,
                         check=lambda live: not live["metadata"].get("ownerReferences"))  # fmt: skip
    assert not (await _live(world, app))["metadata"].get("ownerReferences")
    if stored is not None:
        assert stored["metadata"]["ownerReferences"][0]["uid"] == bait.metadata.uid


@pytest.mark.parametrize("mode", MODES)
async def test_a_data_patch_of_a_secret_git_writes_with_string_data(world: World, mode: str) -> None:
    """Item 4: Git owns stringData.password, the edit changes data.password."""
    app = world.apps[mode]
    hunter2 = base64.b64encode(b"hunter2").decode()
    other = base64.b64encode(b"other").decode()
    stored = await _edit(world, mode, "patch", "secret/db", "-p", json.dumps({"data": {"password": other}}),
                         check=lambda live: live["data"]["password"] == hunter2)  # fmt: skip
    assert (await _live(world, app, "secret", "db"))["data"]["password"] == hunter2
    if stored is not None:
        stamp = contract.drift_stamp(stored)
        assert stamp is not None and stamp.fields == ("data.password",)


@pytest.mark.parametrize("mode", MODES)
async def test_a_forged_drift_stamp(world: World, mode: str) -> None:
    """Item 5: a stamp naming bob and a field that never changed; only the webhook writes stamps."""
    app = world.apps[mode]
    forged = {"user": "bob", "at": "2026-01-01T00:00:00Z", "fields": ["spec.paused"], "traceparent": ""}
    annotation = f"{contract.ANNOTATION_DRIFT}={json.dumps(forged)}"
    stored = await _edit(world, mode, "annotate", "deploy/web", annotation)
    if stored is None:
        assert contract.drift_stamp(await _live(world, app)) is None
    else:
        stamp = contract.drift_stamp(stored)
        assert stamp is not None and (stamp.user, stamp.fields) == (
            "alice",
            (f'metadata.annotations["{contract.ANNOTATION_DRIFT}"]',),
        )


async def test_the_records_name_only_the_user_who_edited(world: World) -> None:
    """Every heal in warn mode above undid alice's edit, whatever field manager she wrote as (among them
    ``driftwarden`` and a planted ``evil``)."""
    records = await _records(world, world.apps["warn"])
    assert len(records) >= 5 and {r["user"] for r in records} == {"alice"}, records
