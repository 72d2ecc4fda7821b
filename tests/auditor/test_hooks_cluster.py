"""Sync phases, waves and hooks on the living local cluster (issue 16): hook Jobs run through the real Job
controller and kwok's Pod stages (a Pod labelled ``driftwarden.io/kwok-fail=true`` fails, by the project's own
Stage in tools/kwok/stages/), Applications read from real Git repositories, as the auditor's service account.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from auditor.kube.cluster import Cluster
from auditor.reconcile import Reconciler
from auditor.sync.hooks import HOOK_LABEL
from cli import appview
from devtools.controlplane import ControlPlane
from driftwarden import contract
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    create_application,
    get_application,
    reconciler_for,
    settings_for,
    wait_until_allowed,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo

pytestmark = pytest.mark.cluster

AUTOMATED = {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]}


def job(name: str, *, hook: str = "", wave: int | None = None, policy: str = "", fail: bool = False,
        generate: bool = False, extra: str = "") -> str:  # fmt: skip
    """A Job that completes on kwok (or fails, with ``fail``), as a hook when ``hook`` is given."""
    annotations = [f"argocd.argoproj.io/hook: {hook}"] if hook else []
    annotations += [f'argocd.argoproj.io/sync-wave: "{wave}"'] if wave is not None else []
    annotations += [f"argocd.argoproj.io/hook-delete-policy: {policy}"] if policy else []
    annotations += [extra] if extra else []
    labels = '{driftwarden.io/kwok-fail: "true"}' if fail else "{}"
    return f"""apiVersion: batch/v1
kind: Job
metadata:
  {"generateName" if generate else "name"}: {name}
  annotations: {{{", ".join(annotations)}}}
spec:
  backoffLimit: 0
  template:
    metadata: {{labels: {labels}}}
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: "busybox:1.36"}}]
"""


def deployment(name: str, *, wave: int | None = None) -> str:
    annotations = f'{{argocd.argoproj.io/sync-wave: "{wave}"}}' if wave is not None else "{}"
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, annotations: {annotations}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: web, image: "nginx:1.27"}}]
"""


def config(name: str, *, wave: int | None = None) -> str:
    annotations = f'{{argocd.argoproj.io/sync-wave: "{wave}"}}' if wave is not None else "{}"
    return f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, annotations: {annotations}}}
