"""``driftwarden demo`` runs non-interactively, every step of the story holds, and nothing outlives it.

It starts its own dev stack (a second living cluster, the webhook, the auditor and Jaeger as real processes),
so this is the one test that shows the whole product working the way a new user first sees it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from devtools.dev.gitops import SECRET_SENTINEL
from driftwarden.settings import environment
from tests.support.processes import processes_mentioning

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).parents[2]


async def test_the_demo_walks_the_whole_story_and_every_claim_holds(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    env = {k: v for k, v in environment().items() if k != "KUBECONFIG"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "demo", "--work-dir", str(work),
        cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=400)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    assert "all 10 steps held." in text
    for claim in (
        "Synced and Healthy",
        "denied the request",
        "healed",
        "Service web recreated",
        "3 replicas kept",
        "held for sre",
        "healed back to postgres:17",
        "COLOR=green",
        "COLOR=blue again",
        "PruneRefused",
        "links to the edit's review",
    ):
        assert claim in text, claim
    assert SECRET_SENTINEL not in text
    assert processes_mentioning(str(work)) == []  # the cluster, webhook, auditor and Jaeger all stopped
