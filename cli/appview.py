"""What ``driftwarden app`` prints: tables, ``-o wide``, JSON/YAML, details, history, diffs, sync results.

Pure functions of Application dicts (as the API server returns them) and of the auditor's frozen diff
records: text out, no I/O, no clock reads (callers pass ``now``). Secret values never reach this module:
the diffs it prints were masked by the auditor, and Application objects carry no Secret data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from auditor.application import DEFAULT_GUARD_MODE
from auditor.diff.objectdiff import ObjectDiff
from driftwarden.objectref import ResourceKey

SHORT_REVISION = 7
GAP = "   "
ACTIONS = {"create": "create: not in the cluster", "prune": "prune: no longer in Git"}


def dump(data: Any, fmt: str) -> str:
    """``data`` as indented JSON or as YAML (``fmt`` is ``json`` or ``yaml``), ending in a newline."""
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    raise ValueError(f"unknown output format {fmt!r}")


def as_list(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several objects as one ``v1`` ``List``, the way ``kubectl get -o json`` prints them."""
    return {"apiVersion": "v1", "kind": "List", "items": [dict(i) for i in items], "metadata": {}}


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns three spaces apart, as kubectl prints them; no trailing spaces."""
    body = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]
    lines = [GAP.join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [list(headers), *body]]  # fmt: skip
    return "\n".join(lines) + "\n"


def short(revision: str | None) -> str:
    """The first seven characters of a commit SHA ("" when there is none)."""
    return (revision or "")[:SHORT_REVISION]


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _pair(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


def duration(seconds: int) -> str:
    """``seconds`` the way kubectl's HumanDuration shortens them: 45s, 7m3s, 95m, 5h12m, 30h, 3d4h, 12d."""
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    steps = [
        (seconds < 120, f"{max(seconds, 0)}s"),
        (minutes < 10, _pair(minutes, "m", seconds % 60, "s")),
        (hours < 3, f"{minutes}m"),
        (hours < 8, _pair(hours, "h", minutes % 60, "m")),
        (hours < 48, f"{hours}h"),
        (days < 8, _pair(days, "d", hours % 24, "h")),
        (days < 365 * 2, f"{days}d"),
        (days < 365 * 8, _pair(days // 365, "y", days % 365, "d")),
    ]
    return next((text for fits, text in steps if fits), f"{days // 365}y")


def human_age(created: str | None, *, now: datetime) -> str:
    """Time since ``created`` (an RFC 3339 timestamp), for the AGE column; ``<unknown>`` if unreadable."""
    when = _parse_time(created) if created else None
    if when is None:
        return "<unknown>"
    return duration(int((now - when).total_seconds()))


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _text(obj: Mapping[str, Any], *path: str) -> str:
    value = _get(obj, *path)
    return "" if value is None else str(value)


def list_view(
    items: Sequence[Mapping[str, Any]], *, now: datetime, wide: bool = False, all_namespaces: bool = False
) -> str:
    """``app list``: NAME SYNC HEALTH REVISION AGE (+ REPO PATH TARGET when wide, NAMESPACE with -A)."""
    headers = ["NAME", "SYNC", "HEALTH", "REVISION", "AGE"] + (["REPO", "PATH", "TARGET"] if wide else [])
    rows = []
    for app in items:
        row = [
            _text(app, "metadata", "name"),
            _text(app, "status", "sync", "status") or "Unknown",
            _text(app, "status", "health", "status") or "Unknown",
            short(_text(app, "status", "sync", "revision")),
            human_age(_text(app, "metadata", "creationTimestamp"), now=now),
        ]
        if wide:
            source = _get(app, "spec", "source") or {}
            row += [_text(source, "repoURL"), _text(source, "path"), _text(source, "targetRevision")]
        rows.append([_text(app, "metadata", "namespace"), *row] if all_namespaces else row)
    return table(["NAMESPACE", *headers] if all_namespaces else headers, rows)


def sync_policy(spec: Mapping[str, Any]) -> str:
    """``Manual``, or ``Automated`` with the switches that are on, e.g. ``Automated (Prune, SelfHeal)``."""
    automated = _get(spec, "syncPolicy", "automated")
    if not isinstance(automated, Mapping):
        return "Manual"
    if automated.get("enabled") is False:
        return "Manual (automated.enabled: false)"
    names = {"prune": "Prune", "selfHeal": "SelfHeal", "allowEmpty": "AllowEmpty"}
    on = [label for key, label in names.items() if automated.get(key)]
    return f"Automated ({', '.join(on)})" if on else "Automated"


def sync_line(app: Mapping[str, Any]) -> str:
    """``Synced to main (1a2b3c4)`` or ``OutOfSync from main (1a2b3c4)``; the revision compared with is
    the one the last pass asked for (``app sync --revision 1a2b3c4`` says ``Synced to 1a2b3c4``)."""
    status = _text(app, "status", "sync", "status") or "Unknown"
    full = _text(app, "status", "sync", "revision")
    target = _text(app, "spec", "source", "targetRevision") or "HEAD"
    if full and _text(app, "status", "operationState", "syncResult", "revision") == full:
        target = _text(app, "status", "operationState", "syncResult", "source", "targetRevision") or target
    revision = short(full)
    if status == "Unknown":  # the last pass could not compare: its revision is an old one
        last = f" (last compared: {revision})" if revision else ""
        return f"Unknown: could not compare with {target}; see the conditions{last}"
    where = f" ({revision})" if revision and not revision.startswith(target) else ""
    return f"{status} {'to' if status == 'Synced' else 'from'} {target}{where}"


def _operation_line(state: Mapping[str, Any]) -> str:
    phase, message = _text(state, "phase"), _text(state, "message")
    revision = short(_text(state, "syncResult", "revision"))
    when = _text(state, "finishedAt") or _text(state, "startedAt")
    return f"{phase}: {message} (revision {revision}, {when})"


def _fields(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in pairs) + 2
    return "".join(f"{(label + ':').ljust(width)}{value}\n" for label, value in pairs)


def health_line(status: Mapping[str, Any]) -> str:
    """``Progressing (1 of 3 resources Progressing)``; the status alone when there is no message."""
    health, message = _text(status, "health", "status") or "Unknown", _text(status, "health", "message")
    return f"{health} ({message})" if message else health


def detail_view(app: Mapping[str, Any], *, wide: bool = False) -> str:
    """``app get``: a header, the conditions, then one row per resource (HEALTH message when wide)."""
    spec = _get(app, "spec") or {}
    status = _get(app, "status") or {}
    pairs = [
        ("Name", _text(app, "metadata", "name")),
        ("Namespace", _text(app, "metadata", "namespace")),
        ("Repo", _text(spec, "source", "repoURL")),
        ("Path", _text(spec, "source", "path")),
        ("Target", _text(spec, "source", "targetRevision")),
        ("Destination", _text(spec, "destination", "namespace") or "(as in the manifests)"),
        ("Sync Policy", sync_policy(spec)),
        ("Guard", _text(spec, "guard", "mode") or DEFAULT_GUARD_MODE),
        ("Sync Status", sync_line(app)),
        ("Health Status", health_line(status)),
    ]
    if isinstance(status.get("operationState"), Mapping):
        pairs.append(("Last Operation", _operation_line(status["operationState"])))
    parts = [_fields(pairs)]
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    if conditions:
        rows = [[_text(c, "type"), _text(c, "message"), _text(c, "lastTransitionTime")] for c in conditions]
        parts.append(table(["CONDITION", "MESSAGE", "LAST TRANSITION"], rows))
    holds = [h for h in status.get("holds") or [] if isinstance(h, Mapping)]
    if holds:
        parts.append(holds_view(holds))
    hooks = [r for r in _get(status, "operationState", "syncResult", "resources") or [] if _is_hook(r)]
    if hooks:
        parts.append(hooks_view(hooks))
    resources = [r for r in status.get("resources") or [] if isinstance(r, Mapping)]
    if resources:
        headers = ["GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH"] + (["MESSAGE"] if wide else [])
        rows = []
        for r in resources:
            row = [_text(r, k) for k in ("group", "kind", "namespace", "name", "status")]
            row.append(_text(r, "health", "status"))
            # The object's own message first: why it is not as Git says (a refused dry run, a finalizer).
            rows.append(row + ([_text(r, "message") or _text(r, "health", "message")] if wide else []))
        parts.append(table(headers, rows))
    else:
        parts.append("No resources recorded yet: run `driftwarden app sync` or wait for the auditor.\n")
    return "\n".join(parts)


def _is_hook(entry: Any) -> bool:
    return isinstance(entry, Mapping) and bool(entry.get("hookType"))


def hooks_view(hooks: Sequence[Mapping[str, Any]]) -> str:
    """The last sync's hooks (``operationState.syncResult.resources`` with a ``hookType``), in run order."""
    keys = ("hookType", "kind", "namespace", "name", "hookPhase", "message")
    return table(
        ["HOOK", "KIND", "NAMESPACE", "NAME", "PHASE", "MESSAGE"],
        [[_text(h, k) for k in keys] for h in hooks],
    )


def holds_view(holds: Sequence[Mapping[str, Any]]) -> str:
    """The break-glass holds: who edited which object and fields, and until when it is left alone."""
    rows = [[f"{_text(h, 'kind')}/{_text(h, 'name')}", _text(h, "namespace"), _text(h, "user"),
             ", ".join(str(f) for f in h.get("fields") or []), _text(h, "until")] for h in holds]  # fmt: skip
    return table(["HELD", "NAMESPACE", "BY", "FIELDS", "UNTIL"], rows)


def history_view(app: Mapping[str, Any], *, wide: bool = False) -> str:
    """``app history``: ID REVISION DEPLOYED-AT, oldest first (+ REPO PATH TARGET when wide)."""
    headers = ["ID", "REVISION", "DEPLOYED-AT"] + (["REPO", "PATH", "TARGET"] if wide else [])
    rows = []
    for entry in _get(app, "status", "history") or []:
        row = [_text(entry, "id"), _text(entry, "revision"), _text(entry, "deployedAt")]
        if wide:
            row += [_text(entry, "source", k) for k in ("repoURL", "path", "targetRevision")]
        rows.append(row)
    return table(headers, rows)


def results_view(results: Sequence[Mapping[str, Any]]) -> str:
    """What a sync did per object (``operationState.syncResult.resources`` entries)."""
    keys = ("group", "kind", "namespace", "name", "status", "message")
    rows = [[_text(r, k) for k in keys] for r in results]
    if not any(_is_hook(r) for r in results):
        return table([k.upper() for k in keys], rows)
    hooks = [f"{_text(r, 'hookType')}/{_text(r, 'hookPhase')}" if _is_hook(r) else "" for r in results]
    return table(
        [*(k.upper() for k in keys), "HOOK"], [[*row, hook] for row, hook in zip(rows, hooks, strict=True)]
    )


def summary_view(app: Mapping[str, Any]) -> str:
    """The lines printed after a sync or rollback: operation, sync status and health."""
    pairs = []
    state = _get(app, "status", "operationState")
    if isinstance(state, Mapping):
        pairs.append(("Operation", f"{_text(state, 'phase')}: {_text(state, 'message')}"))
    pairs += [("Sync Status", sync_line(app)), ("Health Status", _text(app, "status", "health", "status"))]
    return _fields(pairs)


def diff_view(diffs: Sequence[ObjectDiff], failures: Mapping[ResourceKey, str] | None = None) -> str:
    """The unified diff of every object that differs, live (``-``) to Git (``+``); Secrets come masked.

    An object whose dry run the API server refused (``failures``: a webhook's denial, an immutable field) has
    no diff to show; its reason is printed instead, so the header never stands alone."""
    out = []
    for diff in diffs:
        if diff.in_sync:
            continue
        header = f"===== {diff.ref} ({ACTIONS.get(diff.action, diff.action)}) ====="
        changed = f"changed: {', '.join(diff.changed_paths)}\n" if diff.changed_paths else ""
        reason = (failures or {}).get(diff.ref.key)
        refused = f"{reason}\n" if reason and not diff.unified_diff else ""
        out.append(f"{header}\n{changed}{refused}{diff.unified_diff}")
    return "".join(out)
