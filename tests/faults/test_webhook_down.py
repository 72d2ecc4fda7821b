"""The webhook down: killed (nothing listens) or frozen with SIGSTOP (it accepts, never answers).

Against the real API server and the real ``driftwarden webhook serve`` process, installed by
``driftwarden webhook install`` with each failurePolicy. What must hold (issue 18):

- objects without the ``driftwarden.io/app`` label, and anything in kube-system or the install namespace
  (label or not), are never
  affected: the API server does not even call the webhook for them, so they are written at full speed;
- a managed object follows the failurePolicy: ``Fail`` refuses the write, ``Ignore`` lets it through;
- the API server waits at most ``timeoutSeconds`` per webhook call on a stalled webhook, measured from the
  client: one call under ``Fail`` (the first failure ends the request), at most two under ``Ignore`` (the
  mutating hook, then the validating one: the cumulative timeout documented in docs/reliability.md);
- ``driftwarden webhook uninstall`` ends a lockout while the webhook is dead.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from devtools.controlplane import ControlPlane
from driftwarden import contract
from tests.support.auditor import auditor_api, wait_until_allowed
from tests.support.clients import Clients
from tests.support.guard import apply, ensure_namespace, grant_cluster_admin, managed, wait_for_guard
from tests.support.guardproc import InstalledWebhook, driftwarden, installed_webhook
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

TIMEOUT = 2
"""timeoutSeconds installed: small, so a stalled webhook costs the test seconds, not minutes."""
SLACK = 1.5
"""What a request may take beyond the webhook timeouts on this shared 2-core machine."""
SPARED = ("kube-system", contract.DEFAULT_INSTALL_NAMESPACE)
"""Never sent to the webhook (``webhook install``'s namespaceSelector), labelled objects or not."""
FAST = 1.0
"""A request the webhook is never asked about answers in well under this."""


@dataclass
class Scene:
    """A user who may edit anything (RBAC never hides admission) and three ConfigMaps to edit."""

    plane: ControlPlane
    gitops: client.ApiClient
    """The auditor's own service account (manifests/rbac): only it may write as the GitOps manager."""
    core: client.CoreV1Api
    namespace: str
    system_name: str

    async def heal(self) -> None:
        """What the auditor does after an unguarded edit: Git's value back, and Git's ownership of it."""
        await apply(self.gitops, managed(_configmap("settings", self.namespace)), plural="configmaps")

    async def edit(self, name: str, namespace: str | None = None) -> float:
        """Patch a field Git owns; the seconds it took. Raises ApiException when refused."""
        started = time.monotonic()
        await self.core.patch_namespaced_config_map(
            name, namespace or self.namespace, {"data": {"level": uuid.uuid4().hex[:8]}}
        )
        return time.monotonic() - started

    async def refused(self, name: str) -> tuple[float, ApiException]:
        started = time.monotonic()
        with pytest.raises(ApiException) as caught:
            await self.edit(name)
        return time.monotonic() - started, caught.value

    async def bystanders_unaffected(self) -> None:
        """Unmanaged objects in the namespace, and labelled ones in kube-system and the install namespace:
        written at once."""
        assert await self.edit("plain") < FAST
        for namespace in SPARED:
            assert await self.edit(self.system_name, namespace) < FAST
        made = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"new-{uuid.uuid4().hex[:6]}"))
        started = time.monotonic()
        await self.core.create_namespaced_config_map(self.namespace, made)
        assert time.monotonic() - started < FAST


def _configmap(name: str, namespace: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"level": "info"}}  # fmt: skip


@pytest.fixture
async def scene(control_plane: ControlPlane, clients: Clients) -> AsyncIterator[Scene]:
    admin = clients.admin
    suffix = uuid.uuid4().hex[:6]
    namespace, person, system_name = f"down-{suffix}", f"down-editor-{suffix}", f"dw-fault-{suffix}"
    await ensure_namespace(admin, namespace)
    await grant_cluster_admin(admin, users=[person])
    await apply(admin, managed(_configmap("settings", namespace)), plural="configmaps")
    await apply(admin, _configmap("plain", namespace), plural="configmaps")
    await ensure_namespace(admin, contract.DEFAULT_INSTALL_NAMESPACE)
    for spared in SPARED:
        await apply(admin, managed(_configmap(system_name, spared)), plural="configmaps")
    api = await clients.user(person)
    await wait_until_allowed(api, verb="patch", group="", resource="configmaps")
    gitops = await auditor_api(control_plane, clients)
    await wait_until_allowed(gitops, verb="patch", group="", resource="configmaps")
    yield Scene(control_plane, gitops, client.CoreV1Api(api), namespace, system_name)
    for spared in SPARED:
        await client.CoreV1Api(admin).delete_namespaced_config_map(system_name, spared)


async def _guarding(scene: Scene) -> None:
    """Until the API server calls the live webhook, which denies the edit (enforce)."""
    await wait_for_guard(lambda: scene.edit("settings"))
    await scene.bystanders_unaffected()


