"""What driftwarden refuses in an Application it parsed: the Argo CD fields it cannot honour (yet).

Every field the CRD accepts either works or is refused here, with a message naming the field, so that
nothing is silently ignored (docs/auditor.md has the whole table). A refused Application gets the
``InvalidSpecError`` condition, and nothing is applied or pruned for it. Pure: an Application in,
reasons out; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from auditor.application import Application
from auditor.objects import parse_sync_options

IN_CLUSTER_SERVERS = frozenset({"https://kubernetes.default.svc", "https://kubernetes.default.svc/"})
IN_CLUSTER_NAME = "in-cluster"
DEFAULT_PROJECT = "default"

SYNC_OPTIONS: Mapping[str, frozenset[str]] = {
    "CreateNamespace": frozenset({"true", "false"}),
    "PruneLast": frozenset({"true", "false"}),
    "FailOnSharedResource": frozenset({"true", "false"}),
    "RespectIgnoreDifferences": frozenset({"true", "false"}),
    "StrictSelfHeal": frozenset({"true", "false"}),
    "PrunePropagationPolicy": frozenset({"foreground", "background", "orphan"}),
    "Replace": frozenset({"true", "false"}),
    "Force": frozenset({"true", "false"}),
    # What driftwarden always does; the opposite is refused.
    "ServerSideApply": frozenset({"true"}),
    "ApplyOutOfSyncOnly": frozenset({"true"}),
    "Validate": frozenset({"true"}),
}
"""Each sync option driftwarden knows, with the values it honours (case-insensitive)."""


def _destination(app: Application) -> list[str]:
    dest, reasons = app.destination, []
    if dest.server_set and dest.server not in IN_CLUSTER_SERVERS:
        reasons.append(
            f"spec.destination.server {dest.server!r} is another cluster; driftwarden deploys only into the "
            "cluster it runs in (https://kubernetes.default.svc)"
        )
    if dest.name and dest.name != IN_CLUSTER_NAME:
        reasons.append(
            f"spec.destination.name {dest.name!r} is another cluster; only {IN_CLUSTER_NAME!r} (the cluster "
            "driftwarden runs in) is supported"
        )
    return reasons


def _sync_options(app: Application) -> list[str]:
    reasons = []
    for key, value in parse_sync_options(app.sync_policy.sync_options).items():
        allowed = SYNC_OPTIONS.get(key)
        if allowed is None:
            known = ", ".join(sorted(SYNC_OPTIONS))
            reasons.append(f"spec.syncPolicy.syncOptions {key}={value} is not supported (known: {known})")
        elif value.lower() not in allowed:
            reasons.append(
                f"spec.syncPolicy.syncOptions {key}={value} is not supported "
                f"(driftwarden supports {key}={'|'.join(sorted(allowed))})"
            )
    return reasons


def refusals(app: Application) -> tuple[str, ...]:
    """Why driftwarden will not sync ``app`` as it is written; empty when everything it asks is honoured."""
    reasons = _destination(app)
    if app.project not in ("", DEFAULT_PROJECT):
        reasons.append(
            f"spec.project {app.project!r} is not supported: driftwarden has no projects; use "
            f"{DEFAULT_PROJECT!r} or leave it out"
        )
    reasons += _sync_options(app)
    return tuple(reasons)
