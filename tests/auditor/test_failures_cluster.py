"""Honest failures on the real API server (issue 16): one refused object among good ones, an immutable
field, a namespace other than the destination, an object stuck on a finalizer, and an app of apps whose
parent reflects its children's health.

Acts as the auditor's real service account; edits "out of band" are made as admin.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from auditor.kube.cluster import Cluster
from auditor.reconcile import Reconciler
from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.objectref import ObjectRef
from tests.support.auditor import (
    AUDITOR_NS,
    application,
    create_application,
    get_application,
    service_reconciler,
)
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo
from tests.support.seed import SELF_HEALING, WEB_DEPLOYMENT
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

AUTOMATED = SELF_HEALING
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{color: {color}}}\n"
IMMUTABLE = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\nimmutable: true\ndata: {{color: {color}}}\n"
)
# A Deployment with a container field its schema does not declare: server-side apply refuses it.
BROKEN = WEB_DEPLOYMENT.replace('image: "nginx:1.27"', 'image: "nginx:1.27", bogusField: 1')


@pytest.fixture
async def reconciler(
    admin: Cluster, clients: Clients, control_plane: ControlPlane, tmp_path: Path
) -> Reconciler:
    return await service_reconciler(control_plane, clients, tmp_path / "git-cache")


async def _app(clients: Clients, repo: GitRepo, path: str, **spec: Any) -> tuple[str, str]:
    name, ns = f"fail-{uuid.uuid4().hex[:6]}", f"fail-{uuid.uuid4().hex[:6]}"
    await create_application(
        clients.admin, application(name, repo_url=repo.url, path=path, namespace=ns, **spec)
    )
    return name, ns


async def _pass(reconciler: Reconciler, clients: Clients, name: str) -> dict[str, Any]:
    await reconciler.run(await get_application(clients.admin, name))
    return dict((await get_application(clients.admin, name))["status"])


def _entry(entries: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [e for e in entries if e["kind"] == kind and e["name"] == name]
    return found


async def test_one_broken_object_among_good_ones_fails_alone_and_converges_once_fixed_in_git(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({
        "app/cm.yaml": CM.format(name="settings", color="blue"),
        "app/other.yaml": CM.format(name="other", color="green"),
        "app/deployment.yaml": BROKEN,
    })  # fmt: skip
    name, ns = await _app(clients, repo, "app", syncPolicy=AUTOMATED)
    status = await _pass(reconciler, clients, name)

    # The good ones are applied and Synced; the broken one is OutOfSync with the API server's reason.
    core = client.CoreV1Api(clients.admin)
    assert (await core.read_namespaced_config_map("settings", ns)).data == {"color": "blue"}
    assert (await core.read_namespaced_config_map("other", ns)).data == {"color": "green"}
    resources = status["resources"]
    assert _entry(resources, "ConfigMap", "settings")["status"] == "Synced"
    assert _entry(resources, "ConfigMap", "other")["status"] == "Synced"
    broken = _entry(resources, "Deployment", "web")
    assert broken["status"] == "OutOfSync" and "bogusField" in broken["message"]
    assert broken["message"].startswith("dry run failed: ")
    assert "message" not in _entry(resources, "ConfigMap", "settings")
    # The sync is Failed, and says which object and why, as Argo CD's SyncFailed / message.
    operation = status["operationState"]
    assert operation["phase"] == "Failed" and operation["message"] == "1 resources failed to sync"
    results = operation["syncResult"]["resources"]
    assert _entry(results, "Deployment", "web")["status"] == "SyncFailed"
    assert "bogusField" in _entry(results, "Deployment", "web")["message"]
    assert _entry(results, "ConfigMap", "settings")["status"] == "Synced"
    assert status["sync"]["status"] == "OutOfSync"  # truthful: one object is not as Git says
    assert not any(c["type"] == "ComparisonError" for c in status["conditions"])
    assert any(c["type"] == "SyncFailed" and "bogusField" in c["message"] for c in status["conditions"])
    # status.health.message is written: the Deployment does not exist, so the app is Missing.
    assert status["health"] == {"status": "Missing", "message": "1 of 3 resources Missing"}

    # Fixed in Git: the app converges.
    repo.commit({"app/deployment.yaml": WEB_DEPLOYMENT})
    status = await _pass(reconciler, clients, name)
    assert status["operationState"]["phase"] == "Succeeded"
    assert status["sync"]["status"] == "Synced"
    assert all(e["status"] == "Synced" and "message" not in e for e in status["resources"])
    assert not any(c["type"] == "SyncFailed" for c in status["conditions"])


async def test_an_immutable_field_fails_that_object_with_its_reason_and_the_others_are_updated(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({
        "app/frozen.yaml": IMMUTABLE.format(name="frozen", color="blue"),
        "app/settings.yaml": CM.format(name="settings", color="blue"),
    })  # fmt: skip
    name, ns = await _app(clients, repo, "app", syncPolicy=AUTOMATED)
    assert (await _pass(reconciler, clients, name))["sync"]["status"] == "Synced"

    repo.commit({
        "app/frozen.yaml": IMMUTABLE.format(name="frozen", color="red"),
        "app/settings.yaml": CM.format(name="settings", color="red"),
    })  # fmt: skip
    status = await _pass(reconciler, clients, name)
    core = client.CoreV1Api(clients.admin)
    assert (await core.read_namespaced_config_map("settings", ns)).data == {"color": "red"}
    assert (await core.read_namespaced_config_map("frozen", ns)).data == {"color": "blue"}
    frozen = _entry(status["resources"], "ConfigMap", "frozen")
    assert frozen["status"] == "OutOfSync" and "field is immutable" in frozen["message"]
    assert _entry(status["resources"], "ConfigMap", "settings")["status"] == "Synced"
    assert status["operationState"]["phase"] == "Failed"
    failed = _entry(status["operationState"]["syncResult"]["resources"], "ConfigMap", "frozen")
    assert failed["status"] == "SyncFailed" and "field is immutable" in failed["message"]


async def test_a_namespace_other_than_the_destination_gets_the_hint_that_fits(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    elsewhere = f"elsewhere-{uuid.uuid4().hex[:6]}"
    stray = CM.format(name="stray", color="blue").replace(
        "name: stray}", f"name: stray, namespace: {elsewhere}}}"
    )
    repo = git_repo({"app/stray.yaml": stray, "app/settings.yaml": CM.format(name="settings", color="blue")})
    name, ns = await _app(clients, repo, "app", syncPolicy=AUTOMATED)  # CreateNamespace=true is set
    status = await _pass(reconciler, clients, name)
    entry = _entry(status["resources"], "ConfigMap", "stray")
    assert entry["status"] == "OutOfSync" and entry["namespace"] == elsewhere
    assert f"namespace {elsewhere!r} does not exist" in entry["message"]
    assert f"CreateNamespace=true creates only the destination namespace {ns!r}" in entry["message"]
    assert "set syncOptions CreateNamespace=true" not in entry["message"]
    assert _entry(status["resources"], "ConfigMap", "settings")["status"] == "Synced"

    # Without CreateNamespace, a missing destination gets that option as its hint.
    plain, _ = await _app(clients, repo, "app", syncPolicy={"automated": {"prune": True}})
    status = await _pass(reconciler, clients, plain)
    assert (
        "set syncOptions CreateNamespace=true"
        in _entry(status["resources"], "ConfigMap", "settings")["message"]
    )


async def test_an_object_stuck_on_a_finalizer_says_which_and_since_when(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    repo = git_repo({"app/settings.yaml": CM.format(name="settings", color="blue")})
    name, ns = await _app(clients, repo, "app", syncPolicy=AUTOMATED)
    await _pass(reconciler, clients, name)
    core = client.CoreV1Api(clients.admin)
    await core.patch_namespaced_config_map("settings", ns, {"metadata": {"finalizers": ["example.com/hold"]}})
    await core.delete_namespaced_config_map("settings", ns)
    try:
        status = await _pass(reconciler, clients, name)
        since = (await core.read_namespaced_config_map("settings", ns)).metadata.deletion_timestamp
        assert since is not None
        entry = _entry(status["resources"], "ConfigMap", "settings")
        at = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        expected = f"Pending deletion since {at}: waiting for finalizer example.com/hold"
        assert entry["message"] == expected
        assert entry["health"] == {"status": "Progressing", "message": expected}
        assert status["health"] == {"status": "Progressing", "message": "1 of 1 resources Progressing"}
    finally:
        await core.patch_namespaced_config_map("settings", ns, {"metadata": {"finalizers": None}})


CHILD = """apiVersion: driftwarden.io/v1alpha1
kind: Application
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  source: {{repoURL: "{repo}", targetRevision: main, path: child}}
  destination: {{namespace: {destination}}}
  syncPolicy: {{automated: {{prune: true, selfHeal: true}}, syncOptions: [CreateNamespace=true]}}
