"""The names webhook, auditor, manifests and docs share (the contract of docs/design.md).

Pure constants and the tracking-id format. It must not do I/O or import webhook/auditor code:
both processes import it, and it is the one place these strings are spelled.
"""

from __future__ import annotations

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
