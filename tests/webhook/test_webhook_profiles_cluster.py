"""The same guard in front of objects managed by Argo CD or by Flux, with their real markers and managers.

Argo CD applies with field manager ``argocd-controller`` as its application controller's service account
and marks objects with ``argocd.argoproj.io/tracking-id``; Flux's kustomize-controller applies with
manager ``kustomize-controller`` and labels objects ``kustomize.toolkit.fluxcd.io/name``/``namespace``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from devtools.controlplane import ControlPlane
from driftwarden.kube.client import api_client_for
from tests.support.clients import Clients
from tests.support.guard import (
    apply,
    deployment,
    ensure_namespace,
    grant_cluster_admin,
    running_guard,
    wait_for_guard,
)

pytestmark = pytest.mark.cluster

IMAGE_PATCH = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}}
ANNOTATION_PATCH = {"metadata": {"annotations": {"example.com/note": "ok"}}}


def argocd_marked(manifest: dict[str, Any], *, app: str) -> dict[str, Any]:
    meta = manifest["metadata"]
    meta.setdefault("annotations", {})["argocd.argoproj.io/tracking-id"] = (
        f"{app}:apps/Deployment:{meta['namespace']}/{meta['name']}"
    )
    return manifest


def flux_marked(manifest: dict[str, Any], *, kustomization: str) -> dict[str, Any]:
    labels = manifest["metadata"].setdefault("labels", {})
    labels["kustomize.toolkit.fluxcd.io/name"] = kustomization
    labels["kustomize.toolkit.fluxcd.io/namespace"] = "flux-system"
    return manifest


PROFILES = {
    "argocd": {
        "identity": ("argocd", "argocd-application-controller"),
        "manager": "argocd-controller",
        "mark": lambda m: argocd_marked(m, app="guestbook"),
        "names": "guestbook",
    },
    "flux": {
        "identity": ("flux-system", "kustomize-controller"),
        "manager": "kustomize-controller",
        "mark": lambda m: flux_marked(m, kustomization="apps"),
        "names": "",
    },
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_profile_guards_its_tools_objects(
    profile: str, control_plane: ControlPlane, clients: Clients, tmp_path: Any
) -> None:
    spec = PROFILES[profile]
    ns_name, sa_name = spec["identity"]
    admin = api_client_for(control_plane.admin) if control_plane.admin else None
    assert admin is not None
    await grant_cluster_admin(admin, users=["alice"], sa=[f"{ns_name}/{sa_name}"])
    controller = await clients.service_account(ns_name, sa_name)
    ns = f"{profile}-{uuid.uuid4().hex[:6]}"
    await ensure_namespace(admin, ns)
    # The GitOps tool applies its object the way it really does: SSA, its own field manager and identity.
    await apply(
        controller, spec["mark"](deployment("web", ns)), plural="deployments", manager=spec["manager"]
    )
    # A look-alike applied by someone else, without the tool's marker, is nobody's business.
    await apply(controller, deployment("unmarked", ns), plural="deployments", manager=spec["manager"])

    async with running_guard(admin, tmp_path / "guard", profile=profile) as guard:
        apps = client.AppsV1Api(await clients.user("alice"))
        await wait_for_guard(lambda: apps.patch_namespaced_deployment("web", ns, IMAGE_PATCH, dry_run="All"))

        with pytest.raises(ApiException) as denied:
            await apps.patch_namespaced_deployment("web", ns, IMAGE_PATCH)
        assert denied.value.status == 403
        message = json.loads(denied.value.body)["message"]
        assert "image" in message and f"{ns}/web" in message
        assert spec["names"] in message

        await apps.patch_namespaced_deployment("web", ns, ANNOTATION_PATCH)  # unowned field: allowed
        with pytest.raises(ApiException) as delete_denied:
            await apps.delete_namespaced_deployment("web", ns)
        assert delete_denied.value.status == 403

        def reviews_of_unmarked() -> int:  # the controllers' own writes to "web" are reviewed meanwhile
            named = [(s.attributes or {}).get("k8s.resource.name") for s in guard.reviews()]
            return named.count("unmarked")

        assert reviews_of_unmarked() == 0
        await apps.patch_namespaced_deployment("unmarked", ns, IMAGE_PATCH)  # no marker: not guarded
        # Flux's label selector, or Argo CD's CEL matchCondition on the annotation, kept it away from us.
        assert reviews_of_unmarked() == 0

        # The tool itself is never blocked.
        tool = client.AppsV1Api(controller)
        await apply(controller, spec["mark"](deployment("web", ns, image="nginx:1.29")), plural="deployments",
                    manager=spec["manager"])  # fmt: skip
        await tool.delete_namespaced_deployment("web", ns)
    await admin.close()
