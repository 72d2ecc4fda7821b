"""Builders of AdmissionReview documents and objects for the webhook tests (not a test module)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from driftwarden import contract
from webhook.admission.request import AdmissionRequest, parse_admission_review

FIXTURES = Path(__file__).parent / "fixtures"
AUDITOR = contract.auditor_identity()
DEPLOYMENT_TRACKING = "driftwarden-system/web-app:apps/Deployment:production/web"
USER_GROUPS = ("developers", "system:authenticated")


def fixture(name: str) -> dict[str, Any]:
    """A JSON fixture from tests/webhook/fixtures, freshly loaded (tests may mutate it)."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def deployment() -> dict[str, Any]:
    """The Deployment as stored after the auditor's server-side apply."""
    return fixture("deployment-applied.json")


def changed(obj: dict[str, Any], mutate: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """A deep copy of ``obj`` after ``mutate`` edited it in place."""
    copied = copy.deepcopy(obj)
    mutate(copied)
    return copied


def container(obj: dict[str, Any]) -> dict[str, Any]:
    """The ``web`` container of a Deployment-shaped object."""
    found: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return found


def admission_review(
    *,
    operation: str = "UPDATE",
    old: object = None,
    new: object = None,
    user: str = "jane",
    groups: Sequence[str] = USER_GROUPS,
    sub_resource: str = "",
    kind: tuple[str, str, str] = ("apps", "v1", "Deployment"),
    resource: tuple[str, str, str] = ("apps", "v1", "deployments"),
    name: str = "web",
    namespace: str = "production",
    dry_run: bool = False,
    uid: str = "8c5b6f5e-0000-4000-8000-000000000001",
) -> dict[str, Any]:
    """An admission.k8s.io/v1 AdmissionReview request document."""
    request: dict[str, Any] = {
        "uid": uid,
        "kind": dict(zip(("group", "version", "kind"), kind, strict=True)),
        "resource": dict(zip(("group", "version", "resource"), resource, strict=True)),
        "name": name,
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": user, "groups": list(groups)},
        "object": new,
        "oldObject": old,
        "dryRun": dry_run,
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def request(**kwargs: Any) -> AdmissionRequest:
    """``admission_review(**kwargs)`` parsed."""
    return parse_admission_review(admission_review(**kwargs))


def update(new: dict[str, Any], *, old: dict[str, Any] | None = None, **kwargs: Any) -> AdmissionRequest:
    """An UPDATE from ``old`` (default: the applied Deployment) to ``new``."""
    return request(operation="UPDATE", old=deployment() if old is None else old, new=new, **kwargs)


def fixture_request(name: str, **changes: Any) -> AdmissionRequest:
    """A stored AdmissionReview fixture parsed, after overriding request fields with ``changes``."""
    review = fixture(name)
    review["request"].update(changes)
    return parse_admission_review(review)


def secret(data: dict[str, str], *, mode: str = "enforce") -> dict[str, Any]:
    """Secret ``production/db`` as the auditor applied it, with ``data`` (Git owns data.password)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "production",
            "annotations": {
                "driftwarden.io/tracking-id": "driftwarden-system/web-app:/Secret:production/db",
                "driftwarden.io/guard": mode,
            },
            "managedFields": [
                {
                    "apiVersion": "v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {"f:password": {}, 'k:{"tok3n":1}': {}}, "f:type": {}},
                    "manager": "driftwarden",
                    "operation": "Apply",
                }
            ],
        },
        "data": data,
        "type": "Opaque",
    }
