"""Capture real AdmissionReviews from kube-apiserver into tests/webhook/fixtures/.

Run: ``.venv/bin/python -m tests.webhook.capture``. It starts the real control plane, registers a
recording webhook (validating and mutating, objects and ``*/scale``) with a real caBundle, and makes the
edits the fixtures describe as real users: the auditor's service account applies ``production/web`` with
field manager ``driftwarden``; ``system:kube-controller-manager`` records a revision annotation and status
as that controller would; ``jane`` then scales, edits and restarts it with kubectl, and the auditor
re-applies Git's state between her edits, as it would when healing. The recorder allows
everything, so each review is exactly what the API server sends. The unit tests read these files.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from devtools.controlplane import ControlPlane, ControlPlaneSettings
from devtools.controlplane.serviceaccounts import service_account_credentials
from driftwarden.kube.client import api_client_for
from driftwarden.kube.rest import MERGE_PATCH, request_json, resource_path
from driftwarden.settings import control_plane_bin_dir, environment
from tests.support.auditor import install_crd_and_rbac
from tests.support.guard import (
    AUDITOR_NS,
    apply,
    ensure_namespace,
    grant_cluster_admin,
    managed,
    serving_pair,
)
from webhook.install import install

FIXTURES = Path(__file__).parent / "fixtures"
NS = "production"


def _recorder(store: list[tuple[str, dict[str, Any]]]) -> web.Application:
    async def record(request: web.Request) -> web.Response:
        review = await request.json()
        store.append((request.path, review))
        uid = review["request"]["uid"]
        return web.json_response(
            {
                "apiVersion": review["apiVersion"],
                "kind": review["kind"],
                "response": {"uid": uid, "allowed": True},
            }
        )

    app = web.Application(client_max_size=3 * 1024 * 1024)
    app.router.add_post("/validate", record)
    app.router.add_post("/mutate", record)
    return app


def _configs(url: str, ca: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    def hooks(path: str, prefix: str) -> list[dict[str, Any]]:
        return [
            {
                "name": f"{what}.{prefix}.capture.driftwarden.io",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
                "clientConfig": {"url": url + path, "caBundle": base64.b64encode(ca).decode()},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}},
                "rules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["UPDATE"],
                        "resources": [resources],
                        "scope": "Namespaced",
                    }
                ],
            }
            for what, resources in (("objects", "deployments"), ("scale", "deployments/scale"))
        ]

    meta = {"name": "driftwarden-guard"}
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": meta,
        "webhooks": hooks("/validate", "v"),
    }
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "driftwarden-flag"},
        "webhooks": hooks("/mutate", "m"),
    }
    return validating, mutating


WEB = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.27",
                        "env": [{"name": "LOG_LEVEL", "value": "info"}],
                        "ports": [{"name": "http", "containerPort": 8080}],
                    }
                ]
            },
        },
    },
}


async def _kubectl(plane: ControlPlane, kubeconfig: Path, *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(plane.binaries.kubectl), "--kubeconfig", str(kubeconfig), "-n", NS, *args
    )
    if await proc.wait() != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed")


async def _controller_bookkeeping(plane: ControlPlane) -> None:
    """What kube-controller-manager writes on a Deployment, as that very user (none runs here)."""
    kcm = api_client_for(await asyncio.to_thread(plane.user, "system:kube-controller-manager"))
    path = resource_path(group="apps", version="v1", plural="deployments", namespace=NS, name="web")
    query = {"fieldManager": "kube-controller-manager"}
    await request_json(
        kcm,
        "PATCH",
        path,
        query=query,
        content_type=MERGE_PATCH,
        body={"metadata": {"annotations": {"deployment.kubernetes.io/revision": "1"}}},
    )
    status = {
        "status": {
            "observedGeneration": 1,
            "replicas": 3,
            "updatedReplicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
        }
    }
    await request_json(kcm, "PATCH", path + "/status", query=query, content_type=MERGE_PATCH, body=status)
    await kcm.close()


async def capture(plane: ControlPlane, workdir: Path) -> dict[str, dict[str, Any]]:
    assert plane.admin is not None
    admin = api_client_for(plane.admin)
    await ensure_namespace(admin, AUDITOR_NS)
    await ensure_namespace(admin, NS)
    await grant_cluster_admin(admin, users=["jane", "system:kube-controller-manager"])
    await install_crd_and_rbac(admin)  # the auditor acts with its ClusterRole from manifests/, never admin
    auditor = api_client_for(
        await service_account_credentials(
            admin, AUDITOR_NS, "driftwarden-auditor", server=plane.url, ca_file=plane.pki.serving_ca_file
        )
    )
    await apply(auditor, managed(json.loads(json.dumps(WEB)), guard="enforce"), plural="deployments")
    await _controller_bookkeeping(plane)
    web_path = resource_path(group="apps", version="v1", plural="deployments", namespace=NS, name="web")
    applied = await request_json(admin, "GET", web_path)

    store: list[tuple[str, dict[str, Any]]] = []
    ca, cert, key = serving_pair(workdir)
    runner = web.AppRunner(_recorder(store))
    await runner.setup()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    validating, mutating = _configs(f"https://127.0.0.1:{port}", ca.cert_pem)
    await install(admin, validating=validating, mutating=mutating)
    await asyncio.sleep(2)  # the API server picks up new webhook configurations asynchronously

    jane = await asyncio.to_thread(plane.user, "jane", groups=("developers",))
    assert jane.kubeconfig is not None
    edit = {
        "spec": {
            "replicas": 5,
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}},
        }
    }
    marks = {}

    async def heal() -> None:  # the auditor puts Git's state (and its ownership) back between edits
        await apply(auditor, managed(json.loads(json.dumps(WEB)), guard="enforce"), plural="deployments")

    marks["scale"] = len(store)
    await _kubectl(plane, jane.kubeconfig, "scale", "deploy/web", "--replicas=5")
    await heal()
    marks["edit"] = len(store)
    await _kubectl(
        plane, jane.kubeconfig, "patch", "deploy/web", "--field-manager=kubectl-edit", "-p", json.dumps(edit)
    )
    await heal()
    marks["restart"] = len(store)
    await _kubectl(plane, jane.kubeconfig, "rollout", "restart", "deploy/web")
    await runner.cleanup()
    await admin.close()
    await auditor.close()

    def pick(start: str, path: str, sub: str | None) -> dict[str, Any]:
        for seen_path, review in store[marks[start] :]:
            if seen_path == path and review["request"].get("subResource") == sub:
                return review
        raise SystemExit(f"no {path} review for {start}")

    return {
        "deployment-applied": applied,
        "review-update-kubectl-edit": pick("edit", "/validate", None),
        "review-update-rollout-restart": pick("restart", "/validate", None),
        "review-scale-validating": pick("scale", "/validate", "scale"),
        "review-scale-mutating": pick("scale", "/mutate", "scale"),
    }


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        settings = ControlPlaneSettings(
            bin_dir=control_plane_bin_dir(environment()), work_dir=Path(tmp) / "cp"
        )
        async with ControlPlane(settings) as plane:
            captured = await capture(plane, Path(tmp) / "tls")
    for name, document in captured.items():
        (FIXTURES / f"{name}.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        print(f"wrote {FIXTURES / name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
