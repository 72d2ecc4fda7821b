"""Faults of Git (issue 18): the remote unreachable and slow, the branch force-pushed, history rewritten,
a tag moved, malformed YAML, the path emptied, the path deleted, and a commit that would prune more than the
Application's ``pruneRatio``.

The repository is served by a real ``git daemon`` behind a ``TcpProxy`` (refusing connections is the
outage, latency the slow remote), to one ``driftwarden auditor run``. While a fault lasts nothing of the
Application may be lost or wrongly pruned and its conditions must say what is wrong; once it is fixed
(in Git, or the network) the four checks of ``tests.support.faults`` must pass again, with no restart.
The tests run in order on one Application of ten ConfigMaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devtools.controlplane import ControlPlane
from devtools.controlplane.plane import free_port
from tests.support.auditorprocs import Auditor
from tests.support.faults import AUTOMATED, Scene, files, scene, wanted
from tests.support.gitrepo import GitRepo
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

COUNT = 10
POLICY = {**AUTOMATED, "automated": {**AUTOMATED["automated"], "pruneRatio": 0.5}}


class Module:
    def __init__(self, made: Scene, proxy: TcpProxy, auditor: Auditor) -> None:
        self.scene, self.proxy, self.auditor = made, proxy, auditor
        self.gen = "g0"

    @property
    def repo(self) -> GitRepo:
        return self.scene.repo

    def commit(self, gen: str) -> str:
        self.gen = gen
        return self.repo.commit(files(COUNT, gen), message=gen)

    async def converged(self, what: str, *, seconds: float = 90) -> None:
        took = await self.scene.recovered(wanted(COUNT, self.gen), self.repo.head(), seconds=seconds)
        print(f"{what}: recovered in {took:.1f}s")

    async def holds(self, condition: str, text: str = "") -> str:
        """While a fault lasts: ``condition`` says so, and the objects of the last good revision and the
        bystanders are all there, untouched (nothing lost, nothing wrongly pruned)."""

        async def said() -> bool:
            message = await self.scene.condition(condition)
            return bool(message) and text in message

        await eventually(said, seconds=60, every=0.2)
        found = await self.scene.problems(wanted(COUNT, self.gen), self.repo.head())
        assert [p for p in found if p.startswith(("(a)", "(b)"))] == []

        async def gauge_agrees() -> bool:  # (c) the metric says what the status says
            synced = (await self.scene.status()).get("sync", {}).get("status") == "Synced"
            return await self.scene.synced_gauge() == (1 if synced else 0)

        await eventually(gauge_agrees, seconds=30, every=0.2)
        return await self.scene.condition(condition)


@contextlib.asynccontextmanager
async def git_daemon(base: Path) -> AsyncIterator[int]:
    """``git daemon`` serving every repository under ``base``; yields its port."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        "git", "daemon", "--export-all", "--reuseaddr", f"--base-path={base}", "--listen=127.0.0.1",
        f"--port={port}", str(base),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield port
    finally:
        proc.terminate()
        await proc.wait()


@pytest.fixture(scope="module")
async def module(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Module]:
    workdir = tmp_path_factory.mktemp("git-faults")
    made = await scene(control_plane, workdir, files(COUNT, "g0"))
    async with git_daemon(made.repo.path.parent) as port, TcpProxy(port) as proxy:
        made.repo_url = f"git://{proxy.url}/{made.repo.path.name}"
        metrics = free_port()
        made.metrics_url = f"http://127.0.0.1:{metrics}/metrics"
        auditor = await made.auditor("a", "--lease-duration", "15", "--metrics-port", str(metrics))
        await made.application(policy=POLICY)
        try:
            found = Module(made, proxy, auditor)
            await found.converged("first sync")
            yield found
        finally:
            await auditor.stop()
            await made.site.admin.close()


async def test_the_remote_unreachable_keeps_everything_and_says_so(module: Module) -> None:
    """The last fetched revision stays in use (Synced at it), with a GitUnreachable condition."""
    module.proxy.refusing = True
    module.proxy.drop()
    try:
        module.repo.commit(files(COUNT, "g1"), message="not fetchable yet")
        assert "cannot fetch" in await module.holds("GitUnreachable")
    finally:
        module.proxy.refusing = False
    module.gen = "g1"
    await module.converged("remote unreachable, then back")


async def test_a_slow_remote(module: Module) -> None:
    module.proxy.latency = 0.3
    try:
        started = time.monotonic()
        module.commit("g2")
        await module.converged("slow remote (300 ms per chunk)", seconds=120)
    finally:
        module.proxy.latency = 0.0
    assert time.monotonic() - started > 0.3


async def test_the_branch_force_pushed_with_history_rewritten(module: Module) -> None:
    """main is reset to its first commit and grows a different history; then its head is amended."""
    first = module.repo.git("rev-list", "--max-parents=0", "HEAD")
    module.repo.git("reset", "-q", "--hard", first)
    module.commit("g3")
    await module.converged("branch force-pushed")
    module.gen = "g4"
    module.repo.commit(files(COUNT, "g4"))
    module.repo.git("commit", "-q", "--amend", "-m", "rewritten")
    await module.converged("head amended (history rewritten)")


async def test_a_moved_tag_is_followed(module: Module) -> None:
    module.repo.git("tag", "-f", "release")
    await module.scene.patch_spec({"source": {"targetRevision": "release"}})
    await module.converged("tag targeted")
    module.commit("g5")
    module.repo.git("tag", "-f", "release")
    await module.converged("tag moved")
    await module.scene.patch_spec({"source": {"targetRevision": "main"}})


async def test_malformed_yaml_changes_nothing_until_fixed(module: Module) -> None:
    module.repo.commit({"app/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n"})
    await module.holds("SyncFailed")
    module.repo.git("revert", "--no-edit", "HEAD")
    await module.converged("malformed YAML, then fixed")


async def test_an_emptied_path_prunes_nothing(module: Module) -> None:
    gone = [f"app/cm-{i:03d}.yaml" for i in range(COUNT)]
    module.repo.commit({"app/README.md": "moved elsewhere\n"}, remove=gone)
    assert "render is empty" in await module.holds("PruneRefused")
    module.repo.git("revert", "--no-edit", "HEAD")
    await module.converged("path emptied, then restored")


async def test_a_deleted_path_prunes_nothing(module: Module) -> None:
    module.repo.commit(remove=["app"])
    await module.holds("SyncFailed")
    module.repo.git("revert", "--no-edit", "HEAD")
    await module.converged("path deleted, then restored")


async def test_a_commit_pruning_more_than_the_prune_ratio_is_refused(module: Module) -> None:
    module.repo.commit(remove=[f"app/cm-{i:03d}.yaml" for i in range(2, COUNT)])
    message = await module.holds("PruneRefused", "would prune 8 of the Application's 10 resources")
    assert "pruneRatio (0.5)" in message
    module.repo.git("revert", "--no-edit", "HEAD")
    await module.converged("mass prune refused, then reverted")
