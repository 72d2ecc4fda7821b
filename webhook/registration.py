"""Validating and Mutating webhook configurations for driftwarden's webhook (pure builders).

Both configurations have a hook for whole objects, selected cheaply by the managed label (or, for a
profile whose marker is an annotation, by a CEL matchCondition on it). The mutating configuration also
has a hook for ``*/scale``: the API server sends scale requests as autoscaling/v1 Scale objects whose
metadata carries no labels (kube-apiserver's scaleFromDeployment copies only name, namespace, uid,
resourceVersion and creationTimestamp), so no label selector can match them. Only in the mutating
phase does the old Scale carry managedFields (converted from the parent's by the scale handler; the
validating phase rebuilds Scales without them), so that hook selects, in CEL, old Scales with a
managedFields entry of a GitOps manager, and the webhook denies there.

The mutating objects hook is called only where ``/mutate`` can change something: when the default mode is
``enforce``, an UPDATE in ``enforce`` mode by someone who is not break-glass, that leaves the drift stamp
as it was, gets no patch and is judged by ``/validate`` alone, so a CEL condition spares it the second
call (half the webhook calls of a guarded write; docs/benchmarks.md). The condition needs the webhook's
default mode and break-glass users and groups: ``webhook install`` takes the same flags as ``serve``, and
``/validate`` reports a warned edit the mutating call missed (webhook.admission.patches.unstamped).
This module only builds dicts; installing them is ``webhook.install``'s job.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from driftwarden import contract
from webhook.admission.profiles import Profile

VALIDATING_NAME = "driftwarden-guard"
MUTATING_NAME = "driftwarden-flag"


@dataclass(frozen=True)
class Endpoint:
    """Where the API server reaches the webhook: a URL base, or an in-cluster Service."""

    ca_bundle: bytes
    url: str | None = None
    service_namespace: str | None = None
    service_name: str | None = None
    service_port: int = 443

    def client_config(self, path: str) -> dict[str, Any]:
        config: dict[str, Any] = {"caBundle": base64.b64encode(self.ca_bundle).decode("ascii")}
        if self.url is not None:
            config["url"] = self.url.rstrip("/") + path
        else:
            config["service"] = {
                "namespace": self.service_namespace,
                "name": self.service_name,
                "path": path,
                "port": self.service_port,
            }
        return config


@dataclass(frozen=True)
class Selection:
    """Which requests reach the webhook."""

    label_keys: tuple[str, ...] = ()
    annotation_keys: tuple[str, ...] = ()
    skip_users: tuple[str, ...] = ()
    gitops_managers: tuple[str, ...] = ()
    excluded_namespaces: tuple[str, ...] = ()
    timeout_seconds: int = 5
    failure_policy: str = "Fail"
    default_mode: str = "enforce"
    breakglass_users: tuple[str, ...] = ()
    breakglass_groups: tuple[str, ...] = ()


def _cel_string_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values) + "]"


def _has_key(var: str, field: str, keys: Sequence[str]) -> str:
    checks = " || ".join(f"'{k}' in {var}.metadata.{field}" for k in keys)
    return f"({var} != null && has({var}.metadata.{field}) && ({checks}))"


def _marker_condition(field: str, keys: Sequence[str]) -> dict[str, str]:
    return {
        "name": "carries-tracking-marker",
        "expression": f"{_has_key('object', field, keys)} || {_has_key('oldObject', field, keys)}",
    }


def match_conditions(selection: Selection) -> list[dict[str, str]]:
    """CEL conditions: skip the GitOps identities; require the marker where no objectSelector can."""
    conditions = []
    if selection.skip_users:
        conditions.append(
            {
                "name": "not-gitops-identity",
                "expression": f"!(request.userInfo.username in {_cel_string_list(selection.skip_users)})",
            }
        )
    if len(selection.label_keys) > 1:
        # objectSelector ANDs its requirements; "any of these labels" needs CEL.
        conditions.append(_marker_condition("labels", selection.label_keys))
    elif not selection.label_keys and selection.annotation_keys:
        conditions.append(_marker_condition("annotations", selection.annotation_keys))
    return conditions


def scale_conditions(selection: Selection) -> list[dict[str, str]]:
    """CEL conditions of the scale hook: skip GitOps identities; only Scales a GitOps manager owns."""
    conditions = match_conditions(Selection(skip_users=selection.skip_users))
    managers = _cel_string_list(selection.gitops_managers)
    conditions.append(
        {
            "name": "gitops-managed-scale",
            "expression": "oldObject != null && has(oldObject.metadata.managedFields) && "
            f"oldObject.metadata.managedFields.exists(m, has(m.manager) && m.manager in {managers})",
        }
    )
    return conditions


def _annotated(var: str, key: str) -> str:
    return f"(has({var}.metadata.annotations) && '{key}' in {var}.metadata.annotations)"


def stamp_conditions(selection: Selection) -> list[dict[str, str]]:
    """CEL conditions of the mutating objects hook: only requests ``/mutate`` may patch.

    With a default mode other than ``enforce`` every request may be stamped: none. Otherwise a CREATE,
    and an UPDATE unless all of: the stored object is in ``enforce`` mode (no ``driftwarden.io/guard``
    annotation, or exactly ``enforce``: any other spelling is left to the webhook), it carries no
    ``driftwarden.io/guard-allow`` (the Application's break-glass), the user is not a break-glass user or
    in a break-glass group, and the drift stamp is unchanged. A DELETE never gets a patch. Every term is
    guarded so that nothing evaluates to an error (which failurePolicy would turn into a refusal).
    """
    if selection.default_mode != "enforce":
        return []
    guard, allow, drift = (
        contract.ANNOTATION_GUARD,
        contract.ANNOTATION_GUARD_ALLOW,
        contract.ANNOTATION_DRIFT,
    )
    reasons = [
        f"({_annotated('oldObject', guard)} && oldObject.metadata.annotations['{guard}'] != 'enforce')",
        _annotated("oldObject", allow),
        f"{_annotated('object', drift)} != {_annotated('oldObject', drift)}",
        f"({_annotated('object', drift)} && "
        f"object.metadata.annotations['{drift}'] != oldObject.metadata.annotations['{drift}'])",
    ]
    if selection.breakglass_users:
        reasons.append(f"request.userInfo.username in {_cel_string_list(selection.breakglass_users)}")
    if selection.breakglass_groups:
        groups = _cel_string_list(selection.breakglass_groups)
        reasons.append(f"(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in {groups}))")
    update = " || ".join(reasons)
    return [
        {
            "name": "may-stamp",
            "expression": f"request.operation == 'CREATE' || (request.operation == 'UPDATE' && ({update}))",
        }
    ]


def _object_selector(selection: Selection) -> dict[str, Any]:
    if len(selection.label_keys) != 1:
        return {}  # none, or several alternatives: matchConditions select instead
    return {"matchExpressions": [{"key": selection.label_keys[0], "operator": "Exists"}]}


def _namespace_selector(selection: Selection) -> dict[str, Any]:
    if not selection.excluded_namespaces:
        return {}
    return {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": list(selection.excluded_namespaces),
            }
        ]
    }


def _webhook(
    name: str,
    path: str,
    *,
    endpoint: Endpoint,
    selection: Selection,
    resources: list[str],
    selective: bool,
    extra: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    hook: dict[str, Any] = {
        "name": name,
        "clientConfig": endpoint.client_config(path),
        "rules": [
            {
                "apiGroups": ["*"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "resources": resources,
                "scope": "*",
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": selection.timeout_seconds,
        "failurePolicy": selection.failure_policy,
        "matchPolicy": "Equivalent",
        "namespaceSelector": _namespace_selector(selection),
        "objectSelector": _object_selector(selection) if selective else {},
    }
    conditions = (
        match_conditions(selection)
        if selective
        else match_conditions(Selection(skip_users=selection.skip_users))
    ) + (extra or [])
    if conditions:
        hook["matchConditions"] = conditions
    return hook


def _objects_hook(
    name: str,
    path: str,
    *,
    endpoint: Endpoint,
    selection: Selection,
    extra: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return _webhook(
        name, path, endpoint=endpoint, selection=selection, resources=["*"], selective=True, extra=extra
    )


def _scale_hook(*, endpoint: Endpoint, selection: Selection) -> dict[str, Any]:
    return _webhook("scale.guard.driftwarden.io", "/mutate", endpoint=endpoint, selection=selection,
                    resources=["*/scale"], selective=False)  # fmt: skip


def validating_configuration(*, endpoint: Endpoint, selection: Selection) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration that denies (enforce) or warns about out-of-band edits."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": VALIDATING_NAME, "labels": {"app.kubernetes.io/name": "driftwarden"}},
        # Scales reach the validating phase without managedFields; the mutating configuration's
        # scale hook judges them.
        "webhooks": [
            _objects_hook("objects.guard.driftwarden.io", "/validate", endpoint=endpoint, selection=selection)
        ],
    }


def mutating_configuration(*, endpoint: Endpoint, selection: Selection) -> dict[str, Any]:
    """The MutatingWebhookConfiguration: stamps ``driftwarden.io/drift`` in warn mode, and guards scale."""
    config: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": MUTATING_NAME, "labels": {"app.kubernetes.io/name": "driftwarden"}},
        "webhooks": [
            _objects_hook(
                "objects.flag.driftwarden.io",
                "/mutate",
                endpoint=endpoint,
                selection=selection,
                extra=stamp_conditions(selection),
            ),
            _scale_hook(endpoint=endpoint, selection=selection),
        ],
    }
    for hook in config["webhooks"]:
        # Another mutating webhook may change the object after us; ask to be called again so the
        # drift stamp reflects the final object.
        hook["reinvocationPolicy"] = "IfNeeded"
    return config


def selection_for(
    profile: Profile,
    *,
    skip_users: Sequence[str],
    excluded_namespaces: Sequence[str] = (),
    timeout_seconds: int = 5,
    failure_policy: str = "Fail",
    default_mode: str = "enforce",
    breakglass_users: Sequence[str] = (),
    breakglass_groups: Sequence[str] = (),
) -> Selection:
    """What reaches the webhook for a GitOps profile: its marker labels, else its tracking annotation.

    ``default_mode`` and the break-glass users and groups must be those ``webhook serve`` is given: they
    say which requests the mutating call may skip (stamp_conditions).
    """
    labels = tuple(name for _ns, name in profile.app_labels) or profile.marker_labels
    annotations = (profile.tracking_annotation,) if profile.tracking_annotation else ()
    return Selection(
        label_keys=labels,
        annotation_keys=annotations,
        skip_users=tuple(sorted(skip_users)),
        gitops_managers=tuple(sorted(profile.managers)),
        excluded_namespaces=tuple(excluded_namespaces),
        timeout_seconds=timeout_seconds,
        failure_policy=failure_policy,
        default_mode=default_mode,
        breakglass_users=tuple(sorted(breakglass_users)),
        breakglass_groups=tuple(sorted(breakglass_groups)),
    )
