"""Sync hooks as Argo CD defines them: which rendered objects are hooks, their types, waves, delete policies.

An object is a hook when it has ``argocd.argoproj.io/hook`` (``PreSync``, ``Sync``, ``PostSync``,
``SyncFail``, or ``Skip``, comma-separated for several), or else Helm's ``helm.sh/hook``, mapped as Argo CD
maps it: ``pre-install``/``pre-upgrade`` → PreSync, ``post-install``/``post-upgrade`` → PostSync; every other
Helm hook (tests, deletes, rollbacks) has no Argo CD equivalent and is skipped, as ``crd-install`` objects are
ordinary resources. Delete policies come from ``argocd.argoproj.io/hook-delete-policy`` or Helm's
``helm.sh/hook-delete-policy``; BeforeHookCreation is the default, as in Argo CD. The wave is
``argocd.argoproj.io/sync-wave``, else Helm's ``helm.sh/hook-weight`` for Helm hooks, else 0.

Hooks are not resources of the Application: they carry neither its ``driftwarden.io/app`` label nor a
tracking id (so they are never compared, healed or pruned) but a ``driftwarden.io/hook-of`` label and a
``driftwarden.io/hook`` annotation naming the Application and the hook, by which an earlier run of the same
hook is found and deleted (BeforeHookCreation). ``metadata.generateName`` is accepted for hooks only.
Pure: plain manifests in, frozen dataclasses out; no I/O, no logging.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from auditor.health import Health
from auditor.objects import AppKey, ClusterScoped, annotations_of, fill_namespace
from driftwarden.errors import RenderError
from driftwarden.objectref import ObjectRef

HookType = Literal["PreSync", "Sync", "PostSync", "SyncFail", "Skip"]
DeletePolicy = Literal["HookSucceeded", "HookFailed", "BeforeHookCreation"]
HookPhase = Literal["Running", "Succeeded", "Failed"]

ARGOCD_HOOK = "argocd.argoproj.io/hook"
ARGOCD_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
ARGOCD_SYNC_WAVE = "argocd.argoproj.io/sync-wave"
HELM_HOOK = "helm.sh/hook"
HELM_DELETE_POLICY = "helm.sh/hook-delete-policy"
HELM_WEIGHT = "helm.sh/hook-weight"
HOOK_LABEL = "driftwarden.io/hook-of"
HOOK_ANNOTATION = "driftwarden.io/hook"

HOOK_TYPES: tuple[HookType, ...] = ("PreSync", "Sync", "PostSync", "SyncFail", "Skip")
HELM_HOOKS: Mapping[str, HookType] = {
    "pre-install": "PreSync",
    "pre-upgrade": "PreSync",
    "post-install": "PostSync",
    "post-upgrade": "PostSync",
}
"""Helm hooks Argo CD runs; any other ``helm.sh/hook`` value (test, pre-delete...) is skipped."""
HELM_POLICIES: Mapping[str, DeletePolicy] = {
    "hook-succeeded": "HookSucceeded",
    "hook-failed": "HookFailed",
    "before-hook-creation": "BeforeHookCreation",
}
DELETE_POLICIES: tuple[DeletePolicy, ...] = ("HookSucceeded", "HookFailed", "BeforeHookCreation")


@dataclass(frozen=True)
class Hook:
    """One hook to run: its manifest (namespaced, stamped), types, wave and delete policies.

    ``ref.name`` is the object's name, or its ``generateName`` when the API server names it.
    """

    ref: ObjectRef
    manifest: Mapping[str, Any]
    types: tuple[HookType, ...]
    wave: int
    policies: tuple[DeletePolicy, ...]
    generated: bool = False

    @property
    def identity(self) -> str:
        """The value of the ``driftwarden.io/hook`` annotation: the hook, whatever name a run got."""
        return str((annotations_of(self.manifest)).get(HOOK_ANNOTATION, ""))


@dataclass(frozen=True)
class Split:
    """A render split into ordinary resources, hooks, and the objects skipped (``Skip``, Helm tests)."""

    resources: tuple[dict[str, Any], ...]
    hooks: tuple[Hook, ...]
    skipped: tuple[ObjectRef, ...] = ()


def _words(value: object) -> list[str]:
    return [w.strip() for w in value.split(",") if w.strip()] if isinstance(value, str) else []


def is_hook(manifest: Mapping[str, Any]) -> bool:
    """True for an object annotated as an Argo CD or a Helm hook (``crd-install`` alone is no hook)."""
    annotations = annotations_of(manifest)
    if _words(annotations.get(ARGOCD_HOOK)):
        return True
    return any(w != "crd-install" for w in _words(annotations.get(HELM_HOOK)))


def _known(
    annotations: Mapping[str, Any], key: str, known: tuple[str, ...], what: str, where: str
) -> list[str]:
    """The words of Argo CD's annotation ``key``; a ``RenderError`` naming any that is not ``known``."""
    words = _words(annotations.get(key))
    unknown = [w for w in words if w not in known]
    if unknown:
        raise RenderError(f"{where}: {key} {', '.join(unknown)} is not a {what} (known: {', '.join(known)})")
    return words


def hook_types(manifest: Mapping[str, Any], *, where: str = "") -> tuple[HookType, ...]:
    """The hook types of ``manifest``: Argo CD's annotation wins over Helm's; () for an ordinary object.

    A Helm hook Argo CD does not run (test, delete, rollback) is ``("Skip",)``. An unknown Argo CD hook
    type (``PostDelete`` too: not supported) is a ``RenderError`` naming the object.
    """
    annotations = annotations_of(manifest)
    if argo := _known(annotations, ARGOCD_HOOK, HOOK_TYPES, "hook type", where):
        return tuple(t for t in HOOK_TYPES if t in argo)
    helm = [w for w in _words(annotations.get(HELM_HOOK)) if w != "crd-install"]
    if not helm:
        return ()
    mapped = tuple(dict.fromkeys(HELM_HOOKS[w] for w in helm if w in HELM_HOOKS))
    return mapped or ("Skip",)