def _failed_calling(exc: ApiException) -> bool:
    return exc.status in (500, 504) and "failed calling webhook" in str(exc.body)


@pytest.mark.parametrize("failure_policy", ["Fail", "Ignore"])
async def test_a_killed_webhook_follows_the_failure_policy(
    scene: Scene, tmp_path: Path, failure_policy: str
) -> None:
    async with installed_webhook(
        scene.plane, tmp_path, failure_policy=failure_policy, timeout_seconds=TIMEOUT
    ) as hook:
        await _guarding(scene)
        await hook.kill()
        if failure_policy == "Fail":
            took, exc = await scene.refused("settings")
            assert _failed_calling(exc), exc.body
        else:
            took = await scene.edit("settings")  # unguarded: the auditor heals it (docs/deploy.md)
        assert took < FAST  # nothing listens: connection refused at once, no timeout to wait out
        await scene.bystanders_unaffected()


# Under Fail the first failed call ends the request; under Ignore each call waits out its timeout, and an
# UPDATE in enforce mode reaches the validating hook alone (the mutating hook's may-stamp condition).
@pytest.mark.parametrize(("failure_policy", "calls"), [("Fail", 1), ("Ignore", 1)])
async def test_a_stalled_webhook_costs_at_most_timeout_seconds_per_call(
    scene: Scene, tmp_path: Path, failure_policy: str, calls: int
) -> None:
    async with installed_webhook(
        scene.plane, tmp_path, failure_policy=failure_policy, timeout_seconds=TIMEOUT
    ) as hook:
        await _guarding(scene)
        hook.freeze()
        try:
            if failure_policy == "Fail":
                took, exc = await scene.refused("settings")
                assert _failed_calling(exc), exc.body
            else:
                took = await scene.edit("settings")
            # The API server gave up on the frozen webhook after timeoutSeconds per call, no later.
            assert TIMEOUT * calls - 0.2 <= took <= TIMEOUT * calls + SLACK, took
            await scene.bystanders_unaffected()  # the stall is never felt outside managed objects
        finally:
            hook.thaw()
        await scene.heal()  # under Ignore the edit went through, and its writer took the field over
        await _guarding(scene)  # resumed, it answers again without a restart


async def test_uninstall_ends_a_lockout(scene: Scene, tmp_path: Path) -> None:
    async with installed_webhook(
        scene.plane, tmp_path, failure_policy="Fail", timeout_seconds=TIMEOUT
    ) as hook:
        await _guarding(scene)
        await hook.kill()
        _, exc = await scene.refused("settings")
        assert _failed_calling(exc), exc.body  # locked out
        admin = scene.plane.admin
        assert admin is not None and admin.kubeconfig is not None
        code, out, err = await driftwarden("webhook", "uninstall", "--kubeconfig", str(admin.kubeconfig))
        assert code == 0, (out, err)
        assert out.strip() == "webhook configurations deleted"
        await _edits_pass(scene, hook)


async def _edits_pass(scene: Scene, hook: InstalledWebhook) -> None:
    """The API server drops deleted configurations from its cache within moments; then edits pass."""
    assert hook.proc.returncode is not None  # still dead: nothing but the uninstall ended the lockout
    async with asyncio.timeout(10):
        while True:
            try:
                await scene.edit("settings")
                return
            except ApiException as exc:
                assert _failed_calling(exc), exc.body
                await asyncio.sleep(0.1)


async def test_rotating_the_serving_certificate_under_load_loses_no_review(
    scene: Scene, tmp_path: Path
) -> None:
    """Steady edits through the API server while the process's serving certificate is replaced on disk three
    times: every edit is judged (denied, enforce), none fails to reach the webhook. (The CA rollover, with
    the rotator injecting the caBundle, is tests/certs/test_certs_rotation.py.)"""
    denied, errors, stop = 0, list[str](), asyncio.Event()

    async def editor() -> None:
        nonlocal denied
        while not stop.is_set():
            try:
                await scene.edit("settings")
                errors.append("a Git-owned field was changed out of band")
            except ApiException as exc:
                if exc.status == 403 and "driftwarden" in str(exc.body):
                    denied += 1
                else:  # e.g. 500 failed calling webhook: x509 or a handshake cut short
                    errors.append(f"{exc.status} {exc.body!r}")
            await asyncio.sleep(0.05)

    async with installed_webhook(
        scene.plane, tmp_path, failure_policy="Fail", timeout_seconds=TIMEOUT
    ) as hook:
        await _guarding(scene)
        task = asyncio.create_task(editor(), name="editor")
        try:
            for rotation in range(1, 4):
                await asyncio.sleep(1.0)
                hook.rotate()

                async def reloaded(count: int = rotation) -> bool:
                    return hook.reloads() >= count and await hook.served() == hook.on_disk()

                await eventually(reloaded, seconds=20, every=0.2)
            await asyncio.sleep(1.0)  # and on the newest certificate for a moment
        finally:
            stop.set()
            await task
    assert errors == [], errors[:5]
    assert denied >= 30
