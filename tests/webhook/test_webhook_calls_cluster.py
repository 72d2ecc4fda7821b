"""Which requests the API server sends to /mutate: only those it may patch (issue 17: one call, not two).

The mutating objects hook carries a CEL condition (webhook.registration.stamp_conditions) built from the
webhook's default mode and break-glass flags; the real API server evaluates it. In enforce mode an UPDATE
or DELETE by someone who is not break-glass, that leaves the drift stamp as it was, reaches /validate
alone; warn mode, break-glass (flags or the Application's guard-allow), a touched stamp and every CREATE
still reach /mutate, and get stamped as before. When ``webhook install`` and ``webhook serve`` were given
different default modes, /validate says that a warned edit went through unstamped.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.contract import DriftStamp, GuardAllow
from driftwarden.kube.client import api_client_for
from tests.support.clients import Clients
from tests.support.guard import (
    AUDITOR_NS,
    BREAKGLASS_GROUP,
    Guard,
    apply,
    deployment,
    ensure_namespace,
    guard_for_people,
    managed,
    running_guard,
    wait_for_guard,
)

pytestmark = pytest.mark.cluster

IMAGE_PATCH = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}}
NOTE = {"metadata": {"annotations": {"example.com/note": "looked at it"}}}


@pytest.fixture(scope="module")
async def guard(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Guard]:
    assert control_plane.admin is not None
    admin = api_client_for(control_plane.admin)
    people = ["alice", "bob", "carol"]
    async with guard_for_people(admin, tmp_path_factory.mktemp("calls"), people=people) as running:
        yield running
    await admin.close()


def _calls(guard: Guard, name: str) -> dict[str, int]:
    """How many reviews of object ``name`` each endpoint answered so far."""
    counts = {"mutate": 0, "validate": 0}
    for span in guard.reviews():
        attributes = span.attributes or {}
        if attributes.get("k8s.resource.name") == name:
            counts[str(attributes["driftwarden.endpoint"])] += 1
    return counts


async def _world(guard: Guard, clients: Clients, **annotations: str) -> tuple[str, client.AppsV1Api]:
    ns = f"calls-{uuid.uuid4().hex[:8]}"
    await ensure_namespace(clients.admin, ns)
    auditor = await clients.service_account(AUDITOR_NS, "driftwarden-auditor")
    web = managed(deployment("web", ns))
    web["metadata"]["annotations"].update(annotations)
    await apply(auditor, web, plural="deployments")
    apps = client.AppsV1Api(await clients.user("alice"))
    probe = managed(deployment("probe", ns))
    await apply(auditor, probe, plural="deployments")
    await wait_for_guard(lambda: apps.patch_namespaced_deployment("probe", ns, IMAGE_PATCH, dry_run="All"))
    return ns, apps


def _stamp(obj: Any) -> DriftStamp | None:
    return DriftStamp.decode((obj.metadata.annotations or {}).get(contract.ANNOTATION_DRIFT))


async def test_in_enforce_mode_an_update_or_delete_reaches_validate_alone(
    guard: Guard, clients: Clients
) -> None:
    ns, apps = await _world(guard, clients)
    before = _calls(guard, "web")
    await apps.patch_namespaced_deployment("web", ns, NOTE)  # allowed: nobody in Git owns it
    with pytest.raises(ApiException) as denied:
        await apps.patch_namespaced_deployment("web", ns, IMAGE_PATCH)
    assert denied.value.status == 403
    with pytest.raises(ApiException) as refused:
        await apps.delete_namespaced_deployment("web", ns)
    assert refused.value.status == 403
    after = _calls(guard, "web")
    # At least one review each (the API server reruns admission when a PATCH meets a concurrent write).
    assert after["validate"] - before["validate"] >= 3
    assert after["mutate"] == before["mutate"]


async def test_a_forged_stamp_in_enforce_mode_reaches_mutate_and_is_denied(
    guard: Guard, clients: Clients
) -> None:
    ns, apps = await _world(guard, clients)
    before = _calls(guard, "web")
    forged = DriftStamp(user="mallory", at="2026-01-01T00:00:00Z", fields=("spec",), traceparent="")
    with pytest.raises(ApiException) as denied:
        await apps.patch_namespaced_deployment(
            "web", ns, {"metadata": {"annotations": {contract.ANNOTATION_DRIFT: forged.encode()}}}
        )
    assert denied.value.status == 403
    assert _calls(guard, "web")["mutate"] > before["mutate"]
    assert _stamp(await apps.read_namespaced_deployment("web", ns)) is None


async def test_warn_mode_reaches_mutate_and_is_stamped(guard: Guard, clients: Clients) -> None:
    ns, apps = await _world(guard, clients, **{contract.ANNOTATION_GUARD: "warn"})
    before = _calls(guard, "web")
    await apps.patch_namespaced_deployment("web", ns, IMAGE_PATCH)
    assert _calls(guard, "web")["mutate"] > before["mutate"]
    stamp = _stamp(await apps.read_namespaced_deployment("web", ns))
    assert stamp is not None and stamp.user == "alice" and not stamp.breakglass


async def test_break_glass_by_flag_or_by_the_application_reaches_mutate_and_is_stamped(
    guard: Guard, clients: Clients
) -> None:
    allow = GuardAllow(users=("bob",)).encode()
    for who, groups in (("carol", (BREAKGLASS_GROUP,)), ("bob", ())):
        # A fresh object each: after one edit, the edited field is no longer Git's.
        ns, _apps = await _world(guard, clients, **{contract.ANNOTATION_GUARD_ALLOW: allow})
        apps = client.AppsV1Api(await clients.user(who, groups=groups))
        before = _calls(guard, "web")
        image = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": f"nginx:{who}"}]}}}}
        await apps.patch_namespaced_deployment("web", ns, image)  # allowed: break-glass
        assert _calls(guard, "web")["mutate"] > before["mutate"], who
        stamp = _stamp(await apps.read_namespaced_deployment("web", ns))
        assert stamp is not None and stamp.user == who and stamp.breakglass


async def test_a_create_reaches_mutate(guard: Guard, clients: Clients) -> None:
    ns, _apps = await _world(guard, clients)
    before = _calls(guard, "forged")
    forged = managed(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "forged", "namespace": ns}}
    )
    with pytest.raises(ApiException) as denied:
        await client.CoreV1Api(await clients.user("alice")).create_namespaced_config_map(ns, forged)
    assert denied.value.status == 403
    assert _calls(guard, "forged")["mutate"] > before["mutate"]


async def test_an_install_that_disagrees_with_serve_is_told(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """serve warns by default, install was told enforce: the warned edit skips /mutate and says so."""
    async with running_guard(clients.admin, tmp_path, default_mode="warn", installed_mode="enforce") as guard:
        ns = f"calls-{uuid.uuid4().hex[:8]}"
        await ensure_namespace(clients.admin, ns)
        auditor = await clients.service_account(AUDITOR_NS, "driftwarden-auditor")
        await apply(auditor, managed(deployment("web", ns)), plural="deployments")
        apps = client.AppsV1Api(await clients.user("alice"))
        with caplog.at_level(logging.WARNING, logger="webhook.app"):
            for _ in range(100):  # until the API server calls this webhook
                await apps.patch_namespaced_deployment("web", ns, IMAGE_PATCH)  # warned, allowed
                if _calls(guard, "web")["validate"]:
                    break
        assert _calls(guard, "web")["mutate"] == 0
        assert _stamp(await apps.read_namespaced_deployment("web", ns)) is None
        assert any("without its drift stamp" in r.getMessage() for r in caplog.records)
