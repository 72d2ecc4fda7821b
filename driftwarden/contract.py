"""The names and formats webhook, auditor, manifests and docs share (the contract of docs/design.md).

Pure constants, the tracking-id format, and the drift stamp (``driftwarden.io/drift``) with its RFC 3339
time. It must not do I/O or import webhook/auditor code: both processes import it, and it is the one
place these strings and formats are spelled. The stamp's traceparent is W3C trace context, written and
read by driftwarden.telemetry.tracecontext (this module stays free of OpenTelemetry).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

GROUP = "driftwarden.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
APPLICATION_KIND = "Application"
APPLICATION_PLURAL = "applications"
APPLICATION_CRD_NAME = f"{APPLICATION_PLURAL}.{GROUP}"

FIELD_MANAGER = "driftwarden"
"""The server-side-apply field manager of the auditor; the fields it owns are "Git-owned"."""

LABEL_APP = "driftwarden.io/app"
ANNOTATION_TRACKING_ID = "driftwarden.io/tracking-id"
ANNOTATION_GUARD = "driftwarden.io/guard"
ANNOTATION_DRIFT = "driftwarden.io/drift"
ANNOTATION_SYNC_OPTIONS = "driftwarden.io/sync-options"
ANNOTATION_COMPARE_OPTIONS = "driftwarden.io/compare-options"
ANNOTATION_GUARD_ALLOW = "driftwarden.io/guard-allow"
"""Stamped from ``spec.guard.allow``: JSON ``{users, groups}`` whose edits the webhook lets through as
break-glass; protected like the guard annotation."""
ANNOTATION_HOLD = "driftwarden.io/hold"
"""Written by the auditor on an object edited by break-glass: JSON ``{user, fields, at, until}``; the
heal leaves the object alone until then."""

GUARD_MODES = ("enforce", "warn", "off")

DEFAULT_INSTALL_NAMESPACE = "driftwarden-system"
AUDITOR_SERVICE_ACCOUNT = "driftwarden-auditor"

WEBHOOK_SERVICE = "driftwarden-webhook"
"""The webhook's Service (and ServiceAccount) in the install namespace; its serving certificate names it."""
WEBHOOK_TLS_SECRET = "driftwarden-webhook-tls"
"""kubernetes.io/tls Secret the webhook pods mount: tls.crt, tls.key and ca.crt (the trust bundle)."""
WEBHOOK_CA_SECRET = "driftwarden-webhook-ca"
"""The CA key and retired CAs; only the certificate rotator reads it, the webhook pods never mount it."""
VALIDATING_WEBHOOK_CONFIGURATION = "driftwarden-guard"
MUTATING_WEBHOOK_CONFIGURATION = "driftwarden-flag"
"""Names of the two webhook configurations whose caBundle the rotator keeps current."""


def auditor_identity(namespace: str = DEFAULT_INSTALL_NAMESPACE) -> str:
    """The Kubernetes user name of the auditor's service account in ``namespace``."""
    return f"system:serviceaccount:{namespace}:{AUDITOR_SERVICE_ACCOUNT}"


@dataclass(frozen=True)
class TrackingId:
    """``<app-namespace>/<app-name>:<group>/<Kind>:<namespace>/<name>`` — proof that an app owns an object."""

    app_namespace: str
    app_name: str
    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.app_namespace}/{self.app_name}:{self.group}/{self.kind}:{self.namespace}/{self.name}"

    @property
    def app(self) -> str:
        """``<app-namespace>/<app-name>``, the Application that owns the object."""
        return f"{self.app_namespace}/{self.app_name}"


def parse_tracking_id(value: str) -> TrackingId | None:
    """Parse a tracking-id annotation; None when it does not have the contract's shape.

    The group is empty for the core API group (``web/app:/ConfigMap:prod/cfg``), and the object
    namespace is empty for cluster-scoped objects, as in Argo CD's annotation tracking.
    """
    parts = value.split(":")
    if len(parts) != 3:
        return None
    app, group_kind, obj = parts
    app_ns, sep1, app_name = app.partition("/")
    group, sep2, kind = group_kind.partition("/")
    namespace, sep3, name = obj.partition("/")
    if not (sep1 and sep2 and sep3) or not (app_ns and app_name and kind and name):
        return None
    return TrackingId(app_ns, app_name, group, kind, namespace, name)


def rfc3339(at: dt.datetime) -> str:
    """``at`` as RFC 3339 UTC with a ``Z``, to the second, as Kubernetes writes timestamps."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("timestamps need a timezone-aware datetime")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DriftStamp:
    """The ``driftwarden.io/drift`` annotation: JSON ``{user, at, fields, traceparent}``.

    The mutating webhook writes it on an edit it lets through in ``warn`` mode: who made the edit, when
    (``at``, RFC 3339), which fields (rendered paths, never values), and the W3C traceparent of the
    admission span. The auditor reads it to name the drifter and link its heal to the edit's trace.
    """

    user: str
    at: str
    fields: tuple[str, ...]
    traceparent: str = ""
    breakglass: bool = False
    """The edit was let through by break-glass: the auditor puts the object on hold instead of healing."""

    def encode(self) -> str:
        """The annotation's value: compact JSON, members in the contract's order."""
        record: dict[str, object] = {
            "user": self.user,
            "at": self.at,
            "fields": list(self.fields),
            "traceparent": self.traceparent,
        }
        if self.breakglass:
            record["breakglass"] = True
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, value: object) -> DriftStamp | None:
        """The stamp in an annotation value; None unless it is a JSON object.

        Anyone who may edit the object may edit the annotation too, so a member of the wrong type reads
        as empty rather than failing the whole stamp: its presence alone still says an edit was flagged.
        """
        data = _json_object(value)
        if data is None:
            return None
        fields = data.get("fields")
        if not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
            fields = []
        return cls(
            _str(data.get("user")), _str(data.get("at")), tuple(fields), _str(data.get("traceparent")),
            data.get("breakglass") is True,
        )  # fmt: skip


@dataclass(frozen=True)
class GuardAllow:
    """The ``driftwarden.io/guard-allow`` annotation: JSON ``{users, groups}`` from ``spec.guard.allow``.

    The auditor stamps it on every object of the Application, as it stamps the guard mode; the webhook
    lets those users and groups through as break-glass, and protects the annotation like the guard mode.
    """

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def encode(self) -> str:
        return json.dumps({"users": list(self.users), "groups": list(self.groups)}, separators=(",", ":"))

    @classmethod
    def decode(cls, value: object) -> GuardAllow | None:
        """The lists in an annotation value; None unless it is a JSON object (wrong members read as empty)."""
        data = _json_object(value)
        if data is None:
            return None
        return cls(_strs(data.get("users")), _strs(data.get("groups")))


def guard_allow(obj: object) -> GuardAllow | None:
    """The break-glass lists stamped on ``obj``; None when absent or not the contract's JSON."""
    return GuardAllow.decode(_annotation(obj, ANNOTATION_GUARD_ALLOW))


def _json_object(value: object) -> dict[str, object] | None:
    """``value`` (an annotation's text) parsed, when it is a JSON object; else None."""
    if not isinstance(value, str):
        return None
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _annotation(obj: object, key: str) -> object:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    return annotations.get(key) if isinstance(annotations, Mapping) else None


def _strs(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str) and v) if isinstance(value, list) else ()


def drift_stamp(obj: object) -> DriftStamp | None:
    """The stamp on ``obj`` (a Kubernetes object as JSON); None when absent or not the contract's JSON."""
    return DriftStamp.decode(_annotation(obj, ANNOTATION_DRIFT))


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
