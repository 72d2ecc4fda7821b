"""The soak (issue 18): for ``pytest --soak SECONDS``, out-of-band edits, Git commits and restarts (the API
server, etcd, the leading auditor killed or frozen) in a seeded random order, then the four checks of
``tests.support.faults`` and no write by a replica after it lost the Lease.

Without ``--soak`` it is deselected (tests/conftest.py), so the summary counts it; it is never skipped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import signal
import time

import pytest
from kubernetes_asyncio import client

from auditor.leadership.lease import parse_lease
from driftwarden.kube.rest import request_json, resource_path
from tests.support.auditorprocs import Auditor
from tests.support.faults import Scene, fault_plane, files, made, wanted, writes_by

__all__ = ["fault_plane", "made"]  # fixtures, found by name

pytestmark = [pytest.mark.cluster, pytest.mark.soak]

COUNT = 50
LEASE = "6"


class Replicas:
    """The auditors of the soak, two at a time; each new one has a new identity (a new pod)."""

    def __init__(self, made: Scene) -> None:
        self.made = made
        self.running: list[Auditor] = []
        self.gone: list[tuple[Auditor, dt.datetime]] = []
        """Replicas killed or frozen, and when they were: none may write after the next takeover."""
        self.count = 0

    async def start(self) -> None:
        self.count += 1
        self.running.append(await self.made.auditor(f"r{self.count}", "--lease-duration", LEASE))

    async def holder(self) -> Auditor | None:
        path = resource_path(group="coordination.k8s.io", version="v1", plural="leases",
                             namespace=self.made.site.namespace, name="driftwarden-auditor")  # fmt: skip
        try:
            record = parse_lease(await request_json(self.made.site.admin, "GET", path))
        except Exception:
            return None
        return next((a for a in self.running if record is not None and a.identity == record.holder), None)

    async def replace_leader(self, how: signal.Signals) -> None:
        leader = await self.holder()
        if leader is None:
            return
        leader.proc.send_signal(how)
        self.running.remove(leader)
        self.gone.append((leader, dt.datetime.now(dt.UTC)))
        await self.start()

    def wake(self) -> None:
        """Resume the frozen ones: each wakes up believing it leads, and must find its fence shut."""
        for auditor, _ in self.gone:
            if auditor.proc.returncode is None:
                auditor.proc.send_signal(signal.SIGCONT)

    async def stop(self) -> None:
        self.wake()
        for auditor in self.running + [a for a, _ in self.gone]:
            if auditor.proc.returncode is None:
                await auditor.stop()


async def test_soak(made: Scene, request: pytest.FixtureRequest) -> None:
    seconds: float = request.config.getoption("--soak")
    chance = random.Random(18)
    replicas = Replicas(made)
    await replicas.start()
    await replicas.start()
    await made.application()
    await made.recovered(wanted(COUNT, "g0"), made.repo.head(), seconds=120)
    core = client.CoreV1Api(made.site.admin)
    gen, done = 0, {"edit": 0, "commit": 0, "kube-apiserver": 0, "etcd": 0, "SIGKILL": 0, "SIGSTOP": 0}
    ends = time.monotonic() + seconds
    try:
        while time.monotonic() < ends:
            action = chance.choices(list(done), weights=[6, 4, 1, 1, 1, 1])[0]
            done[action] += 1
            if action == "edit":
                name = f"cm-{chance.randrange(COUNT):03d}"
                try:
                    await core.patch_namespaced_config_map(name, made.destination, {"data": {"index": "x"}})
                except client.exceptions.ApiException:
                    done[action] -= 1  # e.g. in the middle of a restart: not an edit
            elif action == "commit":
                gen += 1
                made.repo.commit(files(COUNT, f"g{gen}"))
            elif action in ("kube-apiserver", "etcd"):
                await made.plane.restart(action, down=chance.uniform(0, 2))
            else:
                await replicas.replace_leader(signal.SIGKILL if action == "SIGKILL" else signal.SIGSTOP)
            await _pause(chance)
        replicas.wake()
        took = await made.recovered(wanted(COUNT, f"g{gen}"), made.repo.head(), seconds=180)
        await asyncio.sleep(3)  # time for a resumed replica to try a write it must not make
        # Requests already on the wire when the signal came land within a moment; none may come after.
        late = {
            a.identity: len(
                writes_by(made.plane, f"auditor-{a.identity}", after=at + dt.timedelta(seconds=1))
            )
            for a, at in replicas.gone
        }
    finally:
        await replicas.stop()
    print(f"soak of {seconds:.0f}s: {done}; recovered {took:.1f}s after the last fault; writes after "
          f"losing the lease: {late}")  # fmt: skip
    assert all(count == 0 for count in late.values()), late


async def _pause(chance: random.Random) -> None:
    await asyncio.sleep(chance.uniform(0.5, 3))
