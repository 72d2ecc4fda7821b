"""``driftwarden app`` against the real control plane and real Git repositories on disk.

The CLI runs as ``cli.main.main`` in a worker thread (its own event loop, as from a shell) with the
admin kubeconfig; out-of-band edits are made as admin through the API. Output is read from stdout/stderr.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from cli.main import main
from devtools.controlplane import ControlPlane
from devtools.controlplane.serviceaccounts import service_account_credentials
from driftwarden import contract
from driftwarden.kube.client import api_client_for
from driftwarden.settings import environment, helm_bin_dir
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    create_application,
    get_application,
    install_crd_and_rbac,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo

pytestmark = pytest.mark.cluster

CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web-config}}\ndata: {{color: {color}}}\n"
SERVICE = """apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""
MANUAL = {"syncOptions": ["CreateNamespace=true"]}
AUTOMATED = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """Runs ``driftwarden app ...`` with the admin kubeconfig unless ``kubeconfig=False``."""

    kubeconfig: Path
    capsys: pytest.CaptureFixture[str]

    async def __call__(self, *argv: str, kubeconfig: bool = True) -> Ran:
        self.capsys.readouterr()
        args = ["app", *argv, *(["--kubeconfig", str(self.kubeconfig)] if kubeconfig else [])]
        code = await asyncio.to_thread(main, args)
        out, err = self.capsys.readouterr()
        return Ran(code, out, err)


def rows(text: str, first: str) -> list[dict[str, str]]:
    """The rows of the table whose header starts with ``first``, cut at the header's column starts."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first + " "))
    columns = [(m.group(), m.start()) for m in re.finditer(r"\S+", lines[start])]
    found = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        ends = [pos for _, pos in columns[1:]] + [None]
        found.append({name: line[pos:end].strip() for (name, pos), end in zip(columns, ends, strict=True)})
    return found


async def prepare_cluster(plane: ControlPlane) -> None:
    """The CRD, the auditor's RBAC, the install namespace and the auditor's service account (idempotent)."""
    assert plane.admin is not None
    async with api_client_for(plane.admin) as api:
        await install_crd_and_rbac(api)
        ca_file = plane.pki.serving_ca_file
        await service_account_credentials(
            api, AUDITOR_NS, contract.AUDITOR_SERVICE_ACCOUNT, server=plane.url, ca_file=ca_file
        )


def make_cli(
    plane: ControlPlane, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cache: Path
) -> Cli:
    """A ``Cli`` with the Git cache in ``cache`` and the control plane's kubectl and the pinned helm."""
    helm = helm_bin_dir(environment())
    monkeypatch.setenv("DRIFTWARDEN_CACHE", str(cache))
    monkeypatch.setenv("DRIFTWARDEN_K8S_BIN_DIR", str(plane.settings.bin_dir))
    monkeypatch.setenv("DRIFTWARDEN_HELM_BIN_DIR", str(helm))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert plane.admin is not None and plane.admin.kubeconfig is not None
    return Cli(plane.admin.kubeconfig, capsys)


@pytest.fixture(scope="module")
async def installed(control_plane: ControlPlane) -> None:
    await prepare_cluster(control_plane)


