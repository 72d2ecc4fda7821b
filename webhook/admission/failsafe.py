"""What the webhook answers when deciding a review failed: closed for managed objects, open for the rest.

Role: ``contain`` is the answer to send when the rules could not decide a review (``decide`` answered
``internal-error``, or the server caught an exception while answering with the decision it had). Such a
failure is caused by the request's content: a review the rules cannot read was built not to be read, so it
must not be a way around the guard. The rule (docs/security.md, "Failures caused by the input"):

- if either object carries the profile's tracking marker, its guard annotation, or a managedFields entry
  of a GitOps field manager, the request is **denied** whatever the guard mode, with a message that says
  so; the GitOps identity and break-glass still pass, as they do whatever the change is;
- anything else keeps the decision that failed, which for ``internal-error`` is decide's visible allow (a
  warning, an audit annotation): an object that looks unmanaged was never protected, and a webhook bug must
  not stop writes to it.

When even the settings cannot be read, the configuration (not the request) is broken: the failed decision
stands, so a broken webhook cannot lock every labelled object.

This module must not do I/O, log or await, and ``contain`` must not raise. Every read of the objects goes
through webhook.admission.objects, which turns garbage into empty values.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from driftwarden import contract
from webhook.admission.decision import Decision
from webhook.admission.limits import MAX_MESSAGE_BYTES, clip, clip_bytes, sanitize
from webhook.admission.objects import metadata_of, string_map, text
from webhook.admission.profiles import Profile
from webhook.admission.request import AdmissionRequest
from webhook.admission.settings import DecisionSettings, GuardMode, parse_mode

_NAME_CHARS = 200


def contain(request: AdmissionRequest, settings: DecisionSettings, failed: Decision) -> Decision:
    """What to send when the rules failed on ``request``, or ``failed`` could not be sent; never raises."""
    try:
        mode = parse_mode(settings.default_mode) or "enforce"
        managed = looks_managed(request.old_object, settings.profile) or looks_managed(
            request.object, settings.profile
        )
        if not managed:
            return failed
        if request.user_name in settings.gitops_identities:
            return Decision(allowed=True, mode=mode, reason="gitops-identity")
        groups = settings.breakglass_groups
        if request.user_name in settings.breakglass_users or not groups.isdisjoint(request.user_groups):
            return _breakglass(mode)
        return _denied(request)
    except Exception:  # the settings themselves are unreadable: a configuration bug, not the request's
        return failed


def looks_managed(obj: object, profile: Profile) -> bool:
    """Whether ``obj`` carries any sign that a GitOps tool manages it (a wider net than ownership)."""
    meta = metadata_of(obj)
    annotations, labels = string_map(meta.get("annotations")), string_map(meta.get("labels"))
    marked = (profile.tracking_annotation is not None and profile.tracking_annotation in annotations) or (
        contract.ANNOTATION_GUARD in annotations
    )
    if marked or any(key in labels for key in profile.marker_labels):
        return True
    entries = meta.get("managedFields")
    return isinstance(entries, list) and any(
        isinstance(entry, Mapping) and text(entry.get("manager")) in profile.managers for entry in entries
    )


def _breakglass(mode: GuardMode) -> Decision:
    return Decision(
        allowed=True,
        mode=mode,
        reason="breakglass",
        violation=True,
        warnings=("driftwarden could not evaluate this request; allowed for break-glass",),
        audit_annotations=MappingProxyType({"decision": "breakglass", "reason": "internal-error"}),
    )


def _denied(request: AdmissionRequest) -> Decision:
    kind = request.kind.kind or request.resource.resource or "object"
    name = f"{request.namespace}/{request.name}" if request.namespace else request.name
    subject = clip(sanitize(f"{kind} {name}".strip()), max_chars=_NAME_CHARS)
    message = (
        f"driftwarden: {subject} looks managed by Git, and this request could not be evaluated: its "
        "content made the admission rules fail, so it is denied whatever the guard mode. Make the change "
        "in Git, or ask an administrator to look at the webhook's log."
    )
    return Decision(
        allowed=False,
        mode="enforce",
        reason="internal-error",
        violation=True,
        message=clip_bytes(message, max_bytes=MAX_MESSAGE_BYTES),
        audit_annotations=MappingProxyType({"decision": "denied", "reason": "internal-error"}),
    )
