"""The mutating half of the webhook: a JSONPatch that stamps ``driftwarden.io/drift`` on warned edits.

Role: in ``warn`` mode a violating edit is let through, and this stamp records on the object who drifted
it (the user the API server authenticated), when, which fields, and the trace that links the edit to the
heal that undoes it. The value is JSON ``{"user", "at", "fields", "traceparent"}``
(driftwarden.contract.DriftStamp); ``at`` and ``traceparent`` come from the caller. Only this patch
writes the stamp: one a requester sent is replaced by the webhook's own, or (when nothing is stamped)
the stored one is put back, in every mode, except where ``/validate`` will deny the request anyway
and must still see what was sent.

Must not: read the clock, do I/O, log, await, or decide anything (webhook.admission.decision decides).
The patch is idempotent: the API server may call a mutating webhook again on the same object
(reinvocation), and a second call that would stamp the same user and fields returns no patch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from driftwarden import contract
from driftwarden.contract import DriftStamp, rfc3339
from driftwarden.jsonpointer import escape
from webhook.admission.decision import Decision
from webhook.admission.messages import MAX_DRIFT_FIELDS, drift_fields

__all__ = ["MAX_DRIFT_FIELDS", "JsonPatch", "drift_fields", "drift_patch", "unstamped"]

JsonPatch = list[dict[str, Any]]


_STAMP_POINTER = "/metadata/annotations/" + escape(contract.ANNOTATION_DRIFT)


def drift_patch(
    obj: object, decision: Decision, *, user: str, at: datetime, traceparent: str = ""
) -> JsonPatch | None:
    """The JSONPatch stamping ``driftwarden.io/drift`` on ``obj``; None when there is nothing to stamp.

    Stamps an allowed violation in ``warn`` mode, and one let through by break-glass in any mode (marked
    ``breakglass``: the auditor puts the object on hold rather than healing it), on an object that has a
    place for annotations (not a DELETE's missing object, not a Scale, whose metadata is thrown away). A
    stamp the requester sent otherwise is reverted to the stored one.
    """
    if not isinstance(obj, Mapping) or obj.get("kind") == "Scale" or decision.reason == "gitops-identity":
        return None
    if not stamps(decision):
        return _revert(obj, decision)
    stamp = _stamp(decision, user=user, at=rfc3339(at), traceparent=traceparent)
    if "metadata" not in obj:
        return [_add("/metadata", {"annotations": {contract.ANNOTATION_DRIFT: stamp.encode()}})]
    metadata = obj["metadata"]
    if not isinstance(metadata, Mapping):
        return None  # nothing sane to patch; the decision itself already carries the warning
    return _annotation_patch(metadata.get("annotations"), stamp)


def unstamped(obj: object, decision: Decision, *, user: str) -> bool:
    """Whether ``/validate`` sees a request that ``/mutate`` would have stamped without that stamp on it.

    The mutating configuration skips requests it cannot patch by a CEL condition built from the flags
    ``webhook install`` was given (webhook.registration.stamp_conditions); when those differ from the
    flags of ``webhook serve`` (a default mode of ``warn`` on one only, a break-glass group on one only),
    a warned edit would go through unstamped. The edit is still warned and healed; this tells it.
    """
    if not isinstance(obj, Mapping) or obj.get("kind") == "Scale" or decision.reason == "gitops-identity":
        return False
    if not stamps(decision):
        return False
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return False  # nothing sane to stamp: drift_patch gives no patch either
    annotations = metadata.get("annotations")
    existing = annotations.get(contract.ANNOTATION_DRIFT) if isinstance(annotations, Mapping) else None
    return not _already_stamped(existing, _stamp(decision, user=user, at="", traceparent=""))


def _stamp(decision: Decision, *, user: str, at: str, traceparent: str) -> DriftStamp:
    return DriftStamp(
        user=user,
        at=at,
        fields=drift_fields(decision.fields, decision.field_count),
        traceparent=traceparent,
        breakglass=decision.reason == "breakglass",
    )


def _annotation_patch(annotations: object, stamp: DriftStamp | str) -> JsonPatch | None:
    value = stamp if isinstance(stamp, str) else stamp.encode()
    if not isinstance(annotations, Mapping):
        # "add" on a missing (or null) map replaces it whole; a path into it would fail to apply.
        return [_add("/metadata/annotations", {contract.ANNOTATION_DRIFT: value})]
    existing = annotations.get(contract.ANNOTATION_DRIFT)
    if existing == value or (isinstance(stamp, DriftStamp) and _already_stamped(existing, stamp)):
        return None
    return [_add(_STAMP_POINTER, value)]


def stamps(decision: Decision) -> bool:
    """Whether the mutating webhook stamps for ``decision``: a violation let through by warn mode or by
    break-glass (webhook.admission.stamps recognises exactly these stamps as the webhook's own)."""
    warned = decision.mode == "warn" and decision.allowed
    return decision.violation and (warned or decision.reason == "breakglass")


def _revert(obj: Mapping[str, Any], decision: Decision) -> JsonPatch | None:
    """Put back the stored stamp (or take the sent one off) unless ``/validate`` denies the request."""
    denied = decision.mode == "enforce" and decision.violation and decision.reason != "breakglass"
    if not decision.stamp_sent or denied:
        return None
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    present = isinstance(annotations, Mapping) and contract.ANNOTATION_DRIFT in annotations
    if decision.stored_stamp is not None:
        if not isinstance(meta, Mapping):
            return None
        return _annotation_patch(annotations, decision.stored_stamp)
    return [{"op": "remove", "path": _STAMP_POINTER}] if present else None


def _add(path: str, value: object) -> dict[str, Any]:
    return {"op": "add", "path": path, "value": value}


def _already_stamped(existing: object, stamp: DriftStamp) -> bool:
    """Whether ``existing`` records the same user, fields and break-glass: time and trace may differ on
    reinvocation."""
    found = DriftStamp.decode(existing)
    return found is not None and (found.user, found.fields, found.breakglass) == (
        stamp.user,
        stamp.fields,
        stamp.breakglass,
    )