@pytest.fixture
def cli(
    installed: None,
    control_plane: ControlPlane,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Cli:
    return make_cli(control_plane, capsys, monkeypatch, tmp_path / "cache")


async def new_app(
    clients: Clients, repo: GitRepo, policy: dict[str, Any], path: str = "apps/web"
) -> tuple[str, str]:
    name, ns = f"web-{uuid.uuid4().hex[:6]}", f"dst-{uuid.uuid4().hex[:6]}"
    await create_application(clients.admin, application(name, repo_url=repo.url, path=path, namespace=ns,
                                                        syncPolicy=policy))  # fmt: skip
    return name, ns


@pytest.fixture
def web_repo(git_repo: Callable[..., GitRepo]) -> GitRepo:
    return git_repo({"apps/web/config.yaml": CONFIG.format(color="blue"), "apps/web/service.yaml": SERVICE})


def test_help_lists_the_subcommands_and_the_gitops_identity(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["app", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("list", "get", "diff", "sync", "history", "rollback"):
        assert re.search(rf"^\s+{command}\s+\S", out, re.MULTILINE), command
    assert f"--as {contract.auditor_identity()}" in out
    with pytest.raises(SystemExit):
        main(["app", "sync", "--help"])
    sync_help = " ".join(capsys.readouterr().out.split())
    assert "enforce mode" in sync_help and "--prune" in sync_help and "--revision" in sync_help


async def test_sync_then_get_and_list_show_it_synced(cli: Cli, clients: Clients, web_repo: GitRepo) -> None:
    name, ns = await new_app(clients, web_repo, MANUAL)
    before = await cli("get", name)
    assert before.code == 0
    assert "No resources recorded yet" in before.out

    synced = await cli("sync", name)
    assert synced.code == 0, synced.err
    results = {(r["KIND"], r["NAME"]): r for r in rows(synced.out, "GROUP")}
    assert results[("ConfigMap", "web-config")]["STATUS"] == "Synced"
    assert results[("Service", "web")]["NAMESPACE"] == ns
    assert f"Synced to main ({web_repo.head()[:7]})" in synced.out
    cm = await client.CoreV1Api(clients.admin).read_namespaced_config_map("web-config", ns)
    assert cm.data == {"color": "blue"}

    got = await cli("get", name)
    assert got.code == 0
    assert re.search(rf"^Sync Status:\s+Synced to main \({web_repo.head()[:7]}\)$", got.out, re.MULTILINE)
    assert re.search(r"^Health Status:\s+Healthy$", got.out, re.MULTILINE)
    assert re.search(rf"^Repo:\s+{re.escape(web_repo.url)}$", got.out, re.MULTILINE)
    resources = rows(got.out, "GROUP")
    assert [(r["KIND"], r["NAMESPACE"], r["NAME"], r["STATUS"], r["HEALTH"]) for r in resources] == [
        ("ConfigMap", ns, "web-config", "Synced", "Healthy"),
        ("Service", ns, "web", "Synced", "Healthy"),
    ]
    as_yaml = yaml.safe_load((await cli("get", name, "-o", "yaml")).out)
    assert as_yaml["status"]["sync"] == {"status": "Synced", "revision": web_repo.head()}

    listed = await cli("list")
    (mine,) = [r for r in rows(listed.out, "NAME") if r["NAME"] == name]
    assert (mine["SYNC"], mine["HEALTH"], mine["REVISION"]) == ("Synced", "Healthy", web_repo.head()[:7])
    assert re.fullmatch(r"\d+s|\d+m\d*s?", mine["AGE"]), mine["AGE"]
    (wide,) = [r for r in rows((await cli("list", "-o", "wide")).out, "NAME") if r["NAME"] == name]
    assert (wide["REPO"], wide["PATH"], wide["TARGET"]) == (web_repo.url, "apps/web", "main")
    (everywhere,) = [r for r in rows((await cli("list", "-A")).out, "NAMESPACE") if r["NAME"] == name]
    assert everywhere["NAMESPACE"] == AUDITOR_NS
    doc = json.loads((await cli("list", "-o", "json")).out)
    assert doc["kind"] == "List"
    (item,) = [i for i in doc["items"] if i["metadata"]["name"] == name]
    assert item["status"]["sync"]["revision"] == web_repo.head()


async def test_diff_exits_0_in_sync_and_1_after_an_out_of_band_change_and_writes_nothing(
    cli: Cli, clients: Clients, web_repo: GitRepo
) -> None:
    name, ns = await new_app(clients, web_repo, MANUAL)
    assert (await cli("sync", name)).code == 0
    clean = await cli("diff", name)
    assert (clean.code, clean.out) == (0, "")
    assert "in sync with Git at main" in clean.err

    core = client.CoreV1Api(clients.admin)
    await core.patch_namespaced_config_map("web-config", ns, {"data": {"color": "red"}})
    before = await get_application(clients.admin, name)
    drifted = await cli("diff", name)
    assert drifted.code == 1, drifted.err
    assert f"ConfigMap {ns}/web-config (update)" in drifted.out
    assert "changed: /data/color" in drifted.out
    assert "-  color: red" in drifted.out and "+  color: blue" in drifted.out
    assert "Service" not in drifted.out  # only what differs is printed
    assert "1 of 2 resources differ" in drifted.err
    after = await get_application(clients.admin, name)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]  # no status write
    assert (await core.read_namespaced_config_map("web-config", ns)).data == {"color": "red"}  # not healed

    web_repo.commit({"apps/web/config.yaml": CONFIG.format(color="green")})
    first = web_repo.git("rev-list", "--max-parents=0", "HEAD")
    at_first = await cli("diff", name, "--revision", first)
    assert at_first.code == 1 and "+  color: blue" in at_first.out
    assert "+  color: green" in (await cli("diff", name)).out


async def test_a_secret_diff_differs_without_printing_its_values(
    cli: Cli, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: git-s3cret-value}\n"
    repo = git_repo({"apps/db/secret.yaml": secret})
    name, ns = await new_app(clients, repo, MANUAL, path="apps/db")
    assert (await cli("sync", name)).code == 0
    assert (await cli("diff", name)).code == 0
    await client.CoreV1Api(clients.admin).patch_namespaced_secret(
        "db", ns, {"stringData": {"password": "live-0ther-value"}}
    )
    ran = await cli("diff", name)
    assert ran.code == 1
    assert f"Secret {ns}/db (update)" in ran.out
    assert "/data/password" in ran.out
    for leaked in (
        "git-s3cret-value",
        "live-0ther-value",
        "Z2l0LXMzY3JldC12YWx1ZQ==",
        "bGl2ZS0wdGhlci12YWx1ZQ==",
    ):
        assert leaked not in ran.out + ran.err


async def test_history_lists_two_syncs_and_rollback_restores_the_first_with_auto_sync_off(
    cli: Cli, clients: Clients, web_repo: GitRepo
) -> None:
    name, ns = await new_app(clients, web_repo, AUTOMATED)
    first = web_repo.head()
    assert (await cli("sync", name)).code == 0
    second = web_repo.commit(
        {"apps/web/config.yaml": CONFIG.format(color="green")}, remove=["apps/web/service.yaml"]
    )
    synced = await cli("sync", name)
    assert synced.code == 0, synced.err
    assert {(r["KIND"], r["STATUS"]) for r in rows(synced.out, "GROUP")} == {
        ("ConfigMap", "Synced"),
        ("Service", "Pruned"),
    }

    history = await cli("history", name)
    assert [(r["ID"], r["REVISION"]) for r in rows(history.out, "ID")] == [("0", first), ("1", second)]
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["DEPLOYED-AT"]) for r in rows(history.out, "ID")
    )
    assert [h["revision"] for h in json.loads((await cli("history", name, "-o", "json")).out)] == [
        first,
        second,
    ]

    refused = await cli("rollback", name, "7")
    assert refused.code == 2
    assert "has no history entry 7" in refused.err and "history IDs: 0, 1" in refused.err
    assert (await get_application(clients.admin, name))["spec"]["syncPolicy"]["automated"]  # untouched

    rolled = await cli("rollback", name, "0")
    assert rolled.code == 0, rolled.err
    assert "Automated sync" in rolled.out and "is now off" in rolled.out
    assert '"automated":{"prune":true,"selfHeal":true}' in rolled.out  # how to turn it back on
    assert f"revision {first}" in rolled.out
    core = client.CoreV1Api(clients.admin)
    assert (await core.read_namespaced_config_map("web-config", ns)).data == {"color": "blue"}
    assert (await core.read_namespaced_service("web", ns)).spec.ports[0].port == 80
    app = await get_application(clients.admin, name)
    assert "automated" not in app["spec"]["syncPolicy"]
    assert app["status"]["sync"] == {"status": "Synced", "revision": first}
    assert [h["revision"] for h in app["status"]["history"]] == [first, second, first]

    # Auto-sync stays off: a plain sync goes to main again, and prunes only when asked.
    kept = await cli("sync", name)
    assert kept.code == 0
    assert ("Service", "PruneSkipped") in {(r["KIND"], r["STATUS"]) for r in rows(kept.out, "GROUP")}
    assert (await cli("sync", name, "--prune")).code == 0
    with pytest.raises(ApiException) as gone:
        await core.read_namespaced_service("web", ns)
    assert gone.value.status == 404


