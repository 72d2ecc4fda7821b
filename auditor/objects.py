"""The auditor's side of resource identity: tracking ids, stamping and sync options (``ObjectRef`` and
``ResourceKey`` themselves are the kernel's, ``driftwarden.objectref``).

Pure helpers over plain manifest dicts. This module must not do I/O, log, talk to Kubernetes or mutate
its inputs: every function that changes a manifest returns a new dict (``stamp_copy`` stamps the copy its
caller has just made, to spare a second deep copy per object and pass).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from driftwarden.contract import (
    ANNOTATION_COMPARE_OPTIONS,
    ANNOTATION_GUARD,
    ANNOTATION_GUARD_ALLOW,
    ANNOTATION_SYNC_OPTIONS,
    ANNOTATION_TRACKING_ID,
    GUARD_MODES,
    LABEL_APP,
    GuardAllow,
    TrackingId,
    parse_tracking_id,
)
from driftwarden.errors import PermanentError
from driftwarden.objectref import ObjectRef

Manifest = Mapping[str, Any]
GroupKind = tuple[str, str]
ClusterScoped = Collection[GroupKind] | Callable[[str, str], bool]

MAX_LABEL_VALUE = 63
ARGOCD_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
ARGOCD_COMPARE_OPTIONS = "argocd.argoproj.io/compare-options"

WELL_KNOWN_CLUSTER_SCOPED: frozenset[GroupKind] = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("node.k8s.io", "RuntimeClass"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("policy", "PodSecurityPolicy"),
        ("resource.k8s.io", "DeviceClass"),
    }
)
"""Built-in cluster-scoped kinds; adapters with API discovery pass a predicate that also knows CRDs."""


@dataclass(frozen=True)
class AppKey:
    """The Application that owns objects: ``<namespace>/<name>``."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def tracking_id(ref: ObjectRef, *, app: AppKey) -> TrackingId:
    """The contract's tracking id that says ``app`` owns the object ``ref``."""
    return TrackingId(app.namespace, app.name, ref.group, ref.kind, ref.namespace, ref.name)


def annotations_of(manifest: Manifest) -> Mapping[str, str]:
    """``metadata.annotations`` or an empty mapping."""
    meta = manifest.get("metadata")
    found = meta.get("annotations") if isinstance(meta, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def tracking_owner(manifest: Manifest) -> TrackingId | None:
    """The parsed tracking-id annotation of ``manifest``, or None when absent or malformed."""
    value = annotations_of(manifest).get(ANNOTATION_TRACKING_ID)
    return parse_tracking_id(value) if isinstance(value, str) else None


def is_owned_by(manifest: Manifest, *, app: AppKey) -> bool:
    """True when the tracking id names ``app`` and this very object (a copied annotation is not ownership)."""
    found = tracking_owner(manifest)
    if found is None:
        return False
    return found == tracking_id(ObjectRef.from_manifest(manifest), app=app)


def stamp(
    manifest: Manifest, *, app: AppKey, guard_mode: str, allow: GuardAllow | None = None
) -> dict[str, Any]:
    """A copy of ``manifest`` carrying the app label, tracking-id and guard annotations of the contract,
    and the break-glass lists of ``spec.guard.allow`` when there are any (for the webhook to read)."""
    return stamp_copy(copy.deepcopy(dict(manifest)), app=app, guard_mode=guard_mode, allow=allow)


def stamp_copy(
    out: dict[str, Any], *, app: AppKey, guard_mode: str, allow: GuardAllow | None = None
) -> dict[str, Any]:
    """``stamp`` on ``out`` itself, a copy the caller has just made and owns (one deep copy, not two)."""
    if guard_mode not in GUARD_MODES:
        raise PermanentError(f"guard mode {guard_mode!r} is not one of {', '.join(GUARD_MODES)}")
    if len(app.name) > MAX_LABEL_VALUE:
        raise PermanentError(
            f"Application name {app.name!r} is longer than {MAX_LABEL_VALUE} characters and cannot be "
            f"used as the {LABEL_APP} label value"
        )
    ref = ObjectRef.from_manifest(out)
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), LABEL_APP: app.name}
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        ANNOTATION_TRACKING_ID: str(tracking_id(ref, app=app)),
        ANNOTATION_GUARD: guard_mode,
    }
    if allow is not None and (allow.users or allow.groups):
        meta["annotations"][ANNOTATION_GUARD_ALLOW] = allow.encode()
    return out