"""
STUCK = """apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck}
spec:
  replicas: 1
  progressDeadlineSeconds: 1
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec:
      nodeSelector: {driftwarden.io/no-such-node: "true"}
      containers: [{name: web, image: "nginx:1.27"}]
"""


async def test_an_app_of_apps_parent_reflects_its_childs_health(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo]
) -> None:
    child_name, child_ns = f"child-{uuid.uuid4().hex[:6]}", f"child-{uuid.uuid4().hex[:6]}"
    repo = git_repo({"child/deployment.yaml": STUCK})
    repo.commit({"parent/child.yaml": CHILD.format(name=child_name, namespace=AUDITOR_NS, repo=repo.url,
                                                   destination=child_ns)})  # fmt: skip
    parent, _ = await _app(clients, repo, "parent", syncPolicy=AUTOMATED)
    status = await _pass(reconciler, clients, parent)
    entry = _entry(status["resources"], contract.APPLICATION_KIND, child_name)
    assert entry["health"]["status"] == "Progressing"  # the child has no health yet
    assert status["health"]["status"] == "Progressing"

    # The child's Deployment cannot be scheduled: it exceeds its progress deadline, the child is Degraded.
    async def degraded(app: str) -> bool:
        return (await _pass(reconciler, clients, app))["health"]["status"] == "Degraded"

    await eventually(lambda: degraded(child_name), seconds=60, every=0.5)
    child = (await get_application(clients.admin, child_name))["status"]["health"]
    assert child == {"status": "Degraded", "message": "1 of 1 resources Degraded"}
    status = await _pass(reconciler, clients, parent)
    entry = _entry(status["resources"], contract.APPLICATION_KIND, child_name)
    assert entry["health"] == {"status": "Degraded", "message": "1 of 1 resources Degraded"}
    assert status["health"] == {"status": "Degraded", "message": "1 of 1 resources Degraded"}


POLICY = """apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}}
  validations:
    - expression: "!has(object.data) || !('forbidden' in object.data)"
      message: "admission denied: the key 'forbidden' is not allowed"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {namespace}}}}}
