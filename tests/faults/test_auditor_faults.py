"""Faults of the auditor itself (issue 18): SIGKILL in the middle of applying 500 objects, and a leader
frozen with SIGSTOP past its lease while a second replica takes over, then resumed.

The frozen leader **must not write after losing the lease**: the API server's audit log (the plane runs
with one) is the count, by user (each replica has its own client certificate) and by time (after the
standby's acquireTime). What the fence refused shows in the resumed replica's log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time

import pytest

from auditor.kube.cluster import Cluster
from auditor.leadership.elector import LeaderElector
from auditor.leadership.fence import Fence
from auditor.leadership.lease import ElectionSettings, parse_lease
from driftwarden.errors import LeaseLostError
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import request_json, resource_path
from tests.support.auditorprocs import Auditor, auditors
from tests.support.faults import Scene, fault_plane, files, made, wanted, writes_by
from tests.support.waiting import eventually

__all__ = ["auditors", "fault_plane", "made"]  # fixtures, found by name

pytestmark = pytest.mark.cluster

COUNT = 500
LEASE = "8"
"""Seconds; long enough that a busy pass over 500 objects renews in time, short enough to wait out."""


async def _lease(made: Scene) -> dict[str, object]:
    path = resource_path(group="coordination.k8s.io", version="v1", plural="leases",
                         namespace=made.site.namespace, name="driftwarden-auditor")  # fmt: skip
    return await request_json(made.site.admin, "GET", path)


async def _under_way(made: Scene, gen: str, at_least: int) -> None:
    async def applied() -> bool:
        live = await made.live()
        return sum(1 for o in live.values() if (o.get("data") or {}).get("generation") == gen) >= at_least

    await eventually(applied, seconds=120, every=0.05)


async def test_sigkill_in_the_middle_of_500_applies_then_a_new_replica_finishes(
    made: Scene, auditors: list[Auditor]
) -> None:
    auditors.append(await made.auditor("a", "--lease-duration", LEASE))
    await made.application()
    await made.recovered(wanted(COUNT, "g0"), made.repo.head(), seconds=240)
    revision = made.repo.commit(files(COUNT, "g1"))
    await _under_way(made, "g1", at_least=100)
    auditors[0].proc.send_signal(signal.SIGKILL)
    await auditors[0].proc.wait()
    killed = time.monotonic()
    half = sum(1 for o in (await made.live()).values() if o["data"]["generation"] == "g1")
    auditors.append(await made.auditor("b", "--lease-duration", LEASE))
    await made.recovered(wanted(COUNT, "g1"), revision, seconds=240)
    print(f"SIGKILL with {half}/{COUNT} applied: converged {time.monotonic() - killed:.1f}s after the kill "
          f"({LEASE}s lease)")  # fmt: skip


async def test_a_leader_frozen_past_its_lease_writes_nothing_after_the_takeover(
    made: Scene, auditors: list[Auditor]
) -> None:
    a = await made.auditor("a", "--lease-duration", LEASE)
    auditors.append(a)
    await made.application()
    await made.recovered(wanted(COUNT, "g0"), made.repo.head(), seconds=240)
    b = await made.auditor("b", "--lease-duration", LEASE)
    auditors.append(b)
    await eventually(lambda: _has(b, "standing by"), seconds=30)

    revision = made.repo.commit(files(COUNT, "g1"))
    await _under_way(made, "g1", at_least=50)
    a.proc.send_signal(signal.SIGSTOP)  # frozen in the middle of applying
    frozen = time.monotonic()

    async def b_leads() -> bool:
        record = parse_lease(await _lease(made))
        return record is not None and record.holder == "b"

    await eventually(b_leads, seconds=60, every=0.1)
    record = parse_lease(await _lease(made))
    assert record is not None and record.acquire_time is not None
    takeover: dt.datetime = record.acquire_time
    took_over = time.monotonic() - frozen
    await made.recovered(wanted(COUNT, "g1"), revision, seconds=240)

    a.proc.send_signal(signal.SIGCONT)  # wakes up believing it leads, with its pass half done
    await eventually(lambda: _has(a, "stepping down"), seconds=30)
    later = made.repo.commit(files(COUNT, "g2"))
    await made.recovered(wanted(COUNT, "g2"), later, seconds=240)

    after = writes_by(made.plane, "auditor-a", after=takeover)
    refused = a.text().count("no longer holds the leader Lease")
    print(f"SIGSTOP past the lease: standby took over {took_over:.1f}s after the freeze; writes by the "
          f"frozen leader after the takeover: {len(after)}; writes its fence refused: {refused}")  # fmt: skip
    assert after == [], [f"{e['verb']} {e['requestURI']}" for e in after[:5]]
    assert writes_by(made.plane, "auditor-b", after=takeover)  # the count sees writes: b's are there


async def _has(auditor: Auditor, text: str) -> bool:
    return text in auditor.text()


@pytest.mark.parametrize("fenced", [True, False], ids=["fenced", "unfenced-control"])
async def test_a_frozen_event_loop_writes_nothing_after_the_takeover_when_fenced(
    made: Scene, auditors: list[Auditor], fenced: bool
) -> None:
    """The same freeze, made exact: the leader's event loop is blocked (as SIGSTOP blocks it) between two
    applies of a batch, while a real second replica takes the Lease. Fenced, the next apply is refused
    before it is sent; the unfenced control shows that the audit-log count does catch such a write."""
    settings = ElectionSettings("frozen", made.site.namespace, lease_duration=3, renew_deadline=2.0,
                                retry_period=0.4)  # fmt: skip
    fence = Fence() if fenced else None
    api = api_client_for(made.user("frozen"))
    elector = LeaderElector(api, settings, fence=fence)
    cluster = Cluster(api, fence=fence)
    refused: list[int] = []
    standby = asyncio.Event()
    sent: list[asyncio.Task[None]] = []

    async def attempt(i: int) -> None:
        try:
            await cluster.apply(_configmap(made.destination, i))
        except LeaseLostError:
            refused.append(i)

    async def work() -> None:
        for i in range(40):
            if i == 20:
                await standby.wait()
                time.sleep(6)  # noqa: ASYNC251 - the point: the whole loop stops, past the 3 s lease
            # Shielded: stepping down cancels the work, and must not race the write the control run
            # sends; each write is let finish (or be refused) whatever happens to the work.
            sent.append(asyncio.create_task(attempt(i)))
            await asyncio.shield(sent[-1])
        await asyncio.Event().wait()

    try:
        leading = asyncio.create_task(elector.run(work))
        await eventually(lambda: _holder_is(made, "frozen"), seconds=20)
        b = await made.auditor("b", "--lease-duration", "3")
        auditors.append(b)
        await eventually(lambda: _has(b, "standing by"), seconds=30)
        standby.set()
        assert await asyncio.wait_for(leading, timeout=30) == "lost"
        await asyncio.gather(*sent, return_exceptions=True)
    finally:
        await api.close()
    record = parse_lease(await _lease(made))
    assert record is not None and record.holder == "b" and record.acquire_time is not None
    late = writes_by(made.plane, "auditor-frozen", after=record.acquire_time)
    print(f"frozen event loop ({'fenced' if fenced else 'unfenced'}): writes after the takeover {len(late)}, "
          f"refused by the fence {len(refused)}")  # fmt: skip
    if fenced:
        assert late == [] and refused and refused[0] == 20
    else:
        assert late, "the control run should have written after the takeover"


def _configmap(namespace: str, i: int) -> dict[str, object]:
    meta = {"name": f"batch-{i:02d}", "namespace": namespace}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"i": str(i)}}


async def _holder_is(made: Scene, identity: str) -> bool:
    return await made.site.holder() == identity
