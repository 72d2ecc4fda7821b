"""GitOps tool profiles: how the webhook recognises an object a GitOps tool manages, and who that tool is.

Role: data (three built-in profiles) plus the pure functions that read a profile's tracking marker from an
object's metadata. A tracking annotation only proves ownership when it names the object itself: the
Deployment controller copies a Deployment's annotations onto its ReplicaSets, and those copies must not
make the ReplicaSets look managed (Argo CD checks the same way).

This module must not do I/O, log, await, or read settings from the environment; it decides nothing about
admission beyond "managed by which app".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal

from driftwarden import contract
from driftwarden.errors import ConfigError
from driftwarden.fieldsv1 import Path
from driftwarden.objectref import ResourceKey
from webhook.admission.objects import string_map

TrackingFormat = Literal["driftwarden", "argocd", "none"]


@dataclass(frozen=True)
class TrackingRef:
    """What a tracking annotation says: the owning app and the object it was written for."""

    app: str
    group: str
    kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class Ownership:
    """Proof that an object is managed: which app owns it and which marker said so."""

    app: str
    marker: str


@dataclass(frozen=True)
class Profile:
    """One GitOps tool: its tracking marker, its server-side-apply field managers and its identities.

    ``tracking_annotation`` (parsed per ``tracking_format``) proves ownership when it names the object.
    ``app_labels`` are (namespace label, name label) pairs whose presence alone proves ownership (Flux
    has no tracking annotation). ``marker_labels`` are labels that belong to the marker: changing them
    is tampering even where they do not prove ownership on their own.
    """

    name: str
    tracking_annotation: str | None
    tracking_format: TrackingFormat
    marker_labels: tuple[str, ...]
    app_labels: tuple[tuple[str, str], ...]
    managers: frozenset[str]
    default_identities: frozenset[str]


_FLUX_KUSTOMIZE = ("kustomize.toolkit.fluxcd.io/namespace", "kustomize.toolkit.fluxcd.io/name")
_FLUX_HELM = ("helm.toolkit.fluxcd.io/namespace", "helm.toolkit.fluxcd.io/name")

DRIFTWARDEN = Profile(
    name="driftwarden",
    tracking_annotation=contract.ANNOTATION_TRACKING_ID,
    tracking_format="driftwarden",
    marker_labels=(contract.LABEL_APP,),
    app_labels=(),  # a copied label alone is not ownership (docs/design.md)
    managers=frozenset({contract.FIELD_MANAGER}),
    default_identities=frozenset({contract.auditor_identity()}),
)

ARGOCD = Profile(
    name="argocd",
    tracking_annotation="argocd.argoproj.io/tracking-id",
    tracking_format="argocd",
    marker_labels=(),
    app_labels=(),
    managers=frozenset({"argocd-controller", "argocd-application-controller"}),
    default_identities=frozenset({"system:serviceaccount:argocd:argocd-application-controller"}),
)

FLUX = Profile(
    name="flux",
    tracking_annotation=None,
    tracking_format="none",
    marker_labels=(*_FLUX_KUSTOMIZE, *_FLUX_HELM),
    app_labels=(_FLUX_KUSTOMIZE, _FLUX_HELM),
    managers=frozenset({"kustomize-controller", "helm-controller"}),
    default_identities=frozenset(
        {
            "system:serviceaccount:flux-system:kustomize-controller",
            "system:serviceaccount:flux-system:helm-controller",
        }
    ),
)

PROFILES: Mapping[str, Profile] = {p.name: p for p in (DRIFTWARDEN, ARGOCD, FLUX)}


def get_profile(name: str) -> Profile:
    """The built-in profile called ``name``; ConfigError naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(PROFILES))
        raise ConfigError(f"unknown GitOps profile {name!r}; known profiles: {known}") from None


def parse_tracking(profile: Profile, value: str) -> TrackingRef | None:
    """Parse a tracking annotation value in the profile's format; None when it has another shape."""
    if profile.tracking_format == "driftwarden":
        tid = contract.parse_tracking_id(value)
        if tid is None:
            return None
        return TrackingRef(tid.app, tid.group, tid.kind, tid.namespace, tid.name)
    if profile.tracking_format == "argocd":
        return _parse_argocd(value)
    return None


def _parse_argocd(value: str) -> TrackingRef | None:
    # Argo CD writes ``<app>:<group>/<Kind>:<namespace>/<name>``; ``<app>`` is ``<ns>_<name>`` for
    # Applications outside Argo CD's own namespace. No part can contain ':' in Kubernetes names.
    parts = value.split(":")
    if len(parts) != 3:
        return None
    app, group_kind, obj = parts
    group, sep1, kind = group_kind.partition("/")
    namespace, sep2, name = obj.partition("/")
    if not (sep1 and sep2 and app and kind and name):
        return None
    return TrackingRef(app, group, kind, namespace, name)


def ownership(
    profile: Profile, metadata: object, *, ref: ResourceKey, match_kind: bool = True
) -> Ownership | None:
    """Who manages the object whose ``metadata`` this is, by the profile's marker; None if nobody.

    ``match_kind=False`` checks only namespace and name, for a subresource (a Scale) whose request
    does not say the parent's kind.
    """
    if not isinstance(metadata, Mapping):
        return None
    annotations = string_map(metadata.get("annotations"))
    found = _by_annotation(profile, annotations, ref=ref, match_kind=match_kind)
    return found or _by_labels(profile, string_map(metadata.get("labels")))


def _by_annotation(
    profile: Profile, annotations: Mapping[str, str], *, ref: ResourceKey, match_kind: bool
) -> Ownership | None:
    key = profile.tracking_annotation
    if key is None or key not in annotations:
        return None
    tracked = parse_tracking(profile, annotations[key])
    if tracked is None or not _names_object(tracked, ref, match_kind=match_kind):
        return None
    return Ownership(app=tracked.app, marker=f"annotation {key}")


def _names_object(tracked: TrackingRef, ref: ResourceKey, *, match_kind: bool) -> bool:
    if (tracked.namespace, tracked.name) != (ref.namespace, ref.name):
        return False
    return not match_kind or (tracked.group, tracked.kind) == (ref.group, ref.kind)


def _by_labels(profile: Profile, labels: Mapping[str, str]) -> Ownership | None:
    for namespace_key, name_key in profile.app_labels:
        name = labels.get(name_key, "")
        if name:
            namespace = labels.get(namespace_key, "")
            app = f"{namespace}/{name}" if namespace else name
            return Ownership(app=app, marker=f"label {name_key}")
    return None


@cache  # a handful of profiles, asked once per review each
def protected_paths(profile: Profile) -> tuple[Path, ...]:
    """Metadata paths only the GitOps identity may change: the tracking marker, guard mode and allow list."""
    paths: list[Path] = []
    if profile.tracking_annotation:
        paths.append(("f:metadata", "f:annotations", f"f:{profile.tracking_annotation}"))
    paths.extend(("f:metadata", "f:labels", f"f:{key}") for key in profile.marker_labels)
    # The guard annotation sets how strictly this very object is guarded, so it is part of the marker;
    # so is the break-glass list stamped from the Application's spec.guard.allow.
    paths.append(("f:metadata", "f:annotations", f"f:{contract.ANNOTATION_GUARD}"))
    paths.append(("f:metadata", "f:annotations", f"f:{contract.ANNOTATION_GUARD_ALLOW}"))
    return tuple(paths)
