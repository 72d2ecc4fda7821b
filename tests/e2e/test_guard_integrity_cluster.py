"""Guard integrity through the real API server (issue 13, "Done when"): each way around the guard that was
found, made by alice (a client certificate with the ordinary ``edit`` ClusterRole) through the real
kube-apiserver, is denied in enforce mode with the webhook's 403 and leaves the object as it was; in warn
mode it is let through with the webhook's warning, stamped with alice's name (never a name she chose),
healed back to Git by the auditor and recorded as hers in the Application's ``status.drift``.

One module-scoped set-up: the webhook registered through real configurations, the auditor running with
self-heal, and two Applications syncing one Git repository (a Deployment ``web`` with a label Git sets, a
Secret ``db`` written with stringData) into two namespaces, one per guard mode.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from auditor.heal.healer import DRIFT_FIGHT
from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.kube.rest import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, request_json, resource_path
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    auditor_api,
    create_application,
    get_application,
    running_auditor,
    synced_and_watched,
    wait_until_allowed,
)
from tests.support.clients import Clients
from tests.support.gitrepo import make_repo
from tests.support.guard import ensure_namespace, managed, running_guard
from tests.support.seed import SELF_HEALING, WEB_DEPLOYMENT
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

DEPLOYMENT = WEB_DEPLOYMENT.replace(
    "metadata: {name: web}", "metadata: {name: web, labels: {tier: frontend}}"
)
"""``web``, with a label Git sets (``tier``): the metadata a managedFields reset used to set free."""
SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ntype: Opaque\nstringData: {password: hunter2}\n"
MODES = ("enforce", "warn")
RESOURCES = {"Deployment": ("apps", "v1", "deployments"), "Secret": ("", "v1", "secrets")}


@dataclass
class App:
    name: str
    ns: str


@dataclass
class World:
    plane: ControlPlane
    admin: client.ApiClient
    alice: client.ApiClient
    apps: dict[str, App]


async def _grant_edit(admin: client.ApiClient, user: str) -> None:
    """Bind ``user`` to the ordinary ``edit`` ClusterRole (aggregated by the controller manager)."""
    binding = client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=f"integrity-edit-{uuid.uuid4().hex[:6]}"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"),
        subjects=[client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")],
    )
    await client.RbacAuthorizationV1Api(admin).create_cluster_role_binding(binding)


@pytest.fixture(scope="module")
async def world(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    workdir = tmp_path_factory.mktemp("integrity")
    clients = Clients(control_plane)
    admin = clients.admin
    await ensure_namespace(admin, AUDITOR_NS)
    await _grant_edit(admin, "alice")
    alice = await clients.user("alice")
    for resource in ("deployments", "secrets", "configmaps"):
        group = "apps" if resource == "deployments" else ""
        await wait_until_allowed(alice, verb="patch", group=group, resource=resource)
    repo = make_repo(workdir / "repo", {"web/deployment.yaml": DEPLOYMENT, "web/secret.yaml": SECRET})
    api = await auditor_api(control_plane, clients)
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
        yield World(control_plane, admin, alice, apps)
    await clients.close()


@dataclass(frozen=True)
class Answer:
    """What the API server answered alice: the status, the object (or Status) and its Warning headers."""

    status: int
    body: dict[str, Any]
    warnings: tuple[str, ...]

    @property
    def warned(self) -> bool:
        return any('"driftwarden: ' in warning for warning in self.warnings)


def _path(app: App, kind: str, name: str) -> str:
    group, version, plural = RESOURCES[kind]
    return resource_path(group=group, version=version, plural=plural, namespace=app.ns, name=name)


async def _send(
    world: World, method: str, path: str, body: Any, *, content_type: str = MERGE_PATCH, **query: str
) -> Answer:
    """One request as alice, keeping the response headers (the API server's admission warnings)."""
    headers = {"Accept": "application/json", "Content-Type": content_type}
    try:
        data, status, response_headers = await world.alice.call_api(
            path, method, query_params=list(query.items()), header_params=headers, body=body,
            response_types_map={200: "object", 201: "object"}, auth_settings=["BearerToken"],
            _return_http_data_only=False,
        )  # fmt: skip
    except ApiException as exc:
        return Answer(exc.status, json.loads(exc.body), tuple((exc.headers or {}).getall("Warning", ())))
    return Answer(status, data, tuple(response_headers.getall("Warning", ())))


async def _live(world: World, app: App, kind: str = "Deployment", name: str = "web") -> dict[str, Any]:
    return await request_json(world.admin, "GET", _path(app, kind, name))


async def _records(world: World, app: App) -> list[dict[str, Any]]:
    status = (await get_application(world.admin, app.name)).get("status") or {}
    return list(status.get("drift") or [])


async def _denied(world: World, kind: str, name: str, edit: Callable[[str], Any]) -> None:
    """Enforce mode: the edit is refused with the webhook's 403 and the object stays as it was."""
    app = world.apps["enforce"]
    before = await _live(world, app, kind, name)
    answer = await edit(_path(app, kind, name))
    assert answer.status == 403, answer
    assert "denied the request: driftwarden" in answer.body["message"], answer.body
    assert f"{app.ns}/{name}" in answer.body["message"]
    after = await _live(world, app, kind, name)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after == before


async def _warned(world: World, answer: Answer) -> dict[str, Any]:
    """Warn mode: the edit went through with the webhook's warning and a drift stamp naming alice."""
    assert answer.status == 200, answer
    assert answer.warned, answer.warnings
    stored = answer.body
    stamp = contract.drift_stamp(stored)
    assert stamp is not None and stamp.user == "alice", stored["metadata"].get("annotations")
    return stored


async def _healed(
    world: World, kind: str, name: str, before: list[dict[str, Any]], check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Warn mode: the auditor puts the object back (``check``), drops the stamp and records alice."""
    app = world.apps["warn"]

    async def healed() -> bool:
        live = await _live(world, app, kind, name)
        return contract.drift_stamp(live) is None and check(live)

    async def recorded() -> bool:
        records = await _records(world, app)
        return len(records) > len(before) or (bool(records) and records[-1] != (before or [None])[-1])

    await eventually(healed, seconds=20)
    await eventually(recorded, seconds=20)
    record = (await _records(world, app))[-1]
    assert (record["user"], record["action"]) == ("alice", "healed"), record
    assert record["object"].endswith(f"{app.ns}/{name}"), record
    return await _live(world, app, kind, name)


def _image(live: dict[str, Any]) -> str:
    return str(live["spec"]["template"]["spec"]["containers"][0]["image"])


def _gitops_entry(live: dict[str, Any]) -> bool:
    entries = live["metadata"].get("managedFields") or []
    return any(e.get("manager") == contract.FIELD_MANAGER for e in entries)


@pytest.mark.parametrize("mode", MODES)
async def test_an_apply_as_the_gitops_manager_after_a_planted_entry(world: World, mode: str) -> None:
    """Issue 13, item 1: a planted entry taught the diff how containers are keyed; it must teach nothing."""
    app = world.apps[mode]
    planted = {"manager": "evil", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
               "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                   'k:{"image":"nginx:1.27"}': {".": {}}}}}}}}  # fmt: skip
    plant = [{"op": "add", "path": "/metadata/managedFields/-", "value": planted}]
    answer = await _send(world, "PATCH", _path(app, "Deployment", "web"), plant, content_type=JSON_PATCH)
    assert answer.status == 200, (
        answer
    )  # planting an entry under another manager is allowed, and now harmless
    assert any(e.get("manager") == "evil" for e in answer.body["metadata"]["managedFields"])
    manifest = yaml.safe_load(DEPLOYMENT)
    manifest["metadata"]["namespace"] = app.ns
    manifest = managed(manifest, app=app.name, guard=mode)
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"

    def apply(path: str) -> Any:
        query = {"fieldManager": contract.FIELD_MANAGER, "force": "true"}
        return _send(world, "PATCH", path, manifest, content_type=APPLY_PATCH, **query)

    if mode == "enforce":
        await _denied(world, "Deployment", "web", apply)
        assert _image(await _live(world, app)) == "nginx:1.27"
        return
    before = await _records(world, app)
    stored = await _warned(world, await apply(_path(app, "Deployment", "web")))
    assert _image(stored) == "evil:1"
    stamp = contract.drift_stamp(stored)
    assert stamp is not None and any("image" in field for field in stamp.fields)
    await _healed(world, "Deployment", "web", before, lambda live: _image(live) == "nginx:1.27")
    assert _image(await _live(world, app)) == "nginx:1.27"


RESET = {"metadata": {"managedFields": [{}]}}
RELABEL = {"metadata": {"labels": {"tier": "evil"}}}


@pytest.mark.parametrize("mode", MODES)
async def test_a_managed_fields_reset_then_a_git_owned_label(world: World, mode: str) -> None:
    """Item 2: ``managedFields: [{}]`` strips them all, after which Git's labels were free to edit."""
    app = world.apps[mode]
    if mode == "enforce":
        await _denied(world, "Deployment", "web", lambda path: _send(world, "PATCH", path, RESET))
        await _denied(world, "Deployment", "web", lambda path: _send(world, "PATCH", path, RELABEL))
        live = await _live(world, app)
        assert _gitops_entry(live) and live["metadata"]["labels"]["tier"] == "frontend"
        return
    before = await _records(world, app)
    path = _path(app, "Deployment", "web")
    reset = await _warned(world, await _send(world, "PATCH", path, RESET))
    assert not _gitops_entry(reset)  # it was reset
    # At once, before the heal gives Git its entry back: the label is still Git's.
    relabelled = await _warned(world, await _send(world, "PATCH", path, RELABEL))
    assert relabelled["metadata"]["labels"]["tier"] == "evil"
    stamp = contract.drift_stamp(relabelled)
    assert stamp is not None and any("tier" in field for field in stamp.fields), stamp

    def back(live: dict[str, Any]) -> bool:
        return _gitops_entry(live) and live["metadata"]["labels"]["tier"] == "frontend"

    healed = await _healed(world, "Deployment", "web", before, back)
    assert _gitops_entry(healed)  # the heal's apply gave Git its entry back


@pytest.mark.parametrize("mode", MODES)
async def test_an_owner_reference_added(world: World, mode: str) -> None:
    """Item 3: a new owner would let the garbage collector delete the object when the owner goes."""
    app = world.apps[mode]
    bait = await client.CoreV1Api(world.alice).create_namespaced_config_map(
        app.ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"bait-{uuid.uuid4().hex[:6]}"))
    )
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": bait.metadata.name, "uid": bait.metadata.uid}
    patch = {"metadata": {"ownerReferences": [owner]}}

    def edit(path: str) -> Any:
        return _send(world, "PATCH", path, patch)

    if mode == "enforce":
        await _denied(world, "Deployment", "web", edit)
    else:
        before = await _records(world, app)
        stored = await _warned(world, await edit(_path(app, "Deployment", "web")))
        assert stored["metadata"]["ownerReferences"][0]["uid"] == bait.metadata.uid
        await _healed(
            world, "Deployment", "web", before, lambda live: not live["metadata"].get("ownerReferences")
        )
    assert not (await _live(world, app))["metadata"].get("ownerReferences")


