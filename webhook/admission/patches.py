"""The mutating half of the webhook: a JSONPatch that stamps ``driftwarden.io/drift`` on warned edits.

Role: in ``warn`` mode a violating edit is let through, and this stamp records on the object who drifted
it, when, which fields, and the trace that links the edit to the heal that undoes it. The value is JSON
``{"user", "at", "fields", "traceparent"}`` (driftwarden.contract.DriftStamp); ``at`` and ``traceparent``
come from the caller.

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
from webhook.admission.decision import Decision

MAX_DRIFT_FIELDS = 50
JsonPatch = list[dict[str, Any]]


def escape_pointer(token: str) -> str:
    """One JSON Pointer reference token (RFC 6901): ``~`` becomes ``~0`` and ``/`` becomes ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def drift_fields(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The fields to record, capped so that the annotation stays small however large the edit."""
    if len(fields) <= MAX_DRIFT_FIELDS:
        return fields
    return (*fields[: MAX_DRIFT_FIELDS - 1], f"and {len(fields) - MAX_DRIFT_FIELDS + 1} more")


def drift_patch(
    obj: object, decision: Decision, *, user: str, at: datetime, traceparent: str = ""
) -> JsonPatch | None:
    """The JSONPatch stamping ``driftwarden.io/drift`` on ``obj``; None when there is nothing to stamp.

    Stamps an allowed violation in ``warn`` mode, and one let through by break-glass in any mode (marked
    ``breakglass``: the auditor puts the object on hold rather than healing it), on an object that has a
    place for annotations (not a DELETE's missing object, not a Scale, whose metadata is thrown away).
    """
    breakglass = decision.reason == "breakglass" and decision.violation
    if not (breakglass or (decision.mode == "warn" and decision.violation and decision.allowed)):
        return None
    if not isinstance(obj, Mapping) or obj.get("kind") == "Scale":
        return None
    stamp = DriftStamp(
        user=user, at=rfc3339(at), fields=drift_fields(decision.fields), traceparent=traceparent,
        breakglass=breakglass,
    )  # fmt: skip
    if "metadata" not in obj:
        return [_add("/metadata", {"annotations": {contract.ANNOTATION_DRIFT: stamp.encode()}})]
    metadata = obj["metadata"]
    if not isinstance(metadata, Mapping):
        return None  # nothing sane to patch; the decision itself already carries the warning
    return _annotation_patch(metadata.get("annotations"), stamp)


def _annotation_patch(annotations: object, stamp: DriftStamp) -> JsonPatch | None:
    if not isinstance(annotations, Mapping):
        # "add" on a missing (or null) map replaces it whole; a path into it would fail to apply.
        return [_add("/metadata/annotations", {contract.ANNOTATION_DRIFT: stamp.encode()})]
    if _already_stamped(annotations.get(contract.ANNOTATION_DRIFT), stamp):
        return None
    return [_add(f"/metadata/annotations/{escape_pointer(contract.ANNOTATION_DRIFT)}", stamp.encode())]


def _add(path: str, value: object) -> dict[str, Any]:
    return {"op": "add", "path": path, "value": value}


def _already_stamped(existing: object, stamp: DriftStamp) -> bool:
    """Whether ``existing`` records the same user and fields: time and trace may differ on reinvocation."""
    found = DriftStamp.decode(existing)
    return found is not None and (found.user, found.fields) == (stamp.user, stamp.fields)
