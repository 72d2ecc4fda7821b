"""Secret values never leave the Secret: synced, drifted out of band in warn mode, healed, and not one
sentinel value in a log line, span, Event, Application status, CLI output, webhook message or metric.

Real processes throughout: ``driftwarden webhook serve`` and ``driftwarden auditor run`` (as the auditor's
service account), both with ``--console-traces`` so every span they end is printed into the log captured
here; a person edits with kubectl (the webhook's warnings land on its stderr); ``driftwarden app get`` and
``app diff`` are run as a user would. Each sentinel is looked for as written and base64-encoded (as a
Secret's ``data`` holds it).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from devtools.controlplane import ControlPlane
from devtools.jaeger import free_port
from driftwarden import contract
from driftwarden.kube.rest import MERGE_PATCH, request_json, resource_path
from tests.support.auditorprocs import Auditor, Site, auditors, site  # noqa: F401 - fixtures, found by name
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.guard import grant_cluster_admin
from tests.support.guardproc import InstalledWebhook, driftwarden, installed_webhook
from tests.support.kubectl import kubectl
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

SECRET = """apiVersion: v1
kind: Secret
metadata: {{name: db}}
type: Opaque
stringData: {{password: {password}}}
data: {{token: {token}}}
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(password: str, token: str) -> str:
    """The Secret in Git: one value as ``stringData``, one base64-encoded as ``data``."""
    return SECRET.format(password=password, token=b64(token))


def leaks(text: str, sentinels: dict[str, str]) -> list[str]:
    """Which sentinels appear in ``text``, as written or base64-encoded."""
    return [name for name, value in sentinels.items() if value in text or b64(value) in text]


async def _scrape(url: str) -> str:
    """A plain-HTTP /metrics (both processes serve it on a port of its own)."""
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        assert answer.status == 200, url
        return await answer.text()


async def _events(admin: client.ApiClient, *namespaces: str) -> str:
    found: list[Any] = []
    for namespace in namespaces:
        found.append(await request_json(admin, "GET", f"/api/v1/namespaces/{namespace}/events"))
        path = f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
        found.append(await request_json(admin, "GET", path))
    return json.dumps(found)


