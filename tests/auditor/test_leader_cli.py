"""Two real ``driftwarden auditor run`` processes with leader election, against the real API server.

Each runs as ``python -m cli.main`` with the admin kubeconfig, a 3 s lease, its own Git cache and
its own log file. Their Applications live in a namespace of their own (``--namespace``), and so does the
Lease, so Applications of other tests are never touched. The leader is killed with SIGKILL (no release);
the standby must take over and sync a commit made after the kill.
"""

from __future__ import annotations

import signal
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio import client

from auditor.leadership.lease import ElectionSettings
from auditor.process import ServeOptions
from cli.auditorrun import default_identity, options_from
from cli.main import build_parser
from driftwarden.errors import ConfigError
from tests.support.auditorprocs import CM, Auditor, Site
from tests.support.gitrepo import GitRepo
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster


def test_leader_flags_become_election_settings() -> None:
    def options(*argv: str) -> ServeOptions:
        return options_from(build_parser().parse_args(["auditor", "run", *argv]), {})

    election = options("--install-namespace", "infra", "--lease-duration", "3").election
    assert election is not None
    assert (election.namespace, election.name, election.lease_duration, election.renew_deadline) == (
        "infra", "driftwarden-auditor", 3, 2.0,
    )  # fmt: skip
    assert election.retry_period == pytest.approx(0.4)
    assert options("--leader-id", "pod-1", "--leader-election-namespace", "le").election == ElectionSettings(
        "pod-1", "le", lease_duration=15, renew_deadline=10.0, retry_period=2.0
    )
    assert options("--no-leader-elect").election is None
    with pytest.raises(ConfigError, match="lease duration"):
        options("--lease-duration", "5", "--renew-deadline", "6")


def test_the_default_identity_is_the_host_name_with_a_random_suffix() -> None:
    one, two = default_identity(), default_identity()
    assert one.startswith(socket.gethostname() + "_") and two.startswith(socket.gethostname() + "_")
    assert one != two


async def test_only_the_leader_reconciles_and_the_standby_takes_over_when_it_is_killed(
    site: Site, auditors: list[Auditor], git_repo: Callable[..., GitRepo]
) -> None:
    auditors += [await site.auditor("auditor-a"), await site.auditor("auditor-b")]
    await eventually(lambda: _is_one_of(site.holder(), {"auditor-a", "auditor-b"}), seconds=30)
    holder = await site.holder()
    leader, standby = auditors if holder == "auditor-a" else auditors[::-1]

    repo = git_repo({"app/cm.yaml": CM.format(color="blue")})
    name, destination = "web", f"ha-dst-{uuid.uuid4().hex[:6]}"
    await site.application(name, repo, destination)
    await eventually(lambda: site.synced(name, destination, color="blue", revision=repo.head()), seconds=30)

    # Only the leader runs the auditor loop; the standby stands by, naming the leader.
    await eventually(lambda: _has(standby, "lease held by " + leader.identity), seconds=10)
    assert "started leading as " + leader.identity in leader.text()
    assert "started leading" not in standby.text()
    assert await site.holder() == leader.identity

    leader.proc.kill()  # SIGKILL: no release, the Lease still names the dead leader
    killed = time.monotonic()
    assert await leader.stop() == -signal.SIGKILL
    assert await site.holder() == leader.identity
    revision = repo.commit({"app/cm.yaml": CM.format(color="red")})

    await eventually(lambda: _is_one_of(site.holder(), {standby.identity}), seconds=15)
    took = time.monotonic() - killed
    assert took < 3 + 3, f"the standby took over {took:.1f}s after the leader died (3s lease)"
    await eventually(lambda: site.synced(name, destination, color="red", revision=revision), seconds=30)
    assert "started leading as " + standby.identity in standby.text()
    # The new leader also heals the next out-of-band edit.
    core = client.CoreV1Api(site.admin)
    await core.patch_namespaced_config_map("settings", destination, {"data": {"color": "green"}})
    await eventually(lambda: site.synced(name, destination, color="red", revision=revision), seconds=15)

    # A graceful stop releases the Lease.
    assert await standby.stop() == 0
    assert await site.holder() == ""
    assert "released the lease" in standby.text()


async def _is_one_of(value: Any, allowed: set[str]) -> bool:
    return await value in allowed


async def _has(auditor: Auditor, text: str) -> bool:
    return text in auditor.text()
