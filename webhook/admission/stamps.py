"""The drift stamp's integrity: only driftwarden's mutating webhook writes ``driftwarden.io/drift``.

Role: tell what a request did to the stamp (its object against the stored one) and whether the stamp it
carries is the one the mutating webhook wrote for this very request: naming the requesting user and
exactly the fields the decision records. Any other stamp a requester sends, or a stamp it removes, is a
violation (``stamp-forged``); webhook.admission.patches then stamps its own or puts the stored one back.
The auditor takes a stamp's user as the person who drifted the object, so nothing here trusts one.

This module must not do I/O, log, await, or decide the mode (webhook.admission.decision does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from driftwarden import contract
from driftwarden.contract import DriftStamp
from driftwarden.fieldsv1 import Path
from webhook.admission.messages import Finding, drift_fields, rendered
from webhook.admission.objects import metadata_of
from webhook.admission.request import AdmissionRequest

STAMP: Path = ("f:metadata", "f:annotations", f"f:{contract.ANNOTATION_DRIFT}")


@dataclass(frozen=True)
class StampChange:
    """What a request did to the drift stamp: ``sent`` when its object's stamp differs from ``stored``.

    ``stored`` is the stored object's stamp (None on CREATE or when it had none), ``value`` the object's.
    """

    sent: bool = False
    stored: str | None = None
    value: object = None


def _stamp_of(obj: object) -> object:
    annotations = metadata_of(obj).get("annotations")
    return annotations.get(contract.ANNOTATION_DRIFT) if isinstance(annotations, Mapping) else None


def stamp_change(request: AdmissionRequest) -> StampChange:
    """What ``request`` (a CREATE or UPDATE) did to the drift stamp."""
    if request.operation not in ("CREATE", "UPDATE"):
        return StampChange()
    value = _stamp_of(request.object)
    stored = _stamp_of(request.old_object) if request.operation == "UPDATE" else None
    kept = stored if isinstance(stored, str) else None
    return StampChange(sent=value != stored, stored=kept, value=value)


def judge_stamp(
    finding: Finding, change: StampChange, *, user: str, warn: bool, breakglass: bool, secret: bool
) -> Finding:
    """``finding``, made a violation when the request wrote a stamp that is not the webhook's own.

    The webhook stamps a violation in ``warn`` mode and one let through by ``breakglass`` (marked so:
    the auditor then holds the object instead of healing it). Its stamp names ``user``, says whether
    it was break-glass, and lists the fields of the finding, with the stamp itself among them when the
    requester had sent one of its own first (the stamp replaced it). Anything else, a stamp that claims
    break-glass among them, or removing a stamp, is forged.
    """
    if not change.sent:
        return finding
    forged = finding.with_path(STAMP, "stamp-forged")
    ours = DriftStamp.decode(change.value)
    if (warn or breakglass) and ours is not None and (ours.user, ours.breakglass) == (user, breakglass):
        for candidate in (finding, forged):
            if candidate.violation and ours.fields == drift_fields(*rendered(candidate, secret=secret)):
                return candidate
    return forged