def delete_policies(manifest: Mapping[str, Any], *, where: str = "") -> tuple[DeletePolicy, ...]:
    """The delete policies of a hook; BeforeHookCreation when none is given (Argo CD's default)."""
    annotations = annotations_of(manifest)
    if argo := _known(annotations, ARGOCD_DELETE_POLICY, DELETE_POLICIES, "delete policy", where):
        return tuple(p for p in DELETE_POLICIES if p in argo)
    helm = [HELM_POLICIES[w] for w in _words(annotations.get(HELM_DELETE_POLICY)) if w in HELM_POLICIES]
    return tuple(dict.fromkeys(helm)) or ("BeforeHookCreation",)


def wave_of(manifest: Mapping[str, Any], *, where: str = "") -> int:
    """``argocd.argoproj.io/sync-wave`` (a Helm hook: else ``helm.sh/hook-weight``); 0 when unset."""
    annotations = annotations_of(manifest)
    value = annotations.get(ARGOCD_SYNC_WAVE)
    key = ARGOCD_SYNC_WAVE
    if value is None and _words(annotations.get(HELM_HOOK)):
        value, key = annotations.get(HELM_WEIGHT), HELM_WEIGHT
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise RenderError(f"{where}: {key} must be an integer, got {value!r}") from exc


def hook_ref(manifest: Mapping[str, Any]) -> tuple[ObjectRef, bool]:
    """The hook's reference (named by ``generateName`` when it has no name) and whether it is generated."""
    meta = manifest.get("metadata") or {}
    name, generate = meta.get("name"), meta.get("generateName")
    api_version, kind = str(manifest.get("apiVersion", "")), str(manifest.get("kind", ""))
    group, _, version = api_version.rpartition("/")
    namespace = str(meta.get("namespace") or "")
    if isinstance(name, str) and name:
        return ObjectRef(group, version, kind, namespace, name), False
    return ObjectRef(group, version, kind, namespace, str(generate or "")), True


def stamp_hook(manifest: Mapping[str, Any], *, app: AppKey, ref: ObjectRef) -> dict[str, Any]:
    """A copy of a hook carrying the hook label and identity annotation (never the resource contract's)."""
    out = copy.deepcopy(dict(manifest))
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), HOOK_LABEL: app.name}
    identity = f"{app}:{ref.group}/{ref.kind}:{ref.namespace}/{ref.name}"
    meta["annotations"] = {**(meta.get("annotations") or {}), HOOK_ANNOTATION: identity}
    return out


def _where(manifest: Mapping[str, Any]) -> str:
    meta = manifest.get("metadata") or {}
    return f"{manifest.get('kind')} {meta.get('name') or meta.get('generateName') or '?'}"


def _placed(manifest: Mapping[str, Any], namespace: str, cluster_scoped: ClusterScoped) -> dict[str, Any]:
    """``fill_namespace`` for a hook that may have only a ``generateName``."""
    meta = manifest.get("metadata") or {}
    if meta.get("name"):
        return fill_namespace(manifest, namespace, cluster_scoped=cluster_scoped)
    named = {**manifest, "metadata": {**meta, "name": meta.get("generateName")}}
    placed = fill_namespace(named, namespace, cluster_scoped=cluster_scoped)
    placed["metadata"].pop("name")
    return placed


def split_render(
    manifests: Iterable[Mapping[str, Any]],
    *,
    app: AppKey,
    namespace: str,
    cluster_scoped: ClusterScoped,
) -> Split:
    """Separate hooks from resources; hooks get the destination ``namespace`` and the hook stamp.

    ``generateName`` without a name is a ``RenderError`` on anything but a hook (only a hook is created
    anew by each sync; a resource must keep its name to be compared and pruned).
    """
    resources: list[dict[str, Any]] = []
    hooks: list[Hook] = []
    skipped: list[ObjectRef] = []
    for manifest in manifests:
        where = _where(manifest)
        types = hook_types(manifest, where=where)
        if not types:
            if not (manifest.get("metadata") or {}).get("name"):
                raise RenderError(f"{where}: has no metadata.name (generateName is accepted for hooks only)")
            wave_of(manifest, where=where)  # a malformed wave fails the render, not the sync
            resources.append(dict(manifest))
            continue
        placed = _placed(manifest, namespace, cluster_scoped)
        ref, generated = hook_ref(placed)
        if "Skip" in types:
            skipped.append(ref)
            continue
        stamped = stamp_hook(placed, app=app, ref=ref)
        hooks.append(
            Hook(ref, stamped, types, wave_of(manifest, where=where), delete_policies(manifest, where=where),
                 generated)
        )  # fmt: skip
    return Split(tuple(resources), tuple(hooks), tuple(skipped))


def hook_phase(health: Health) -> HookPhase:
    """A hook's phase from its live health: a Job or Pod is done when Healthy (complete) or Degraded
    (failed); any other kind is done once it is Healthy, as gitops-engine judges hooks."""
    if health.status == "Healthy":
        return "Succeeded"
    if health.status == "Degraded":
        return "Failed"
    return "Running"


def deleted_after(hook: Hook, phase: HookPhase) -> bool:
    """Whether a finished hook is deleted now (HookSucceeded after success, HookFailed after failure)."""
    return (phase == "Succeeded" and "HookSucceeded" in hook.policies) or (
        phase == "Failed" and "HookFailed" in hook.policies
    )