async def test_errors_exit_2_with_a_clear_message(
    cli: Cli, clients: Clients, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    unknown = await cli("get", "no-such-app")
    assert unknown.code == 2
    assert unknown.err.startswith(
        f'driftwarden: error: Application "no-such-app" not found in namespace {AUDITOR_NS}'
    )
    assert (await cli("sync", "no-such-app")).code == 2
    assert (await cli("diff", "no-such-app")).code == 2

    missing = tmp_path / "nowhere.kubeconfig"
    bad = await cli("list", "--kubeconfig", str(missing), kubeconfig=False)
    assert bad.code == 2
    assert f"kubeconfig {missing} does not exist" in bad.err
    monkeypatch.setenv("KUBECONFIG", str(missing))
    from_env = await cli("list", kubeconfig=False)
    assert from_env.code == 2 and "$KUBECONFIG" in from_env.err
    monkeypatch.setenv("KUBECONFIG", str(cli.kubeconfig))
    assert (await cli("list", kubeconfig=False)).code == 0  # the default comes from $KUBECONFIG

    garbage = tmp_path / "garbage.kubeconfig"
    garbage.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    broken = await cli("list", "--kubeconfig", str(garbage), kubeconfig=False)
    assert broken.code == 2 and f"cannot load Kubernetes credentials from kubeconfig {garbage}" in broken.err

    forbidden = await cli("list", "--as", "mallory")
    assert forbidden.code == 2
    assert 'User "mallory" cannot list resource "applications"' in forbidden.err