def _scope_predicate(cluster_scoped: ClusterScoped) -> Callable[[str, str], bool]:
    if callable(cluster_scoped):
        return cluster_scoped
    table = cluster_scoped
    return lambda group, kind: (group, kind) in table


def fill_namespace(
    manifest: Manifest,
    namespace: str,
    *,
    cluster_scoped: ClusterScoped = WELL_KNOWN_CLUSTER_SCOPED,
) -> dict[str, Any]:
    """A copy with ``namespace`` set on namespaced objects lacking one, and none on cluster-scoped ones.

    The API server clears metadata.namespace of cluster-scoped objects, so dropping it here keeps the
    reference equal to what the server stores. An empty ``namespace`` leaves namespaced objects alone.
    """
    ref = ObjectRef.from_manifest(manifest)
    out = copy.deepcopy(dict(manifest))
    meta = out.setdefault("metadata", {})
    if _scope_predicate(cluster_scoped)(ref.group, ref.kind):
        meta.pop("namespace", None)
    elif not meta.get("namespace") and namespace:
        meta["namespace"] = namespace
    return out


def parse_sync_options(value: str | Collection[str]) -> dict[str, str]:
    """``"Prune=false, Delete=false"`` (or a list of ``Key=Value``) as a dict; entries without ``=`` drop."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    options: dict[str, str] = {}
    for part in parts:
        key, sep, val = part.partition("=")
        if sep and key.strip():
            options[key.strip()] = val.strip()
    return options


def _options(manifest: Manifest, *keys: str) -> dict[str, str]:
    """The options of the annotations ``keys``, merged; the first key's value wins."""
    annotations = annotations_of(manifest)
    merged: dict[str, str] = {}
    for key in reversed(keys):
        value = annotations.get(key)
        merged.update(parse_sync_options(value) if isinstance(value, str) else {})
    return merged


def object_sync_options(manifest: Manifest) -> dict[str, str]:
    """The per-object opt-outs of ``driftwarden.io/sync-options`` and Argo CD's ``sync-options``."""
    return _options(manifest, ANNOTATION_SYNC_OPTIONS, ARGOCD_SYNC_OPTIONS)


def ignore_extraneous(manifest: Manifest) -> bool:
    """``IgnoreExtraneous`` in ``driftwarden.io/compare-options`` or Argo CD's ``compare-options``: an
    object that left Git (or never was in it) does not make its Application OutOfSync."""
    annotations = annotations_of(manifest)
    values = [annotations.get(k) for k in (ANNOTATION_COMPARE_OPTIONS, ARGOCD_COMPARE_OPTIONS)]
    words = {w.strip() for v in values if isinstance(v, str) for w in v.split(",")}
    return "IgnoreExtraneous" in words


def option_is_false(options: Mapping[str, str], key: str) -> bool:
    """True when ``options[key]`` says false (case-insensitive, so a ``Prune=False`` typo still protects)."""
    return options.get(key, "").lower() == "false"


def prune_disabled(manifest: Manifest) -> bool:
    """True when the object opts out of pruning with ``Prune=false``."""
    return option_is_false(object_sync_options(manifest), "Prune")


def delete_disabled(manifest: Manifest) -> bool:
    """True when the object stays when its Application is deleted (``Delete=false``)."""
    return option_is_false(object_sync_options(manifest), "Delete")
