"""Faults of the control plane while the auditor works (issue 18): kube-apiserver restarted during a sync of
500 objects and under the heal's watches, etcd restarted, etcd compacted so that watches resume into 410 Gone,
and a slow API server (a proxy that adds latency and drops connections).

One control plane and one Application of 500 ConfigMaps for the module, synced by one ``driftwarden
auditor run`` that reaches the API server through a ``TcpProxy`` (latency 0 until the slow test). The tests
run in order, each starting from the converged state the one before left, and each ends with the four
checks of ``tests.support.faults`` and prints the time to recover (docs/reliability.md has the table).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from devtools.controlplane import ControlPlane
from tests.support.auditorprocs import Auditor
from tests.support.faults import Scene, fault_plane, files, proxied, scene, wanted
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import eventually

__all__ = ["fault_plane"]  # a fixture, found by name

pytestmark = pytest.mark.cluster

COUNT = 500


class Module:
    """What the module's tests share: the scene, the proxy and the one auditor, and the generation."""

    def __init__(self, made: Scene, proxy: TcpProxy, auditor: Auditor) -> None:
        self.scene, self.proxy, self.auditor = made, proxy, auditor
        self.generation = 0

    def commit(self) -> tuple[str, str]:
        """A commit that changes every one of the 500 objects: (generation, revision)."""
        self.generation += 1
        gen = f"g{self.generation}"
        return gen, self.scene.repo.commit(files(COUNT, gen), message=f"generation {gen}")

    async def applied(self, gen: str, at_least: int) -> None:
        """Wait until the sync of ``gen`` is under way: ``at_least`` objects already carry it."""

        async def under_way() -> bool:
            live = await self.scene.live()
            return sum(1 for o in live.values() if (o.get("data") or {}).get("generation") == gen) >= at_least

        await eventually(under_way, seconds=60, every=0.05)


@pytest.fixture(scope="module")
async def module(
    fault_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Module]:
    workdir: Path = tmp_path_factory.mktemp("cp-faults")
    made = await scene(fault_plane, workdir, files(COUNT, "g0"))
    async with TcpProxy(fault_plane.apiserver_port) as proxy:
        config = proxied(fault_plane, made.user("a"), proxy.port, workdir)
        # A 15 s lease, as in production: a pass over 500 objects keeps the loop busy for seconds.
        auditor = await made.auditor("a", "--lease-duration", "15", kubeconfig=config)
        await made.application()
        try:
            took = await made.recovered(wanted(COUNT, "g0"), made.repo.head(), seconds=240)
            print(f"first sync of {COUNT} objects: {took:.1f}s")
            yield Module(made, proxy, auditor)
        finally:
            await auditor.stop()
            await made.site.admin.close()


async def _heals(module: Module) -> float:
    """An out-of-band edit of one object is healed (the watches work again); seconds it took."""
    started = time.monotonic()
    core = client.CoreV1Api(module.scene.site.admin)
    await core.patch_namespaced_config_map("cm-007", module.scene.destination, {"data": {"index": "edited"}})

    async def healed() -> bool:
        cm = await core.read_namespaced_config_map("cm-007", module.scene.destination)
        return bool(cm.data and cm.data.get("index") == "7")

    await eventually(healed, seconds=60, every=0.1)
    return time.monotonic() - started


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
async def test_a_component_restarted_during_a_sync_of_500_objects(module: Module, component: str) -> None:
    gen, revision = module.commit()
    await module.applied(gen, at_least=50)
    await module.scene.plane.restart(component, down=2.0)
    took = await module.scene.recovered(wanted(COUNT, gen), revision, seconds=180)
    heal = await _heals(module)
    print(f"{component} restart mid-sync: converged {took:.1f}s after it was back; heal {heal:.2f}s")
    assert module.auditor.proc.returncode is None


async def test_etcd_compacted_so_the_watches_resume_into_410_gone(module: Module) -> None:
    """etcd compacted, then every connection cut: the watches resume from resourceVersions etcd no longer
    has (410 Gone), relist, and keep healing; the next commit is synced too."""
    before = module.auditor.text().count("(410 Gone); relisting")
    await module.scene.plane.compact_etcd()
    module.proxy.drop()
    await eventually(lambda: _relisted(module, before), seconds=30)
    heal = await _heals(module)
    gen, revision = f"g{module.generation}", module.scene.repo.head()
    await module.scene.recovered(wanted(COUNT, gen), revision, seconds=60)
    print(f"etcd compacted, connections cut: relisted after 410 Gone, heal {heal:.2f}s")
    assert module.auditor.proc.returncode is None


async def _relisted(module: Module, before: int) -> bool:
    return module.auditor.text().count("(410 Gone); relisting") > before


async def test_a_slow_api_server_that_drops_connections(module: Module) -> None:
    """50 ms on every chunk each way, and every open connection cut every 2 s, for 20 s of a sync."""
    module.proxy.latency = 0.05
    gen, revision = module.commit()
    stop = asyncio.Event()

    async def cut() -> None:
        while not stop.is_set():
            await asyncio.sleep(2)
            module.proxy.drop()

    cutter = asyncio.create_task(cut())
    try:
        await asyncio.sleep(20)
    finally:
        stop.set()
        await cutter
        dropped = module.proxy.dropped
        module.proxy.latency = 0.0
    took = await module.scene.recovered(wanted(COUNT, gen), revision, seconds=240)
    heal = await _heals(module)
    print(f"slow API server, {dropped} connections cut: converged {took:.1f}s after; heal {heal:.2f}s")
    assert dropped > 0
    assert module.auditor.proc.returncode is None
