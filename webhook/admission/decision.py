"""The admission decision of docs/design.md ("Webhook decision"): an AdmissionRequest in, a Decision out.

Role: apply the rules in order: unmanaged objects pass fast; the GitOps identity, break-glass users and
the built-in exemptions pass; then an UPDATE's changed field paths are checked against what the GitOps
field managers own, a DELETE or a spoofed CREATE of a managed object is a violation, and the guard mode
turns a violation into a denial, a warning or nothing. The field analysis of an UPDATE lives in
webhook.admission.changes and the text for people in webhook.admission.messages.

This module must not do I/O, log, await or read the clock, and ``decide`` must never raise: a bug here
must not turn into an API server error, so an unexpected exception becomes an allowing decision whose
reason ("internal-error") and audit annotation make it visible. Secret values never enter a Decision:
only field paths and names do, and paths of Secrets are cut to the data key (webhook.admission.messages).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from driftwarden import contract
from driftwarden.contract import guard_allow
from driftwarden.fieldsv1 import Path, manager_entries, value_at
from driftwarden.fieldtrie import owns
from driftwarden.objectref import ResourceKey
from webhook.admission import messages
from webhook.admission.changes import evaluate_update, git_owned, owners_from_git
from webhook.admission.messages import Finding, Reason, Subject
from webhook.admission.objects import metadata_of, string_map, text
from webhook.admission.profiles import Ownership, Profile, ownership, protected_paths
from webhook.admission.request import AdmissionRequest
from webhook.admission.settings import EVERYONE_GROUPS, DecisionSettings, GuardMode, parse_mode
from webhook.admission.stamps import StampChange, judge_stamp, stamp_change

NAMESPACE_CONTROLLER = "system:serviceaccount:kube-system:namespace-controller"
GARBAGE_COLLECTOR = "system:serviceaccount:kube-system:generic-garbage-collector"
EXEMPT_ON_DELETE = frozenset({NAMESPACE_CONTROLLER, GARBAGE_COLLECTOR})
REPLICAS: Path = ("f:spec", "f:replicas")
# Kubernetes' own components keep bookkeeping on objects (the Deployment controller's revision
# annotation, for one). Strict mode must not wedge them, so for these only Git-owned fields count.
_CONTROL_PLANE_PREFIXES = (
    "system:serviceaccount:kube-system:",
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:node:",
    "system:apiserver",
)

_STRICTNESS: Mapping[GuardMode, int] = {"off": 0, "warn": 1, "enforce": 2}


@dataclass(frozen=True)
class Decision:
    """The verdict on one admission request, with everything the server needs to answer and record it.

    ``mode`` is the guard mode that applied (the default mode when the rules stopped before reading
    one); ``violation`` says the request breaks a rule even when ``allowed`` (warn/off mode,
    break-glass); ``fields`` are rendered paths (at most messages.MAX_FIELDS of ``field_count``); ``app``
    is the owning Application (``ns/name``) or tracking value, empty when unknown. ``stamp_sent`` says
    the request itself wrote or removed the drift stamp, and ``stored_stamp`` is the stored object's,
    which the mutating webhook puts back unless it stamps its own.
    """

    allowed: bool
    mode: GuardMode
    reason: Reason
    violation: bool = False
    fields: tuple[str, ...] = ()
    message: str = ""
    warnings: tuple[str, ...] = ()
    audit_annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    app: str = ""
    field_count: int = 0
    stamp_sent: bool = False
    stored_stamp: str | None = None


def decide(
    request: AdmissionRequest, settings: DecisionSettings, *, parent: Mapping[str, Any] | None = None
) -> Decision:
    """Decide ``request`` under ``settings``; never raises.

    ``parent`` is the stored object of a ``scale`` request (the server fetches it: a Scale carries no
    labels, annotations or, for validating webhooks, managedFields); ignored for other requests.
    """
    try:
        return _decide(request, settings, parent)
    except Exception:  # the last line of defence; the rules below are written not to get here
        mode = parse_mode(getattr(settings, "default_mode", None)) or "enforce"
        return Decision(
            allowed=True,
            mode=mode,
            reason="internal-error",
            warnings=("driftwarden could not evaluate this request and allowed it",),
            audit_annotations=MappingProxyType({"decision": "error", "reason": "internal-error"}),
        )


def _decide(request: AdmissionRequest, settings: DecisionSettings, parent: object) -> Decision:
    if request.operation == "CONNECT" or request.sub_resource == "status":
        # CONNECT (exec, port-forward) edits nothing; status is the controllers' side of the object.
        reason: Reason = "connect" if request.operation == "CONNECT" else "status-subresource"
        return _pass(reason, settings.default_mode)
    if request.sub_resource == "scale":
        return _decide_scale(request, settings, parent)
    subject = _subject(request, settings.profile, new=request.operation == "CREATE")
    if subject is None:
        return _decide_unmanaged(request, settings)
    if request.user_name in settings.gitops_identities:
        return _pass("gitops-identity", settings.default_mode, app=subject.app)
    trusted = request.operation != "CREATE"
    mode = _mode(request.old_object if trusted else request.object, settings, trusted=trusted)
    exempt = _exempt(request, settings.profile)
    finding = Finding("exempt", violation=False) if exempt else _evaluate(request, settings)
    breakglass = not exempt and _breakglass(request, settings)
    finding, stamp = _judge_stamp(finding, request, mode=mode, subject=subject, breakglass=breakglass)
    return _finish(finding, mode=mode, subject=subject, breakglass=breakglass, audit=exempt, stamp=stamp)


def _judge_stamp(
    finding: Finding, request: AdmissionRequest, *, mode: GuardMode, subject: Subject, breakglass: bool
) -> tuple[Finding, StampChange]:
    """``finding`` with what the request did to the drift stamp judged (webhook.admission.stamps)."""
    stamp = stamp_change(request)
    warn = mode == "warn"
    judged = judge_stamp(
        finding, stamp, user=request.user_name, warn=warn, breakglass=breakglass, secret=subject.secret
    )
    return judged, stamp


def _exempt(request: AdmissionRequest, profile: Profile) -> bool:
    """The namespace controller may DELETE; the garbage collector only what Git gave every owner of.

    Anyone who may edit an object may add an owner to it; deleting that owner would then have the
    garbage collector delete the object. So it may only when each ownerReference was set by Git.
    """
    if request.operation != "DELETE" or request.user_name not in EXEMPT_ON_DELETE:
        return False
    return request.user_name == NAMESPACE_CONTROLLER or owners_from_git(request.old_object, profile)


def _decide_unmanaged(request: AdmissionRequest, settings: DecisionSettings) -> Decision:
    """An UPDATE that adds a tracking marker to an unmanaged object claims it, like a spoofed CREATE.

    A drift stamp sent to an unmanaged object is taken off again (by the mutating webhook).
    """
    if request.user_name in settings.gitops_identities:
        return _pass("unmanaged", settings.default_mode)
    claimed = _subject(request, settings.profile, new=True) if request.operation == "UPDATE" else None
    if claimed is None:
        return _pass("unmanaged", settings.default_mode, stamp=stamp_change(request))
    mode = _mode(request.object, settings, trusted=False)
    finding = Finding("spoofed-marker", violation=True, paths=_markers_present(request.object, settings))
    breakglass = _breakglass(request, settings)
    finding, stamp = _judge_stamp(finding, request, mode=mode, subject=claimed, breakglass=breakglass)
    return _finish(finding, mode=mode, subject=claimed, breakglass=breakglass, stamp=stamp)


def _pass(reason: Reason, mode: GuardMode, *, app: str = "", stamp: StampChange | None = None) -> Decision:
    stamp = stamp or StampChange()
    return Decision(
        allowed=True, mode=mode, reason=reason, app=app, stamp_sent=stamp.sent, stored_stamp=stamp.stored
    )


def _subject(request: AdmissionRequest, profile: Profile, *, new: bool) -> Subject | None:
    source = request.object if new else request.old_object
    if not isinstance(source, Mapping):
        return None
    ref = _object_ref(source, request)
    owner = ownership(profile, metadata_of(source), ref=ref)
    return _make_subject(ref, owner) if owner else None


def _object_ref(source: Mapping[str, Any], request: AdmissionRequest) -> ResourceKey:
    """Who ``source`` is; its own apiVersion/kind first, as the tracking marker names those."""
    meta = metadata_of(source)
    api_version, kind = text(source.get("apiVersion")), text(source.get("kind"))
    return ResourceKey(
        group=api_version.rpartition("/")[0] if api_version else request.kind.group,
        kind=kind or request.kind.kind,
        namespace=text(meta.get("namespace")) or request.namespace,
        name=text(meta.get("name")) or request.name,
    )


def _make_subject(ref: ResourceKey, owner: Ownership, *, suffix: str = "") -> Subject:
    where = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
    secret = ref.kind == "Secret" and ref.group == ""
    return Subject(display=f"{ref.kind}{suffix} {where}", app=owner.app, secret=secret)


def _mode(source: object, settings: DecisionSettings, *, trusted: bool) -> GuardMode:
    """The guard mode from ``source``'s annotation, else the default.

    Only a stored object is trusted. A new object's annotation is written by the requester, so it may
    make the guard stricter than the default but never weaker: a spoofer cannot say ``off``.
    """
    annotated = parse_mode(string_map(metadata_of(source).get("annotations")).get(contract.ANNOTATION_GUARD))
    if annotated is None:
        return settings.default_mode
    if trusted or _STRICTNESS[annotated] > _STRICTNESS[settings.default_mode]:
        return annotated
    return settings.default_mode


def _breakglass(request: AdmissionRequest, settings: DecisionSettings) -> bool:
    """The webhook's break-glass flags, or the Application's ``spec.guard.allow`` as stamped on the
    stored object (never the new one: a requester cannot allow themselves)."""
    if request.user_name in settings.breakglass_users:
        return True
    if not settings.breakglass_groups.isdisjoint(request.user_groups):
        return True
    allow = guard_allow(request.old_object) if request.operation != "CREATE" else None
    if allow is None:
        return False
    groups = set(allow.groups) - EVERYONE_GROUPS  # as for the flags: never (nearly) everyone
    return request.user_name in allow.users or not groups.isdisjoint(request.user_groups)


def _evaluate(request: AdmissionRequest, settings: DecisionSettings) -> Finding:
    if request.operation == "DELETE":
        return Finding("delete-managed", violation=True)
    if request.operation == "CREATE":
        return Finding("spoofed-marker", violation=True, paths=_markers_present(request.object, settings))
    return evaluate_update(
        request.old_object,
        request.object,
        profile=settings.profile,
        strict=_strict(request, settings),
        controller=request.user_name.startswith("system:"),
    )


def _strict(request: AdmissionRequest, settings: DecisionSettings) -> bool:
    return settings.strict and not request.user_name.startswith(_CONTROL_PLANE_PREFIXES)


def _markers_present(obj: object, settings: DecisionSettings) -> tuple[Path, ...]:
    return tuple(path for path in protected_paths(settings.profile) if value_at(obj, path)[0])


@dataclass(frozen=True)
class _ScaleView:
    """A scale request's managed parent: who it is, whether Git owns replicas, where the mode is."""

    subject: Subject
    git_owns_replicas: bool
    mode_source: object


