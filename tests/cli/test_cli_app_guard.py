"""``driftwarden app`` with the admission webhook enforcing: the caller's writes are judged like anyone's.

The webhook runs for real in front of the control plane (tests/support/guard.py). Admin's ``diff`` and
``sync`` are denied (their dry runs and applies change Git-owned fields), and the same commands with
``--as`` the GitOps identity go through, which is what ``driftwarden app --help`` tells users.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from driftwarden import contract
from tests.cli.test_cli_app import (
    AUTOMATED,
    CONFIG,
    MANUAL,
    SERVICE,
    Cli,
    new_app,
    rows,
)
from tests.support.auditor import AUDITOR_NS, get_application, wait_until_allowed
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.guard import AUDITOR_USER, running_guard, wait_for_guard

pytestmark = pytest.mark.cluster


async def test_in_enforce_mode_diff_and_sync_work_as_the_gitops_identity_only(
    cli: Cli, clients: Clients, git_repo: Callable[..., GitRepo], tmp_path: Path
) -> None:
    repo = git_repo({"apps/web/config.yaml": CONFIG.format(color="blue"), "apps/web/service.yaml": SERVICE})
    name, ns = await new_app(clients, repo, MANUAL)
    assert (await cli("sync", name)).code == 0  # before the webhook is installed
    auditor = await clients.service_account(AUDITOR_NS, contract.AUDITOR_SERVICE_ACCOUNT)
    await wait_until_allowed(auditor, verb="patch", group="", resource="configmaps")
    repo.commit({"apps/web/config.yaml": CONFIG.format(color="green")})
    core = client.CoreV1Api(clients.admin)

    async with running_guard(clients.admin, tmp_path / "guard"):
        await wait_for_guard(
            lambda: core.patch_namespaced_config_map("web-config", ns, {"data": {"color": "red"}})
        )
        as_admin = await cli("diff", name)
        assert as_admin.code == 2
        assert "denied the request" in as_admin.err and "web-config" in as_admin.err
        assert f"run `driftwarden app diff {name} --as {AUDITOR_USER}`" in as_admin.err  # the hint
        denied = await cli("sync", name)  # the refused object fails alone (issue 16): exit 1, not an error
        assert denied.code == 1 and f"app sync {name} --as {AUDITOR_USER}" in denied.err
        assert (await core.read_namespaced_config_map("web-config", ns)).data == {"color": "blue"}

        diff = await cli("diff", name, "--as", AUDITOR_USER)
        assert diff.code == 1, diff.err
        assert "-  color: blue" in diff.out and "+  color: green" in diff.out
        synced = await cli("sync", name, "--as", AUDITOR_USER)
        assert synced.code == 0, synced.err
        results = {(r["KIND"], r["NAME"]): r["STATUS"] for r in rows(synced.out, "GROUP")}
        assert results == {("ConfigMap", "web-config"): "Synced"}
        assert (await core.read_namespaced_config_map("web-config", ns)).data == {"color": "green"}
        assert (await cli("diff", name, "--as", AUDITOR_USER)).code == 0


async def test_a_refused_rollback_changes_nothing_not_even_automated_sync(
    cli: Cli, clients: Clients, git_repo: Callable[..., GitRepo], tmp_path: Path
) -> None:
    repo = git_repo({"apps/web/config.yaml": CONFIG.format(color="blue"), "apps/web/service.yaml": SERVICE})
    name, ns = await new_app(clients, repo, AUTOMATED)
    assert (await cli("sync", name)).code == 0  # history entry 0: blue
    repo.commit({"apps/web/config.yaml": CONFIG.format(color="green")})
    assert (await cli("sync", name)).code == 0  # history entry 1: green
    before = await get_application(clients.admin, name)
    core = client.CoreV1Api(clients.admin)

    async with running_guard(clients.admin, tmp_path / "guard"):
        await wait_for_guard(
            lambda: core.patch_namespaced_config_map("web-config", ns, {"data": {"color": "red"}})
        )
        refused = await cli("rollback", name, "0")  # as admin: the webhook denies its dry runs
        assert refused.code == 2
        assert "denied the request" in refused.err
        assert f"app rollback {name} --as {AUDITOR_USER}" in refused.err

    after = await get_application(clients.admin, name)
    assert after["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}  # still on
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]  # no status either
    assert (await core.read_namespaced_config_map("web-config", ns)).data == {"color": "green"}
