"""The Application CRD on the real API server: names, schema validation, status subresource, columns.

The schema and the pure parser (auditor.application) must agree: every spec the server rejects is
also rejected by ``parse_application``, and the design's example passes both.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from auditor.application import parse_application
from auditor.kube.cluster import Cluster
from devtools.controlplane import ControlPlane
from driftwarden import contract
from driftwarden.errors import KubeError, PermanentError
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import MERGE_PATCH, request_json, resource_path

pytestmark = pytest.mark.cluster

CRD_FILE = Path(__file__).parents[2] / "manifests/crd/applications.driftwarden.io.yaml"

EXAMPLE_SPEC: dict[str, Any] = {  # docs/design.md, "Application shape"
    "source": {"repoURL": "https://git.example.com/infra.git", "targetRevision": "main", "path": "apps/web"},
    "destination": {"namespace": "production"},
    "syncPolicy": {
        "automated": {"prune": True, "selfHeal": True, "allowEmpty": False},
        "syncOptions": ["CreateNamespace=true"],
    },
    "guard": {"mode": "enforce", "allow": {"users": [], "groups": ["sre-breakglass"]}},
    "ignoreDifferences": [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}],
}


@pytest.fixture(scope="module")
async def admin(control_plane: ControlPlane) -> AsyncIterator[client.ApiClient]:
    assert control_plane.admin is not None
    api = api_client_for(control_plane.admin)
    cluster = Cluster(api)
    await cluster.apply(yaml.safe_load(CRD_FILE.read_text()), field_manager="driftwarden-installer")
    await cluster.wait_established(contract.APPLICATION_CRD_NAME, timeout=30)
    yield api
    await api.close()


@pytest.fixture
async def namespace(admin: client.ApiClient) -> str:
    name = f"crd-{uuid.uuid4().hex[:8]}"
    await client.CoreV1Api(admin).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


def _app(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.APPLICATION_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _path(namespace: str, name: str | None = None) -> str:
    return resource_path(
        group=contract.GROUP, version=contract.VERSION, plural=contract.APPLICATION_PLURAL,
        namespace=namespace, name=name,
    )  # fmt: skip


async def _create(api: client.ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    return await request_json(api, "POST", _path(obj["metadata"]["namespace"]), body=obj)


async def test_crd_is_established_with_the_contract_names(admin: client.ApiClient) -> None:
    crd = await request_json(
        admin,
        "GET",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{contract.APPLICATION_CRD_NAME}",
    )
    accepted = crd["status"]["acceptedNames"]
    assert accepted["kind"] == "Application"
    assert accepted["plural"] == "applications" and accepted["singular"] == "application"
    assert accepted["shortNames"] == ["dwapp", "dwapps"]
    assert crd["spec"]["scope"] == "Namespaced"
    [version] = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


async def test_the_design_example_is_accepted_and_parses(admin: client.ApiClient, namespace: str) -> None:
    created = await _create(admin, _app("web-app", namespace, copy.deepcopy(EXAMPLE_SPEC)))

    assert created["spec"] == EXAMPLE_SPEC  # nothing pruned by the structural schema
    app = parse_application(created)
    assert app.source.repo_url == "https://git.example.com/infra.git"
    assert app.guard.allow_groups == ("sre-breakglass",)
    assert app.sync_policy.auto_prune and app.sync_policy.create_namespace


async def test_argo_cd_fields_driftwarden_ignores_are_kept(admin: client.ApiClient, namespace: str) -> None:
    spec = {
        "project": "default",
        "revisionHistoryLimit": 5,
        "info": [{"name": "team", "value": "web"}],
        "source": {"repoURL": "https://git.example.com/x.git", "helm": {"values": "replicas: 2\n",
                   "parameters": [{"name": "image.tag", "value": "1.2", "forceString": True}]}},
        "destination": {"server": "https://kubernetes.default.svc", "name": "in-cluster"},
        "syncPolicy": {"retry": {"limit": 3, "backoff": {"duration": "5s"}}},
    }  # fmt: skip
    created = await _create(admin, _app("argo-moved", namespace, copy.deepcopy(spec)))

    assert created["spec"] == spec
    assert parse_application(created).source.helm is not None


BAD_SPECS: dict[str, tuple[dict[str, Any], str]] = {
    "bogus guard mode": ({"guard": {"mode": "bogus"}}, 'spec.guard.mode: Unsupported value: "bogus"'),
    "missing repoURL": ({"source": {"path": "apps/web"}}, "spec.source.repoURL: Required value"),
    "multi-source": ({"sources": [{"repoURL": "x"}]}, "spec.sources: Forbidden"),
    "helm repository chart with kustomize options": (
        {"source": {"repoURL": "x", "chart": "nginx", "kustomize": {}}},
        "spec.source.chart: Invalid value",
    ),
    "two renderers": (
        {"source": {"repoURL": "x", "helm": {}, "kustomize": {}}},
        "may set only one of directory, helm, kustomize",
    ),
    "path escapes the repository": ({"source": {"repoURL": "x", "path": "apps/../../etc"}}, "relative path"),
    "absolute path": ({"source": {"repoURL": "x", "path": "/etc"}}, "relative path"),
    "sync option without =": ({"syncPolicy": {"syncOptions": ["CreateNamespace"]}}, "syncOptions[0]"),
    "destination namespace not a DNS label": (
        {"destination": {"namespace": "Prod"}},
        "destination.namespace",
    ),
    "ignore rule without kind": ({"ignoreDifferences": [{"group": "apps"}]}, "kind: Required value"),
    "json pointer without slash": (
        {"ignoreDifferences": [{"kind": "Deployment", "jsonPointers": ["spec/replicas"]}]},
        "jsonPointers[0]",
    ),
    "empty jq expression": (
        {"ignoreDifferences": [{"kind": "Deployment", "jqPathExpressions": [""]}]},
        "jqPathExpressions[0]",
    ),
    "automated prune not a boolean": ({"syncPolicy": {"automated": {"prune": "yes"}}}, "automated.prune"),
    "history limit below 1": ({"revisionHistoryLimit": 0}, "spec.revisionHistoryLimit"),
    "config management plugin": (
        {"source": {"repoURL": "x", "plugin": {"name": "p"}}},
        "spec.source.plugin: Forbidden",
    ),
    "managed namespace metadata": (
        {"syncPolicy": {"managedNamespaceMetadata": {"labels": {"a": "b"}}}},
        "managedNamespaceMetadata: Forbidden",
    ),
    "retry factor below 1": ({"syncPolicy": {"retry": {"backoff": {"factor": 0}}}}, "backoff.factor"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
async def test_invalid_applications_are_rejected_by_the_server_and_the_parser(
    admin: client.ApiClient, namespace: str, case: str
) -> None:
    change, expected = BAD_SPECS[case]
    spec = {**copy.deepcopy(EXAMPLE_SPEC), **change}
    obj = _app("bad", namespace, spec)

    with pytest.raises(KubeError) as rejected:
        await _create(admin, obj)
    assert rejected.value.status == 422
    assert rejected.value.reason == "Invalid"
    assert expected in str(rejected.value)
    with pytest.raises(PermanentError):
        parse_application(obj)


async def test_status_is_written_only_through_the_status_subresource(
    admin: client.ApiClient, namespace: str
) -> None:
    obj = _app("web-app", namespace, copy.deepcopy(EXAMPLE_SPEC))
    obj["status"] = {"sync": {"status": "Synced", "revision": "sneaked-in"}}
    created = await _create(admin, obj)
    assert "status" not in created  # the main resource ignores status on create

    status = {
        "sync": {"status": "OutOfSync", "revision": "a" * 40},
        "health": {"status": "Progressing", "message": "1 of 2 replicas"},
        "resources": [{"kind": "Deployment", "name": "web", "status": "OutOfSync", "extra": {"x": 1}}],
        "drift": [{"user": "alice", "fields": ["/spec/replicas"]}],
        "operationState": {"phase": "Running", "anything": ["goes"]},
    }
    path = _path(namespace, "web-app")
    patched = await request_json(
        admin, "PATCH", f"{path}/status", body={"status": status, "spec": {"guard": {"mode": "off"}}},
        content_type=MERGE_PATCH,
    )  # fmt: skip
    assert patched["status"] == status  # open shapes kept as written
    assert patched["spec"]["guard"]["mode"] == "enforce"  # spec ignored on the status subresource

    respec = await request_json(
        admin, "PATCH", path, body={"spec": {"guard": {"mode": "warn"}}, "status": {"sync": None}},
        content_type=MERGE_PATCH,
    )  # fmt: skip
    assert respec["spec"]["guard"]["mode"] == "warn"
    assert respec["status"] == status  # status ignored on the main resource
    assert respec["metadata"]["generation"] == 2  # spec change bumped generation, status writes did not


async def test_typed_status_fields_reject_unknown_values(admin: client.ApiClient, namespace: str) -> None:
    await _create(admin, _app("web-app", namespace, copy.deepcopy(EXAMPLE_SPEC)))
    with pytest.raises(KubeError) as rejected:
        await request_json(
            admin, "PATCH", f"{_path(namespace, 'web-app')}/status",
            body={"status": {"health": {"status": "Fine"}}}, content_type=MERGE_PATCH,
        )  # fmt: skip
    assert rejected.value.status == 422
    assert 'status.health.status: Unsupported value: "Fine"' in str(rejected.value)


async def _kubectl(control_plane: ControlPlane, *args: str) -> str:
    assert control_plane.admin is not None and control_plane.admin.kubeconfig is not None
    proc = await asyncio.create_subprocess_exec(
        str(control_plane.binaries.kubectl), f"--kubeconfig={control_plane.admin.kubeconfig}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_printer_columns_show_sync_health_and_revision_in_wide_output(
    admin: client.ApiClient, control_plane: ControlPlane, namespace: str
) -> None:
    await _create(admin, _app("web-app", namespace, copy.deepcopy(EXAMPLE_SPEC)))
    sha = "0123456789abcdef0123456789abcdef01234567"
    await request_json(
        admin, "PATCH", f"{_path(namespace, 'web-app')}/status", content_type=MERGE_PATCH,
        body={"status": {"sync": {"status": "Synced", "revision": sha}, "health": {"status": "Degraded"}}},
    )  # fmt: skip

    wide = await _kubectl(control_plane, "get", "applications.driftwarden.io", "-n", namespace, "-o", "wide")
    header, row = wide.splitlines()
    assert header.split() == ["NAME", "SYNC", "HEALTH", "REVISION", "AGE"]
    assert row.split()[:4] == ["web-app", "Synced", "Degraded", sha]

    narrow = await _kubectl(control_plane, "get", "dwapp", "-n", namespace)  # the short name works too
    assert narrow.splitlines()[0].split() == ["NAME", "SYNC", "HEALTH", "AGE"]  # revision only in wide
    assert narrow.splitlines()[1].split()[:3] == ["web-app", "Synced", "Degraded"]
