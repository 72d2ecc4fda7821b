"""A real ``driftwarden auditor run --webhook-port`` process: a signed push syncs a new commit at once.

The Application polls Git only every 600 s, so a sync within seconds of the push can only come from the
webhook; a push with a wrong signature must change nothing. The auditor runs as in test_leader_cli.py
(its own namespace, the admin kubeconfig), without leader election, with the secret in a file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from cli.auditorrun import options_from
from cli.main import build_parser
from devtools.controlplane.plane import free_port
from driftwarden.errors import ConfigError
from tests.support.auditorprocs import CM, Auditor, Site
from tests.support.gitrepo import GitRepo
from tests.support.pushevents import GITHUB, SECRET, hex_hmac
from tests.support.waiting import eventually


async def synced_by_a_pass(site: Site, name: str, revision: str) -> bool:
    """A pass synced ``revision``: the status names it and the sync operation applied it and succeeded.

    (The live object is checked only before the push: after it, the watch-driven heal may briefly undo
    the sync with the previous revision's manifests, a race of the heal's, not of the webhook's.)
    """
    status = (await site.get_application(name)).get("status") or {}
    operation = status.get("operationState") or {}
    return (
        (status.get("sync") or {}).get("revision") == revision
        and operation.get("phase") == "Succeeded"
        and (operation.get("syncResult") or {}).get("revision") == revision
        and [h.get("revision") for h in status.get("history") or []][-1:] == [revision]
    )


async def stays(check: Callable[[], Awaitable[bool]], *, seconds: float) -> None:
    """Fail if ``check()`` stops holding at any time during ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert await check()
        await asyncio.sleep(0.2)


@pytest.mark.cluster
async def test_a_signed_push_syncs_a_new_commit_at_once_and_a_bad_signature_does_not(
    site: Site, auditors: list[Auditor], git_repo: Callable[..., GitRepo], tmp_path: Path
) -> None:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_bytes(SECRET + b"\n")  # as `kubectl create secret --from-file` of an echoed value
    port = free_port()
    auditors.append(await site.auditor(
        "hooked", "--no-leader-elect", "--poll-interval", "600", "--webhook-host", "127.0.0.1",
        "--webhook-port", str(port), "--webhook-secret-file", str(secret_file),
    ))  # fmt: skip
    repo = git_repo({"app/cm.yaml": CM.format(color="blue")})
    first = repo.head()
    name, destination = "hooked", f"push-dst-{uuid.uuid4().hex[:6]}"
    await site.application(name, repo, destination)
    await eventually(lambda: site.synced(name, destination, color="blue", revision=first), seconds=30)
    # A new worker runs its first passes back to back; let them finish before Git moves.
    await stays(lambda: site.synced(name, destination, color="blue", revision=first), seconds=2)

    second = repo.commit({"app/cm.yaml": CM.format(color="red")})
    repository = {**GITHUB["repository"], "clone_url": repo.url, "html_url": "https://github.com/acme/infra"}
    body = json.dumps({**GITHUB, "after": second, "repository": repository}).encode()
    url = f"http://127.0.0.1:{port}/api/webhook"
    async with aiohttp.ClientSession() as session:
        bad = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hex_hmac(b"guessed", body)}
        async with session.post(url, data=body, headers=bad) as response:
            assert response.status == 401
        await stays(lambda: site.synced(name, destination, color="blue", revision=first), seconds=3)

        good = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hex_hmac(SECRET, body),
                "Content-Type": "application/json"}  # fmt: skip
        pushed = time.monotonic()
        async with session.post(url, data=body, headers=good) as response:
            assert response.status == 202
            assert await response.json() == {"refreshed": [f"{site.namespace}/{name}"]}
    await eventually(lambda: synced_by_a_pass(site, name, second), seconds=15)
    took = time.monotonic() - pushed
    assert took < 15, f"the push took {took:.1f}s to sync (the poll interval is 600s)"

    auditor = auditors[0]
    assert await auditor.stop() == 0
    log = auditor.text()
    assert "github push to github.com/acme/infra main" in log and f"refreshing {site.namespace}/{name}" in log
    assert SECRET.decode() not in log


def _run_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["auditor", "run", *argv])


def test_the_secret_comes_from_the_file_else_the_environment(tmp_path: Path) -> None:
    env = {"DRIFTWARDEN_WEBHOOK_SECRET": "from-env"}
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(b"from-file\r\n")
    push = options_from(
        _run_args("--webhook-port", "9000", "--webhook-secret-file", str(secret_file)), env
    ).push
    assert push is not None and push.secret == b"from-file" and push.port == 9000 and push.host == "0.0.0.0"
    push = options_from(_run_args("--webhook-port", "9000"), env).push
    assert push is not None and push.secret == b"from-env"
    assert options_from(_run_args(), env).push is None  # no port: no webhook server
    with pytest.raises(ConfigError, match="needs a secret"):
        options_from(_run_args("--webhook-port", "9000"), {})
    with pytest.raises(ConfigError, match="cannot read the webhook secret"):
        options_from(
            _run_args("--webhook-port", "9000", "--webhook-secret-file", str(tmp_path / "nope")), env
        )