"""


async def test_an_object_denied_at_admission_fails_alone_with_the_denial(
    reconciler: Reconciler, clients: Clients, git_repo: Callable[..., GitRepo], admin: Cluster
) -> None:
    """Admission denies one object (a ValidatingAdmissionPolicy; dry runs meet it as they meet webhooks)."""
    denied = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: denied}\ndata: {forbidden: 'yes'}\n"
    repo = git_repo(
        {"app/denied.yaml": denied, "app/settings.yaml": CM.format(name="settings", color="blue")}
    )
    name, ns = await _app(clients, repo, "app", syncPolicy=AUTOMATED)
    core = client.CoreV1Api(clients.admin)
    await core.create_namespace({"metadata": {"name": ns}})
    policy = f"deny-{ns}"
    for doc in yaml.safe_load_all(POLICY.format(name=policy, namespace=ns)):
        await admin.apply(doc, field_manager="test")
    try:
        probe = {"metadata": {"name": "probe"}, "data": {"forbidden": "x"}}

        async def enforced() -> bool:  # the policy takes a moment to reach the admission chain
            try:
                await core.create_namespaced_config_map(ns, probe, dry_run="All")
            except client.exceptions.ApiException as exc:
                return exc.status == 422
            return False

        await eventually(enforced, seconds=30, every=0.2)
        status = await _pass(reconciler, clients, name)
        entry = _entry(status["resources"], "ConfigMap", "denied")
        assert entry["status"] == "OutOfSync" and "the key 'forbidden' is not allowed" in entry["message"]
        assert _entry(status["resources"], "ConfigMap", "settings")["status"] == "Synced"
        assert (await core.read_namespaced_config_map("settings", ns)).data == {"color": "blue"}
        assert status["operationState"]["phase"] == "Failed"
    finally:
        for kind in ("ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy"):
            ref = ObjectRef("admissionregistration.k8s.io", "v1", kind, "", policy)
            await admin.delete(ref)
