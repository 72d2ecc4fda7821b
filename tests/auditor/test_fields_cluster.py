"""Every Application field the CRD accepts works or is refused with a condition, on the real API server.

A refused Application gets an ``InvalidSpecError`` condition naming the field, and nothing is applied for
it. The fields that work are shown working: ``automated.enabled: false`` (no longer dropped by the
schema), ``revisionHistoryLimit``, ``syncPolicy.retry`` (with the loop), the in-cluster destination,
Argo CD's per-object ``sync-options: Prune=false`` and ``compare-options: IgnoreExtraneous``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from auditor.kube.cluster import Cluster
from auditor.reconcile import Reconciler
from devtools.controlplane import ControlPlane
from tests.support.auditor import (
    application,
    auditor_api,
    create_application,
    get_application,
    key,
    running_auditor,
    service_reconciler,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{color: {color}}}\n"
KEPT = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  annotations:\n"
    "    argocd.argoproj.io/sync-options: Prune=false\n"
    "    argocd.argoproj.io/compare-options: IgnoreExtraneous\n"
)
AUTOMATED = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}


@pytest.fixture
async def reconciler(
    admin: Cluster, clients: Clients, control_plane: ControlPlane, tmp_path: Path
) -> Reconciler:
    return await service_reconciler(
        control_plane, clients, tmp_path / "git-cache", group="", resource="configmaps"
    )


@pytest.fixture
def repo(git_repo: Callable[..., GitRepo]) -> GitRepo:
    return git_repo({"web/config.yaml": CONFIG.format(name="web", color="blue")})


async def _run(reconciler: Reconciler, clients: Clients, name: str, **kwargs: Any) -> dict[str, Any]:
    await reconciler.run(await get_application(clients.admin, name), **kwargs)
    return await get_application(clients.admin, name)


async def _exists(clients: Clients, ns: str, name: str) -> bool:
    try:
        await client.CoreV1Api(clients.admin).read_namespaced_config_map(name, ns)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _conditions(app: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["message"] for c in (app.get("status") or {}).get("conditions") or []}


REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "another cluster by server": (
        {"destination": {"server": "https://prod.example.com:6443"}},
        "spec.destination.server 'https://prod.example.com:6443' is another cluster",
    ),
    "another cluster by name": ({"destination": {"name": "prod"}}, "spec.destination.name 'prod'"),
    "a project": ({"project": "payments"}, "spec.project 'payments' is not supported"),
    "an unknown sync option": ({"syncPolicy": {**AUTOMATED, "syncOptions": ["Foo=bar"]}}, "Foo=bar"),
    # Replace=true and Force=true are supported since issue 16 (tests/auditor/test_replace_cluster.py).
    "replace, neither true nor false": (
        {"syncPolicy": {**AUTOMATED, "syncOptions": ["Replace=sometimes"]}},
        "Replace=sometimes",
    ),
    "client-side apply": (
        {"syncPolicy": {**AUTOMATED, "syncOptions": ["ServerSideApply=false"]}},
        "ServerSideApply=false",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_a_refused_field_is_a_condition_and_nothing_is_applied(
    case: str, reconciler: Reconciler, clients: Clients, repo: GitRepo
) -> None:
    change, expected = REFUSED[case]
    name, ns = f"refused-{uuid.uuid4().hex[:6]}", f"refused-{uuid.uuid4().hex[:6]}"
    spec: dict[str, Any] = {"syncPolicy": AUTOMATED, **change}
    body = application(name, repo_url=repo.url, path="web", namespace=ns, **spec)
    if "destination" in change:
        body["spec"]["destination"] = {"namespace": ns, **change["destination"]}
    await create_application(clients.admin, body)

    app = await _run(reconciler, clients, name, manual=True)

    conditions = _conditions(app)
    assert expected in conditions.get("InvalidSpecError", ""), conditions
    assert app["status"]["sync"]["status"] == "Unknown"
    assert not await _exists(clients, ns, "web")  # nothing applied


async def test_the_in_cluster_destination_by_server_and_name_is_accepted(
    reconciler: Reconciler, clients: Clients, repo: GitRepo
) -> None:
    name, ns = f"incluster-{uuid.uuid4().hex[:6]}", f"incluster-{uuid.uuid4().hex[:6]}"
    body = application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=AUTOMATED,
                       project="default")  # fmt: skip
    body["spec"]["destination"].update(server="https://kubernetes.default.svc", name="in-cluster")
    await create_application(clients.admin, body)
    app = await _run(reconciler, clients, name)
    assert app["status"]["sync"]["status"] == "Synced"
    assert "InvalidSpecError" not in _conditions(app)
    assert await _exists(clients, ns, "web")


async def test_automated_enabled_false_is_kept_and_switches_automation_off(
    reconciler: Reconciler, clients: Clients, repo: GitRepo
) -> None:
    name, ns = f"off-{uuid.uuid4().hex[:6]}", f"off-{uuid.uuid4().hex[:6]}"
    policy = {**AUTOMATED, "automated": {"enabled": False, "prune": True, "selfHeal": True}}
    created = await create_application(
        clients.admin, application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=policy)
    )
    assert created["spec"]["syncPolicy"]["automated"]["enabled"] is False  # no longer dropped by the schema
    app = await _run(reconciler, clients, name)
    assert app["status"]["sync"]["status"] == "OutOfSync"
    assert not await _exists(clients, ns, "web")  # not synced automatically
    app = await _run(reconciler, clients, name, manual=True)  # a manual sync still works
    assert app["status"]["sync"]["status"] == "Synced"


async def test_revision_history_limit_caps_the_history(
    reconciler: Reconciler, clients: Clients, repo: GitRepo
) -> None:
    name, ns = f"hist-{uuid.uuid4().hex[:6]}", f"hist-{uuid.uuid4().hex[:6]}"
    await create_application(
        clients.admin,
        application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=AUTOMATED,
                    revisionHistoryLimit=2),
    )  # fmt: skip
    commits = []
    for color in ("green", "red", "black"):
        app = await _run(reconciler, clients, name)
        commits.append(app["status"]["sync"]["revision"])
        repo.commit({"web/config.yaml": CONFIG.format(name="web", color=color)})
    app = await _run(reconciler, clients, name)
    commits.append(app["status"]["sync"]["revision"])
    history = app["status"]["history"]
    assert [h["revision"] for h in history] == commits[-2:]
    assert [h["id"] for h in history] == [2, 3]


async def test_argo_cd_per_object_options_keep_an_object_and_keep_the_app_synced(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"web/config.yaml": CONFIG.format(name="web", color="blue"), "web/kept.yaml": KEPT})
    name, ns = f"kept-{uuid.uuid4().hex[:6]}", f"kept-{uuid.uuid4().hex[:6]}"
    await create_application(
        clients.admin, application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=AUTOMATED)
    )
    assert (await _run(reconciler, clients, name))["status"]["sync"]["status"] == "Synced"
    repo.commit(remove=["web/kept.yaml"])  # it leaves Git
    app = await _run(reconciler, clients, name)
    assert app["status"]["sync"]["status"] == "Synced"  # IgnoreExtraneous: it does not count
    app = await _run(reconciler, clients, name, manual=True)
    assert await _exists(clients, ns, "kept")  # Prune=false (Argo CD's annotation): not pruned
    skipped = [r for r in app["status"]["operationState"]["syncResult"]["resources"] if r["name"] == "kept"]
    assert skipped and skipped[0]["status"] == "PruneSkipped" and "Prune=false" in skipped[0]["message"]
    assert app["status"]["sync"]["status"] == "Synced"  # IgnoreExtraneous: it does not count


async def test_a_failed_sync_is_retried_per_the_retry_policy(
    control_plane: ControlPlane, clients: Clients, tmp_path: Path, repo: GitRepo
) -> None:
    api = await auditor_api(control_plane, clients)
    name, ns = f"retry-{uuid.uuid4().hex[:6]}", f"retry-{uuid.uuid4().hex[:6]}"
    policy = {"automated": {"prune": True}, "retry": {"limit": 2, "backoff": {"duration": "1s", "factor": 1}}}
    # No CreateNamespace and no such namespace: every sync fails until someone creates it.
    async with running_auditor(control_plane, api, tmp_path / "git") as run:
        await create_application(
            clients.admin, application(name, repo_url=repo.url, path="web", namespace=ns, syncPolicy=policy)
        )
        await eventually(lambda: _passes(run.loop, name, 3), seconds=20)
        await asyncio.sleep(2.5)  # a third retry would have come by now
        assert run.loop.workers[key(name)].passes == 3  # the first sync and two retries
        app = await get_application(clients.admin, name)
        assert "SyncFailed" in _conditions(app)


async def _passes(loop: Any, name: str, count: int) -> bool:
    worker = loop.workers.get(key(name))
    return worker is not None and worker.passes >= count
