"""Fencing: the auditor's adapters write only while the leader Lease is held by the local clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client

from auditor.kube.applications import ApplicationStore
from auditor.kube.events import EventRecorder
from auditor.leadership.fence import Fence, check_write
from auditor.objects import AppKey
from driftwarden.errors import KubeUnavailableError, LeaseLostError, TemporaryError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_fence_is_closed_until_granted_and_shuts_before_the_lease_ends() -> None:
    clock = Clock()
    fence = Fence(monotonic=clock)
    assert not fence.open
    fence.grant(read_at=100.0, lease_duration=15)
    assert fence.open and fence.remaining() == pytest.approx(12.0)  # 20 % of 15 s kept back
    clock.now = 111.9
    fence.check("PATCH x")
    clock.now = 112.0
    with pytest.raises(LeaseLostError, match="PATCH x"):
        fence.check("PATCH x")
    assert fence.refused == 1


def test_a_short_lease_keeps_at_least_a_second_back_and_a_renewal_extends_it() -> None:
    clock = Clock()
    fence = Fence(monotonic=clock)
    fence.grant(read_at=100.0, lease_duration=3)
    assert fence.remaining() == pytest.approx(2.0)
    fence.grant(read_at=101.5, lease_duration=3)
    assert fence.remaining() == pytest.approx(3.5)
    fence.grant(read_at=100.0, lease_duration=3)  # a slow, older renewal never shortens a later one
    assert fence.remaining() == pytest.approx(3.5)
    fence.close()
    assert not fence.open


def test_a_frozen_process_wakes_up_fenced() -> None:
    """SIGSTOP does not stop the monotonic clock: after the freeze the lease has run out."""
    clock = Clock()
    fence = Fence(monotonic=clock)
    fence.grant(read_at=clock.now, lease_duration=3)
    clock.now += 10  # frozen for ten seconds
    with pytest.raises(LeaseLostError) as caught:
        fence.check("DELETE y")
    assert isinstance(caught.value, TemporaryError)  # the pass ends and is retried once leading again


def test_only_writes_need_the_fence() -> None:
    fence = Fence()
    check_write(fence, "GET", "/api/v1/configmaps", None)
    check_write(fence, "PATCH", "/api/v1/namespaces/a/configmaps/b", {"dryRun": "All", "fieldManager": "x"})
    check_write(None, "DELETE", "/api/v1/namespaces/a/configmaps/b", None)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        with pytest.raises(LeaseLostError):
            check_write(fence, method, "/api/v1/namespaces/a/configmaps/b", {"fieldManager": "x"})


def test_bad_margins_are_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        Fence(margin=1.0)


@pytest.fixture
async def nowhere() -> AsyncIterator[client.ApiClient]:
    """A client for an address where nothing listens: a request that is sent fails as unreachable."""
    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:9"
    async with client.ApiClient(configuration) as api:
        yield api


async def test_the_adapters_refuse_writes_before_sending_them(nowhere: client.ApiClient) -> None:
    fence = Fence()
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}
    app = AppKey("n", "web")
    with pytest.raises(LeaseLostError):
        await ApplicationStore(nowhere, fence=fence).patch_application_status(app, {"sync": {}})
    with pytest.raises(LeaseLostError):
        await EventRecorder(nowhere, fence=fence).record_event(cm, reason="Synced", message="m")
    with pytest.raises(KubeUnavailableError):  # a read is sent, fence or not
        await ApplicationStore(nowhere, fence=fence, request_timeout=2).get_application(app)
    assert fence.refused == 2