async def _application(at: Site, name: str, repo: GitRepo, destination: str) -> None:
    body = {
        "apiVersion": contract.API_VERSION, "kind": contract.APPLICATION_KIND,
        "metadata": {"name": name, "namespace": at.namespace},
        "spec": {"source": {"repoURL": repo.url, "targetRevision": "main", "path": "app"},
                 "destination": {"namespace": destination}, "guard": {"mode": "warn"},
                 "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                                "syncOptions": ["CreateNamespace=true"]}},
    }  # fmt: skip
    await request_json(at.admin, "POST", _app_path(at), body=body)


def _app_path(at: Site, name: str | None = None) -> str:
    return resource_path(group=contract.GROUP, version=contract.VERSION, plural=contract.APPLICATION_PLURAL,
                         namespace=at.namespace, name=name)  # fmt: skip


async def test_secret_values_appear_nowhere(
    site: Site,  # noqa: F811 - the fixture
    auditors: list[Auditor],  # noqa: F811 - the fixture
    git_repo: Callable[..., GitRepo],
    control_plane: ControlPlane,
    clients: Clients,
    tmp_path: Path,
) -> None:
    sentinels = {what: f"sentinel{what}{uuid.uuid4().hex}" for what in ("git", "token", "oob", "next")}
    repo = git_repo({"app/secret.yaml": secret(sentinels["git"], sentinels["token"])})
    repo.git("checkout", "-q", "-b", "next")  # a later revision, for `app diff --revision next`
    repo.commit({"app/secret.yaml": secret(sentinels["next"], sentinels["token"])})
    repo.git("checkout", "-q", "main")
    name, destination = f"vault-{uuid.uuid4().hex[:6]}", f"vault-{uuid.uuid4().hex[:6]}"
    person = f"secret-editor-{uuid.uuid4().hex[:6]}"
    await grant_cluster_admin(site.admin, users=[person])
    editor = await clients.user_credentials(person)
    assert editor.kubeconfig is not None and control_plane.admin is not None
    admin_kubeconfig = control_plane.admin.kubeconfig
    assert admin_kubeconfig is not None
    core = client.CoreV1Api(site.admin)
    metrics_port = free_port()

    async def password_is(value: str) -> bool:
        try:
            live = await core.read_namespaced_secret("db", destination)
        except client.exceptions.ApiException:
            return False
        return (live.data or {}).get("password") == b64(value)

    async def guard_is(mode: str) -> bool:
        live = await core.read_namespaced_secret("db", destination)
        return (live.metadata.annotations or {}).get(contract.ANNOTATION_GUARD) == mode

    edit = (control_plane, editor.kubeconfig, "-n", destination, "patch", "secret", "db", "--type", "merge",
            "-p", json.dumps({"data": {"password": b64(sentinels["oob"])}}))  # fmt: skip
    async with installed_webhook(control_plane, tmp_path / "webhook", "--console-traces") as hook:
        auditors.append(await site.auditor("keeper", "--metrics-port", str(metrics_port), "--console-traces"))
        await _application(site, name, repo, destination)
        await eventually(lambda: password_is(sentinels["git"]), seconds=60)

        # Out of band, in warn mode: let through with the webhook's warnings, then healed.
        code, out, err = await kubectl(*edit)
        assert code == 0, err
        assert "driftwarden" in err and "data.password" in err, err  # warned, naming the field only
        await eventually(lambda: password_is(sentinels["git"]), seconds=30)
        warned = out + err

        # The same edit in enforce mode (the Application's guard changed, the auditor restamps): denied.
        await request_json(site.admin, "PATCH", _app_path(site, name), content_type=MERGE_PATCH,
                           body={"spec": {"guard": {"mode": "enforce"}}})  # fmt: skip
        await eventually(lambda: guard_is("enforce"), seconds=30)
        code, out, err = await kubectl(*edit)
        assert code != 0 and "denied the request" in err and "data.password" in err, (out, err)
        assert await password_is(sentinels["git"])

        seen = await _everything(site, hook, name, destination, admin_kubeconfig, metrics_port)
        seen["kubectl edit (warnings)"] = warned
        seen["kubectl edit (denial)"] = out + err
    seen["webhook log and spans"] = hook.text()
    seen["auditor log and spans"] = auditors[0].text()
    assert f"user={person}" in seen["webhook log and spans"]  # the edit was judged, and logged
    assert '"name": "admission.review"' in seen["webhook log and spans"]  # spans were printed
    assert "data.password" in seen["webhook log and spans"]
    assert '"name": "auditor.heal"' in seen["auditor log and spans"]  # the heal's span was printed too

    found = {where: leaks(text, sentinels) for where, text in seen.items()}
    assert not any(found.values()), {where: names for where, names in found.items() if names}


async def _everything(
    at: Site, hook: InstalledWebhook, name: str, destination: str, admin_kubeconfig: Path, metrics_port: int
) -> dict[str, str]:
    """Every place a value could leak to, as text: CLI output, Events, status, the Secret's own
    annotations (the drift stamp), and both processes' /metrics."""
    seen: dict[str, str] = {}
    where = ("-n", at.namespace, "--kubeconfig", str(admin_kubeconfig))
    code, out, err = await driftwarden("app", "get", name, *where)
    assert code == 0 and "Secret" in out, (out, err)
    seen["app get"] = out + err
    # As the GitOps identity, as the README says to in enforce mode: the dry run is then not the webhook's.
    as_auditor = ("--as", contract.auditor_identity())
    code, out, err = await driftwarden("app", "diff", name, "--revision", "next", *where, *as_auditor)
    assert code == 1 and "password" in out, (out, err)  # a difference in the Secret, shown masked
    seen["app diff"] = out + err
    code, out, err = await driftwarden("app", "diff", name, "--revision", "next", *where)  # as a person
    # The refused dry run is shown under its header and stops the diff (exit 2, the --as hint on stderr).
    assert code == 2 and "dry run failed" in out and "denied the request" in out and "--as" in err, (out, err)
    seen["app diff (refused by the webhook)"] = out + err
    seen["events"] = await _events(at.admin, destination, at.namespace)
    seen["application"] = json.dumps(await at.get_application(name))
    live = await request_json(at.admin, "GET", f"/api/v1/namespaces/{destination}/secrets/db")
    seen["secret metadata"] = json.dumps(live["metadata"])
    seen["webhook /metrics"] = await _scrape(hook.metrics_url)
    seen["auditor /metrics"] = await _scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    return seen


async def test_a_failed_secret_sync_reports_no_value(
    site: Site,  # noqa: F811 - the fixture
    auditors: list[Auditor],  # noqa: F811 - the fixture
    git_repo: Callable[..., GitRepo],
    control_plane: ControlPlane,
) -> None:
    """A Secret the API server refuses (``data`` that is not base64): the failure is reported in the
    Application's status, Events and log, without the value."""
    bad = f"sentinelbad{uuid.uuid4().hex}"
    sentinels = {"bad": bad}
    manifest = f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\ndata: {{token: '{bad}!'}}\n"
    repo = git_repo({"app/secret.yaml": manifest})
    name, destination = f"broken-{uuid.uuid4().hex[:6]}", f"broken-{uuid.uuid4().hex[:6]}"
    auditors.append(await site.auditor("reporter", "--console-traces"))
    await _application(site, name, repo, destination)
    status: dict[str, Any] = {}

    async def failed() -> bool:
        nonlocal status
        status = (await site.get_application(name)).get("status") or {}
        return any(c.get("type") == "SyncFailed" for c in status.get("conditions") or [])

    try:
        await eventually(failed, seconds=60)
    except TimeoutError:
        raise AssertionError(f"no failed sync reported: {status}") from None
    assert control_plane.admin is not None and control_plane.admin.kubeconfig is not None
    _, out, err = await driftwarden("app", "get", name, "-n", site.namespace,
                                    "--kubeconfig", str(control_plane.admin.kubeconfig))  # fmt: skip
    seen = {
        "application": json.dumps(await site.get_application(name)),
        "events": await _events(site.admin, destination, site.namespace),
        "app get": out + err,
        "auditor log and spans": auditors[0].text(),
    }
    assert "secrets/db" in seen["application"] and "illegal base64" in seen["app get"], seen["app get"]
    found = {where: leaks(text, sentinels) for where, text in seen.items()}
    assert not any(found.values()), {where: names for where, names in found.items() if names}
