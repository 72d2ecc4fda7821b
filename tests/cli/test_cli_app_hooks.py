"""``driftwarden app sync`` runs an Application's hooks and ``driftwarden app get`` lists them (issue 16),
with the real command against the living local cluster: the PreSync Job runs through the Job controller and
kwok."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.auditor.test_hooks_cluster import job
from tests.cli.test_cli_app import MANUAL, Cli, new_app, rows
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo

pytestmark = pytest.mark.cluster

CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config}\ndata: {color: blue}\n"


async def test_app_sync_runs_the_hooks_and_app_get_lists_them(
    cli: Cli, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({
        "apps/web/migrate.yaml": job("migrate-", hook="PreSync", generate=True, policy="BeforeHookCreation"),
        "apps/web/config.yaml": CONFIG,
    })  # fmt: skip
    name, ns = await new_app(clients, repo, MANUAL)

    synced = await cli("sync", name)
    assert synced.code == 0, synced.err
    (hook,) = [r for r in rows(synced.out, "GROUP") if r["HOOK"]]
    assert hook["HOOK"] == "PreSync/Succeeded" and hook["NAME"].startswith("migrate-")

    got = await cli("get", name)
    assert got.code == 0, got.err
    (listed,) = rows(got.out, "HOOK")
    assert (listed["HOOK"], listed["KIND"], listed["NAMESPACE"], listed["PHASE"]) == (
        "PreSync",
        "Job",
        ns,
        "Succeeded",
    )
    assert listed["NAME"] == hook["NAME"]  # the name the API server generated


async def test_app_sync_of_a_failing_hook_exits_1_and_app_get_says_which(
    cli: Cli, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    failing = job("migrate-", hook="PreSync", generate=True, policy="HookSucceeded", fail=True)
    repo = git_repo({"apps/web/migrate.yaml": failing, "apps/web/config.yaml": CONFIG})
    name, ns = await new_app(clients, repo, MANUAL)

    synced = await cli("sync", name)
    assert synced.code == 1
    assert f"hook Job {ns}/migrate-" in synced.out and "failed" in synced.out

    got = await cli("get", name)
    (listed,) = rows(got.out, "HOOK")
    assert (listed["HOOK"], listed["PHASE"]) == ("PreSync", "Failed")
    (config,) = rows(got.out, "GROUP")  # the PreSync hook failed: the Sync phase never applied it
    assert (config["NAME"], config["STATUS"], config["HEALTH"]) == ("web-config", "OutOfSync", "Missing")
