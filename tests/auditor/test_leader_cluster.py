"""Leader election against the real API server: two electors, one Lease, as the auditor's service account.

Durations are short (a 2-3 s lease) so that takeovers are measured, not waited out. Each test uses its
own Lease name, so tests never see each other's leaders.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes_asyncio import client

from auditor.leadership.elector import Ending, LeaderElector
from auditor.leadership.lease import ElectionSettings, parse_lease
from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import request_json, resource_path
from tests.support.auditor import AUDITOR_NS, install_crd_and_rbac, wait_until_allowed
from tests.support.clients import Clients
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster


@dataclass
class Candidate:
    """One elector, its task, and when its leading work started and stopped."""

    elector: LeaderElector
    task: asyncio.Task[Ending] | None = None
    started: list[float] = field(default_factory=list)
    stopped: list[float] = field(default_factory=list)
    cancelled_work: int = 0

    @property
    def leading(self) -> bool:
        return len(self.started) > len(self.stopped)

    def lead(self) -> Coroutine[Any, Any, None]:
        async def work() -> None:
            self.started.append(time.monotonic())
            try:
                await asyncio.Event().wait()  # the auditor's loop runs until cancelled
            except asyncio.CancelledError:
                self.cancelled_work += 1
                raise

        return work()

    def start(self) -> None:
        self.task = asyncio.create_task(
            self.elector.run(self.lead, lambda: self.stopped.append(time.monotonic()))
        )

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest.fixture
async def auditor_api(control_plane: ControlPlane, clients: Clients) -> client.ApiClient:
    assert control_plane.admin is not None
    admin = api_client_for(control_plane.admin)
    await install_crd_and_rbac(admin)
    await admin.close()
    api = await clients.service_account(AUDITOR_NS, contract.AUDITOR_SERVICE_ACCOUNT)
    await wait_until_allowed(api, verb="update", group="coordination.k8s.io", resource="leases")
    return api


@pytest.fixture
async def candidates(auditor_api: client.ApiClient) -> AsyncIterator[Callable[..., Candidate]]:
    made: list[Candidate] = []
    lease = f"test-lease-{uuid.uuid4().hex[:6]}"

    def make(identity: str, *, lease_duration: int = 2, release_on_cancel: bool = True) -> Candidate:
        settings = ElectionSettings(
            identity, AUDITOR_NS, name=lease, lease_duration=lease_duration,
            renew_deadline=lease_duration * 2 / 3, retry_period=0.2,
        )  # fmt: skip
        candidate = Candidate(LeaderElector(auditor_api, settings, release_on_cancel=release_on_cancel))
        made.append(candidate)
        return candidate

    yield make
    for candidate in made:
        await candidate.stop()


async def read_lease(api: client.ApiClient, name: str) -> dict[str, Any]:
    path = resource_path(group="coordination.k8s.io", version="v1", plural="leases", namespace=AUDITOR_NS,
                         name=name)  # fmt: skip
    return await request_json(api, "GET", path)


async def leader_of(pair: list[Candidate]) -> Candidate:
    await eventually(lambda: _now(any(c.leading for c in pair)), seconds=10)
    return next(c for c in pair if c.leading)


async def may_update_leases(api: client.ApiClient, namespace: str) -> bool:
    attributes = {
        "verb": "update",
        "group": "coordination.k8s.io",
        "resource": "leases",
        "namespace": namespace,
    }
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": attributes}}  # fmt: skip
    answer = await request_json(
        api, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review
    )
    return bool(answer["status"].get("allowed"))


async def _now(value: bool) -> bool:
    return value


async def test_only_one_of_two_electors_leads_and_it_keeps_renewing(
    candidates: Callable[..., Candidate], auditor_api: client.ApiClient
) -> None:
    pair = [candidates("replica-a"), candidates("replica-b")]
    for candidate in pair:
        candidate.start()
    leader = await leader_of(pair)
    name = leader.elector.settings.name
    first = await read_lease(auditor_api, name)
    assert first["spec"]["holderIdentity"] == leader.elector.identity
    assert first["spec"]["leaseDurationSeconds"] == 2
    assert first["spec"]["acquireTime"] and first["spec"]["renewTime"]

    # For longer than a lease duration, exactly one leads, always the same one, and the Lease says so.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert [c.leading for c in pair].count(True) == 1 and leader.leading
        await asyncio.sleep(0.05)
    later = parse_lease(await read_lease(auditor_api, name))
    assert later is not None and later.holder == leader.elector.identity
    first_record = parse_lease(first)
    assert first_record is not None and first_record.renew_time is not None and later.renew_time is not None
    assert later.renew_time > first_record.renew_time  # renewed every retry period
    assert later.acquire_time == first_record.acquire_time
    assert later.transitions == first_record.transitions
    standby = next(c for c in pair if c is not leader)
    assert standby.started == [] and standby.elector.observed_holder == leader.elector.identity


async def test_when_the_leader_dies_without_releasing_the_other_takes_over_within_the_lease_duration(
    candidates: Callable[..., Candidate], auditor_api: client.ApiClient
) -> None:
    pair = [
        candidates("replica-a", release_on_cancel=False),
        candidates("replica-b", release_on_cancel=False),
    ]
    for candidate in pair:
        candidate.start()
    leader = await leader_of(pair)
    standby = next(c for c in pair if c is not leader)
    name = leader.elector.settings.name
    before = parse_lease(await read_lease(auditor_api, name))
    assert before is not None

    died = time.monotonic()
    await leader.stop()  # no release: the Lease still names the dead leader
    assert leader.cancelled_work == 1 and not leader.leading
    assert (await read_lease(auditor_api, name))["spec"]["holderIdentity"] == leader.elector.identity

    await eventually(lambda: _now(standby.leading), seconds=10)
    took = standby.started[0] - died
    assert took <= 2 + 1.5, f"takeover took {took:.2f}s with a 2s lease (0.2s retry period)"
    after = parse_lease(await read_lease(auditor_api, name))
    assert after is not None and after.holder == standby.elector.identity
    assert after.transitions == before.transitions + 1


async def test_a_graceful_stop_releases_the_lease_so_the_takeover_is_immediate(
    candidates: Callable[..., Candidate], auditor_api: client.ApiClient
) -> None:
    pair = [candidates("replica-a", lease_duration=10), candidates("replica-b", lease_duration=10)]
    for candidate in pair:
        candidate.start()
    leader = await leader_of(pair)
    standby = next(c for c in pair if c is not leader)

    stopped = time.monotonic()
    await leader.stop()
    assert leader.cancelled_work == 1 and len(leader.stopped) == 1  # on_stopped_leading was called
    spec = (await read_lease(auditor_api, leader.elector.settings.name))["spec"]
    assert spec.get("holderIdentity") in ("", None, standby.elector.identity)

    await eventually(lambda: _now(standby.leading), seconds=5)
    took = standby.started[0] - stopped
    assert took < 1.5, f"takeover after a release took {took:.2f}s (the lease would last 10s)"


async def test_when_the_leading_work_fails_the_lease_is_released_and_the_error_raised(
    candidates: Callable[..., Candidate], auditor_api: client.ApiClient
) -> None:
    candidate = candidates("replica-a", lease_duration=10)
    stopped: list[bool] = []

    async def crash() -> None:
        raise RuntimeError("the auditor loop broke")

    with pytest.raises(RuntimeError, match="loop broke"):
        async with asyncio.timeout(10):
            await candidate.elector.run(crash, lambda: stopped.append(True))
    assert stopped == [True] and not candidate.elector.leading
    spec = (await read_lease(auditor_api, candidate.elector.settings.name))["spec"]
    assert not spec.get("holderIdentity")  # released: a standby need not wait 10 s

    async def done() -> None:
        return None

    async with asyncio.timeout(10):
        assert await candidate.elector.run(done) == "finished"


async def test_a_leader_that_cannot_renew_steps_down_within_the_renew_deadline(
    control_plane: ControlPlane, clients: Clients
) -> None:
    """Revoke the leader's right to update Leases: it must stop leading before its lease could expire."""
    ns, sa = f"elect-{uuid.uuid4().hex[:6]}", "elector"
    api = await clients.service_account(ns, sa)
    rbac = client.RbacAuthorizationV1Api(clients.admin)
    await rbac.create_namespaced_role(ns, client.V1Role(
        metadata=client.V1ObjectMeta(name="leases"),
        rules=[client.V1PolicyRule(api_groups=["coordination.k8s.io"], resources=["leases"],
                                   verbs=["get", "create", "update"])],
    ))  # fmt: skip
    binding = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="leases"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="leases"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name=sa, namespace=ns)],
    )
    await rbac.create_namespaced_role_binding(ns, binding)
    await eventually(lambda: may_update_leases(api, ns), seconds=10)
    settings = ElectionSettings("lonely", ns, lease_duration=6, renew_deadline=3, retry_period=0.2)
    candidate = Candidate(LeaderElector(api, settings))
    candidate.start()
    try:
        await eventually(lambda: _now(candidate.leading), seconds=10)
        await rbac.delete_namespaced_role_binding("leases", ns)
        revoked = time.monotonic()
        assert candidate.task is not None
        async with asyncio.timeout(10):
            ending = await candidate.task
        took = candidate.stopped[0] - revoked
    finally:
        await candidate.stop()
    assert ending == "lost" and candidate.cancelled_work == 1
    assert took < 3 + 1.0, f"stepped down {took:.2f}s after losing the right to renew (deadline 3s)"
    assert took < settings.lease_duration  # before anyone else could have taken the lease over