data: {{color: blue}}
"""


@pytest.fixture
async def reconciler(
    admin: Cluster, clients: Clients, control_plane: ControlPlane, tmp_path: Path
) -> Reconciler:
    api = await clients.service_account(AUDITOR_NS, contract.AUDITOR_SERVICE_ACCOUNT)
    await wait_until_allowed(api, verb="create", group="batch", resource="jobs")
    settings = dataclasses.replace(settings_for(control_plane, tmp_path / "git-cache"), wave_timeout=60.0)
    return reconciler_for(api, settings)


async def _app(clients: Clients, repo: GitRepo, *, path: str = "app", **spec: Any) -> tuple[str, str]:
    name, ns = f"hooks-{uuid.uuid4().hex[:6]}", f"hooks-{uuid.uuid4().hex[:6]}"
    spec = {"syncPolicy": AUTOMATED, **spec}
    await create_application(
        clients.admin, application(name, repo_url=repo.url, path=path, namespace=ns, **spec)
    )
    return name, ns


async def _pass(reconciler: Reconciler, clients: Clients, name: str, **kwargs: Any) -> dict[str, Any]:
    await reconciler.run(await get_application(clients.admin, name), **kwargs)
    return await get_application(clients.admin, name)


def _operation(app: dict[str, Any]) -> dict[str, Any]:
    return dict(app["status"]["operationState"])


def _results(app: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_operation(app)["syncResult"]["resources"])


async def _jobs(clients: Clients, ns: str) -> dict[str, client.V1Job]:
    listed = await client.BatchV1Api(clients.admin).list_namespaced_job(ns)
    return {j.metadata.name: j for j in listed.items}


def _complete(job_obj: client.V1Job) -> bool:
    return any(c.type == "Complete" and c.status == "True" for c in job_obj.status.conditions or [])


async def test_a_presync_job_completes_before_the_deployment_is_applied(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"app/migrate.yaml": job("migrate", hook="PreSync"), "app/web.yaml": deployment("web")})
    name, ns = await _app(clients, repo)
    app = await _pass(reconciler, clients, name)

    assert _operation(app)["phase"] == "Succeeded", _operation(app)
    migrate = (await _jobs(clients, ns))["migrate"]
    assert _complete(migrate)  # the Job controller ran it and kwok completed its Pod
    web = await client.AppsV1Api(clients.admin).read_namespaced_deployment("web", ns)
    assert migrate.status.completion_time <= web.metadata.creation_timestamp
    order = [(r["kind"], r.get("hookType", ""), r.get("hookPhase", "")) for r in _results(app)]
    assert order == [("Job", "PreSync", "Succeeded"), ("Deployment", "", "")]
    # A hook is no resource of the Application: not in status.resources, not stamped for the guard.
    assert [r["kind"] for r in app["status"]["resources"]] == ["Deployment"]
    assert migrate.metadata.labels[HOOK_LABEL] == name
    assert contract.LABEL_APP not in migrate.metadata.labels
    assert app["status"]["sync"]["status"] == "Synced"

    # A steady state runs no hook again: the same Job (uid) stays after another automated pass.
    again = await _pass(reconciler, clients, name)
    assert (await _jobs(clients, ns))["migrate"].metadata.uid == migrate.metadata.uid
    assert _operation(again)["startedAt"] == _operation(app)["startedAt"]


async def test_waves_are_applied_in_order_with_health_waits_between_them(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({
        "app/first.yaml": deployment("first", wave=-1),
        "app/second.yaml": config("second", wave=0),
        "app/third.yaml": deployment("third", wave=1),
    })  # fmt: skip
    name, ns = await _app(clients, repo)
    app = await _pass(reconciler, clients, name)

    assert _operation(app)["phase"] == "Succeeded", _operation(app)
    assert [r["name"] for r in _results(app)] == ["first", "second", "third"]
    apps, core = client.AppsV1Api(clients.admin), client.CoreV1Api(clients.admin)
    first = await apps.read_namespaced_deployment_status("first", ns)
    second = await core.read_namespaced_config_map("second", ns)
    third = await apps.read_namespaced_deployment("third", ns)
    # Wave -1 was Available (its Pod Ready on a kwok node) before wave 0 was applied, and so on.
    (available,) = [c for c in first.status.conditions if c.type == "Available" and c.status == "True"]
    assert available.last_transition_time <= second.metadata.creation_timestamp
    assert second.metadata.creation_timestamp <= third.metadata.creation_timestamp


async def test_a_failing_hook_runs_the_syncfail_hook_and_fails_the_sync_with_the_reason(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({
        "app/migrate.yaml": job("migrate", hook="PreSync", fail=True),
        "app/cleanup.yaml": job("cleanup", hook="SyncFail"),
        "app/web.yaml": deployment("web"),
    })  # fmt: skip
    name, ns = await _app(clients, repo)
    app = await _pass(reconciler, clients, name)

    state = _operation(app)
    assert state["phase"] == "Failed"
    assert f"hook Job {ns}/migrate failed" in state["message"], state["message"]
    hooks = {
        r["name"]: (r["hookType"], r["hookPhase"], r["status"]) for r in _results(app) if "hookType" in r
    }
    assert hooks == {
        "migrate": ("PreSync", "Failed", "SyncFailed"),
        "cleanup": ("SyncFail", "Succeeded", "Synced"),
    }
    jobs = await _jobs(clients, ns)
    assert _complete(jobs["cleanup"])
    failed = [c for c in jobs["migrate"].status.conditions or [] if c.type == "Failed" and c.status == "True"]
    assert failed  # kwok failed its Pod, the Job controller failed the Job
    with pytest.raises(ApiException) as gone:  # the Sync phase never started
        await client.AppsV1Api(clients.admin).read_namespaced_deployment("web", ns)
    assert gone.value.status == 404
    conditions = {c["type"]: c["message"] for c in app["status"]["conditions"]}
    assert "migrate failed" in conditions["SyncFailed"]
    rows = [line.split()[:5] for line in appview.detail_view(app).splitlines()]  # `driftwarden app get`
    assert ["PreSync", "Job", ns, "migrate", "Failed"] in rows
    assert ["SyncFail", "Job", ns, "cleanup", "Succeeded"] in rows

    # As Argo CD, an automated pass does not try the failed render again, even with selfHeal: the
    # Deployment the PreSync hook guards is not applied behind its back, and no hook runs again.
    again = await _pass(reconciler, clients, name)
    assert _operation(again)["startedAt"] == state["startedAt"]
    assert (await _jobs(clients, ns))["migrate"].metadata.uid == jobs["migrate"].metadata.uid
    with pytest.raises(ApiException):
        await client.AppsV1Api(clients.admin).read_namespaced_deployment("web", ns)


async def test_delete_policies_succeeded_and_before_hook_creation(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({
        "app/done.yaml": job("done", hook="Sync", policy="HookSucceeded"),
        "app/kept.yaml": job("kept", hook="Sync"),  # BeforeHookCreation by default
        "app/generated.yaml": job("gen-", hook="PostSync", generate=True, policy="BeforeHookCreation"),
        "app/settings.yaml": config("settings"),
    })  # fmt: skip
    name, ns = await _app(clients, repo)
    app = await _pass(reconciler, clients, name)
    assert _operation(app)["phase"] == "Succeeded", _operation(app)
    jobs = await _jobs(clients, ns)
    assert "done" not in jobs  # HookSucceeded: deleted once it succeeded
    (generated,) = [n for n in jobs if n.startswith("gen-")]  # named by the API server
    kept = jobs["kept"]
    assert _complete(kept) and _complete(jobs[generated])

    app = await _pass(reconciler, clients, name, manual=True)  # a sync runs the hooks again
    assert _operation(app)["phase"] == "Succeeded", _operation(app)
    jobs = await _jobs(clients, ns)
    assert "done" not in jobs
    assert jobs["kept"].metadata.uid != kept.metadata.uid  # the earlier run deleted before the new one
    (again,) = [n for n in jobs if n.startswith("gen-")]
    assert again != generated  # the earlier generated run is gone, one new run


async def test_delete_policy_hook_failed(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({
        "app/failed-deleted.yaml": job("failed-deleted", hook="Sync", policy="HookFailed", fail=True),
        "app/failed-kept.yaml": job("failed-kept", hook="Sync", policy="HookSucceeded", fail=True),
        "app/ok-kept.yaml": job("ok-kept", hook="Sync", policy="HookFailed"),
    })  # fmt: skip
    name, ns = await _app(clients, repo)
    app = await _pass(reconciler, clients, name)
    assert _operation(app)["phase"] == "Failed"
    phases = {r["name"]: r["hookPhase"] for r in _results(app) if "hookType" in r}
    assert phases == {"failed-deleted": "Failed", "failed-kept": "Failed", "ok-kept": "Succeeded"}
    jobs = await _jobs(clients, ns)
    assert "failed-deleted" not in jobs  # HookFailed: deleted once it failed
    assert "failed-kept" in jobs and "ok-kept" in jobs  # the policy did not apply to how they ended


async def test_a_wave_that_does_not_become_healthy_in_time_fails_the_sync_clearly(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    """A bare Pod with restartPolicy Never stays Running on kwok (only Job Pods complete): never done."""
    pod = """apiVersion: v1