def _decide_scale(request: AdmissionRequest, settings: DecisionSettings, parent: object) -> Decision:
    """``<resource>/scale``: checked like an edit of the parent's spec.replicas."""
    view = _scale_view(request, settings.profile, parent) if request.operation == "UPDATE" else None
    if view is None:
        return _pass("unmanaged", settings.default_mode)
    if request.user_name in settings.gitops_identities:
        return _pass("gitops-identity", settings.default_mode, app=view.subject.app)
    changed = value_at(request.old_object, REPLICAS) != value_at(request.object, REPLICAS)
    if changed and (view.git_owns_replicas or _strict(request, settings)):
        reason: Reason = "owned-fields-changed" if view.git_owns_replicas else "strict"
        finding = Finding(reason, violation=True, paths=(REPLICAS,))
    else:
        finding = Finding("no-owned-fields", violation=False)
    mode = _mode(view.mode_source, settings, trusted=True)
    return _finish(finding, mode=mode, subject=view.subject, breakglass=_breakglass(request, settings))


def _scale_view(request: AdmissionRequest, profile: Profile, parent: object) -> _ScaleView | None:
    """The evidence for a scale request: the fetched parent if given, else the Scale itself.

    The API server builds the Scale from the parent's name, namespace, uid, resourceVersion and
    creationTimestamp only (scaleFromDeployment), so it has no labels or annotations; for mutating
    webhooks it adds the parent's managedFields entries that own replicas, re-pathed to spec.replicas.
    """
    if isinstance(parent, Mapping):
        ref = _object_ref(parent, request)
        owner = ownership(profile, metadata_of(parent), ref=ref)
        if owner is None:
            return None
        owned = git_owned(parent, profile)
        # No GitOps entry at all: ownership unknown, so assume Git owns replicas (as for UPDATE).
        git_owns = owned is None or owns(owned, REPLICAS)
        return _ScaleView(_make_subject(ref, owner, suffix="/scale"), git_owns, parent)
    meta = metadata_of(request.old_object)
    entries = manager_entries(meta.get("managedFields"))
    git_owns = any(e.manager in profile.managers and owns(e.trie, REPLICAS) for e in entries)
    ref = ResourceKey("", "", text(meta.get("namespace")) or request.namespace, request.name)
    marker = ownership(profile, meta, ref=ref, match_kind=False)
    if not (git_owns or marker):
        return None
    where = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
    resource = request.resource.resource
    # Named in the parent's driftwarden.io/app label, which the Scale does not carry: say where to look.
    find = f"in the {contract.LABEL_APP} label of {resource} {where}" if not marker else ""
    subject = Subject(f"{resource}/scale {where}", marker.app if marker else "", False, find)
    # With only a marker (no managedFields), replicas count as Git-owned: the conservative reading.
    return _ScaleView(subject, git_owns or marker is not None, request.old_object)


