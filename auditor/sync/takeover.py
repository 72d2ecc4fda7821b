"""Strict self-heal: take over the fields kubectl wrote, so the next apply removes what Git does not have.

Server-side apply only removes a field when the applying manager owned it and the new config leaves it out.
A field added by ``kubectl edit``/``patch``/``label``/``apply`` (client-side) belongs to a kubectl manager,
so a plain heal leaves it in place. As Flux's kustomize-controller does, strict self-heal first renames
those managers' entries in managedFields to driftwarden's own Apply entry (merging the field sets), so the
following apply prunes every field Git does not declare. Pure: managedFields in, a JSON patch out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftwarden import contract

STRICT_OPTION = "StrictSelfHeal"
KUBECTL_MANAGERS = frozenset(
    {
        "kubectl",
        "kubectl-edit",
        "kubectl-patch",
        "kubectl-label",
        "kubectl-annotate",
        "kubectl-set",
        "kubectl-client-side-apply",
        "before-first-apply",
    }
)


def _entries(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    fields = (obj.get("metadata") or {}).get("managedFields") or []
    return [dict(e) for e in fields if isinstance(e, Mapping)]


def _taken(entry: Mapping[str, Any]) -> bool:
    return (
        entry.get("manager") in KUBECTL_MANAGERS
        and entry.get("operation") == "Update"
        and not entry.get("subresource")
    )


def kubectl_managers(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The kubectl managers (Update, main resource) that own fields of ``obj``, sorted."""
    return tuple(sorted({str(e["manager"]) for e in _entries(obj) if _taken(e)}))


def merge_fields(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    """The union of two fieldsV1 tries."""
    merged: dict[str, Any] = {k: v for k, v in left.items()}
    for key, value in right.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_fields(merged[key], value)
        else:
            merged.setdefault(key, dict(value) if isinstance(value, Mapping) else value)
    return merged


def takeover_patch(obj: Mapping[str, Any], *, manager: str = contract.FIELD_MANAGER) -> list[dict[str, Any]]:
    """A JSON patch giving ``manager``'s Apply entry the fields of the kubectl managers; [] if none.

    Entries whose apiVersion differs from ``manager``'s Apply entry are left alone: merging field sets of
    two versions could name fields the other version does not have.
    """
    entries = _entries(obj)
    ours = next((e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"), None)
    version = (ours or {}).get("apiVersion") or obj.get("apiVersion")
    taken = [e for e in entries if _taken(e) and e.get("apiVersion") == version]
    if not taken:
        return []
    fields: dict[str, Any] = dict((ours or {}).get("fieldsV1") or {})
    for entry in taken:
        fields = merge_fields(fields, entry.get("fieldsV1") or {})
    owner = {**(ours or {}), "manager": manager, "operation": "Apply", "apiVersion": version,
             "fieldsType": "FieldsV1", "fieldsV1": fields}  # fmt: skip
    kept = [e for e in entries if e is not ours and not any(e is t for t in taken)]
    return [
        {
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": (obj.get("metadata") or {}).get("resourceVersion"),
        },
        {"op": "replace", "path": "/metadata/managedFields", "value": [*kept, owner]},
    ]