kind: Pod
metadata: {name: forever, annotations: {argocd.argoproj.io/hook: PreSync}}
spec:
  restartPolicy: Never
  containers: [{name: main, image: "busybox:1.36"}]
"""
    repo = git_repo({"app/pod.yaml": pod, "app/settings.yaml": config("settings")})
    name, ns = await _app(clients, repo)
    short = Reconciler(
        dataclasses.replace(
            reconciler.clients, settings=dataclasses.replace(reconciler.clients.settings, wave_timeout=3.0)
        ),
        reconciler.ledger,
    )
    app = await _pass(short, clients, name)
    state = _operation(app)
    assert state["phase"] == "Failed"
    assert state["message"].startswith("PreSync wave 0 not done within 3s: waiting for hook Pod"), state[
        "message"
    ]
    with pytest.raises(ApiException):
        await client.CoreV1Api(clients.admin).read_namespaced_config_map("settings", ns)


CHART = """apiVersion: v2
name: hooked
version: 0.1.0
"""
CHART_CONFIG = """apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-settings}
data: {color: blue}
"""
CHART_PRE_INSTALL = """apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-setup
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-weight": "-1"
    "helm.sh/hook-delete-policy": before-hook-creation
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: "busybox:1.36"}]
"""
CHART_TEST = """apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-smoke
  annotations: {"helm.sh/hook": test}
spec:
  restartPolicy: Never
  containers: [{name: main, image: "busybox:1.36"}]
"""


async def test_helm_hooks_from_a_chart(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({
        "chart/Chart.yaml": CHART,
        "chart/templates/settings.yaml": CHART_CONFIG,
        "chart/templates/setup.yaml": CHART_PRE_INSTALL,
        "chart/templates/tests/smoke.yaml": CHART_TEST,
    })  # fmt: skip
    name, ns = await _app(clients, repo, path="chart")
    app = await _pass(reconciler, clients, name)
    assert _operation(app)["phase"] == "Succeeded", _operation(app)
    release = name  # the release is named after the Application
    hooks = [(r["name"], r["hookType"], r["hookPhase"]) for r in _results(app) if "hookType" in r]
    assert hooks == [(f"{release}-setup", "PreSync", "Succeeded")]
    assert _complete((await _jobs(clients, ns))[f"{release}-setup"])
    core = client.CoreV1Api(clients.admin)
    assert (await core.read_namespaced_config_map(f"{release}-settings", ns)).data == {"color": "blue"}
    with pytest.raises(ApiException) as gone:  # the test hook is skipped, as Argo CD skips it
        await core.read_namespaced_pod(f"{release}-smoke", ns)
    assert gone.value.status == 404
    assert [r["kind"] for r in app["status"]["resources"]] == ["ConfigMap"]