@pytest.mark.parametrize("mode", MODES)
async def test_a_data_patch_of_a_secret_git_writes_with_string_data(world: World, mode: str) -> None:
    """Item 4: Git owns stringData.password, the edit changes data.password."""
    app = world.apps[mode]
    hunter2 = base64.b64encode(b"hunter2").decode()
    other = base64.b64encode(b"other").decode()

    def edit(path: str) -> Any:
        return _send(world, "PATCH", path, {"data": {"password": other}})

    if mode == "enforce":
        await _denied(world, "Secret", "db", edit)
    else:
        before = await _records(world, app)
        stored = await _warned(world, await edit(_path(app, "Secret", "db")))
        assert stored["data"]["password"] == other
        stamp = contract.drift_stamp(stored)
        assert stamp is not None and stamp.fields == ("data.password",)
        await _healed(world, "Secret", "db", before, lambda live: live["data"]["password"] == hunter2)
    assert (await _live(world, app, "Secret", "db"))["data"]["password"] == hunter2


@pytest.mark.parametrize("mode", MODES)
async def test_a_forged_drift_stamp(world: World, mode: str) -> None:
    """Item 5: a stamp naming bob and a field that never changed; only the webhook writes stamps."""
    app = world.apps[mode]
    forged = {"user": "bob", "at": "2026-01-01T00:00:00Z", "fields": ["spec.paused"], "traceparent": ""}
    patch = {"metadata": {"annotations": {contract.ANNOTATION_DRIFT: json.dumps(forged)}}}

    def edit(path: str) -> Any:
        return _send(world, "PATCH", path, patch)

    if mode == "enforce":
        await _denied(world, "Deployment", "web", edit)
        assert contract.drift_stamp(await _live(world, app)) is None
        return
    before = await _records(world, app)
    stored = await _warned(world, await edit(_path(app, "Deployment", "web")))
    stamp = contract.drift_stamp(stored)  # the webhook's own, in place of bob's
    assert stamp is not None and (stamp.user, stamp.fields) == (
        "alice",
        (f'metadata.annotations["{contract.ANNOTATION_DRIFT}"]',),
    )
    await _healed(world, "Deployment", "web", before, lambda live: True)  # healed: the stamp is gone


async def test_the_records_name_only_the_user_who_edited(world: World) -> None:
    """Every heal in warn mode above undid alice's edit, whatever field manager she wrote as (among them
    ``driftwarden`` and a planted ``evil``); enforce mode let nothing drift; nobody won a fight."""
    records = await _records(world, world.apps["warn"])
    assert len(records) >= 5 and {r["user"] for r in records} == {"alice"}, records
    assert await _records(world, world.apps["enforce"]) == []
    for app in world.apps.values():
        conditions = ((await get_application(world.admin, app.name)).get("status") or {}).get("conditions")
        assert not [c for c in conditions or [] if c["type"] == DRIFT_FIGHT], conditions