def _finish(
    finding: Finding,
    *,
    mode: GuardMode,
    subject: Subject,
    breakglass: bool = False,
    audit: bool = False,
    stamp: StampChange | None = None,
) -> Decision:
    """Turn a finding into a Decision under ``mode``; break-glass and exemptions always allow."""
    fields, total = messages.rendered(finding, secret=subject.secret)
    stamp = stamp or StampChange()
    shown: dict[str, Any] = {"subject": subject, "fields": fields, "total": total}
    common: dict[str, Any] = {
        "mode": mode, "fields": fields, "field_count": total, "app": subject.app,
        "stamp_sent": stamp.sent, "stored_stamp": stamp.stored,
    }  # fmt: skip
    if breakglass:
        return Decision(
            allowed=True,
            reason="breakglass",
            violation=finding.violation,
            warnings=messages.breakglass_warnings(finding, **shown),
            audit_annotations=messages.audit(finding, verdict="breakglass", mode=mode, **shown),
            **common,
        )
    if not finding.violation:
        annotations = messages.audit(finding, verdict=finding.reason, mode=mode, **shown) if audit else None
        return Decision(
            allowed=True,
            reason=finding.reason,
            audit_annotations=annotations or MappingProxyType({}),
            **common,
        )
    verdict = {"enforce": "denied", "warn": "warned", "off": "off"}[mode]
    return Decision(
        allowed=mode != "enforce",
        reason=finding.reason,
        violation=True,
        message=messages.denial(finding, **shown) if mode == "enforce" else "",
        warnings=messages.drift_warnings(finding, **shown) if mode == "warn" else (),
        audit_annotations=messages.audit(finding, verdict=verdict, mode=mode, **shown),
        **common,
    )
