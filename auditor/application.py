"""Parse an Application object (a plain dict, as read from the API) into frozen, defaulted dataclasses.

The shape is Argo CD's plus ``guard`` (docs/design.md). Invalid specs raise PermanentError naming the
field (an ``InvalidSpecError``). Every Argo CD field the CRD accepts is parsed: what driftwarden cannot
honour (another cluster, a project, an unknown sync option) is refused by auditor.refusals, never silently
ignored; ``sources`` and ``source.plugin`` are rejected here. ``spec.source`` is parsed by
``auditor.appsource``, where its dataclasses live. No I/O, no logging here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from auditor.appsource import Source, parse_source
from auditor.diff.normalize import compile_jq
from auditor.objects import AppKey, parse_sync_options
from auditor.specfields import (
    InvalidSpecError,
    read_bool,
    read_duration,
    read_map,
    read_number,
    read_str,
    read_strs,
    required_map,
)
from driftwarden.contract import API_VERSION, APPLICATION_KIND, GUARD_MODES
from driftwarden.errors import PermanentError
from driftwarden.jsonpointer import parse_pointer

DEFAULT_SERVER = "https://kubernetes.default.svc"
DEFAULT_GUARD_MODE = "enforce"
DEFAULT_HISTORY_LIMIT = 10
DEFAULT_BREAKGLASS_HOLD = 3600.0
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Destination:
    namespace: str = ""
    server: str = DEFAULT_SERVER
    name: str = ""
    server_set: bool = False
    """Whether the spec named a server (Argo CD refuses a destination with both a server and a name)."""


DEFAULT_PRUNE_RATIO = 1.0
"""Off by default, so an Application moved over from Argo CD prunes as it did there (docs/auditor.md)."""


@dataclass(frozen=True)
class Automated:
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    prune_ratio: float = DEFAULT_PRUNE_RATIO
    """``pruneRatio`` (driftwarden's, beside ``allowEmpty``): an automated sync that would prune more than
    this share of the Application's objects prunes nothing (``PruneRefused``); 1 turns the guard off."""


@dataclass(frozen=True)
class Retry:
    """``syncPolicy.retry``: retries of a failed sync, as Argo CD's (limit < 0: no limit)."""

    limit: int = 0
    duration: float = 5.0
    factor: float = 2.0
    max_duration: float = 180.0

    def delay(self, attempt: int) -> float | None:
        """Seconds before retry number ``attempt`` (0 first); None when the limit is reached."""
        if 0 <= self.limit <= attempt:
            return None
        return float(min(self.duration * self.factor ** min(attempt, 64), self.max_duration))


@dataclass(frozen=True)
class SyncPolicy:
    automated: Automated | None = None
    """None when absent, or present with ``enabled: false`` (Argo CD's switch that keeps the settings)."""
    sync_options: tuple[str, ...] = ()
    retry: Retry | None = None

    def option(self, key: str) -> str | None:
        """The value of ``Key=Value`` in syncOptions, or None."""
        return parse_sync_options(self.sync_options).get(key)

    def enabled(self, key: str) -> bool:
        return (self.option(key) or "").lower() == "true"

    @property
    def auto_prune(self) -> bool:
        return self.automated is not None and self.automated.prune

    @property
    def allow_empty(self) -> bool:
        return self.automated is not None and self.automated.allow_empty

    @property
    def prune_last(self) -> bool:
        return self.enabled("PruneLast")

    @property
    def create_namespace(self) -> bool:
        return self.enabled("CreateNamespace")

    @property
    def fail_on_shared_resource(self) -> bool:
        return self.enabled("FailOnSharedResource")

    @property
    def prune_propagation(self) -> Literal["Foreground", "Background", "Orphan"]:
        """``PrunePropagationPolicy`` (foreground, background or orphan); background when not set."""
        value = (self.option("PrunePropagationPolicy") or "background").lower()
        return "Foreground" if value == "foreground" else "Orphan" if value == "orphan" else "Background"

    @property
    def respect_ignore_differences(self) -> bool:
        """Ignore rules hold when applying too; on unless ``RespectIgnoreDifferences=false``."""
        return (self.option("RespectIgnoreDifferences") or "true").lower() != "false"


@dataclass(frozen=True)
class Guard:
    mode: str = DEFAULT_GUARD_MODE
    allow_users: tuple[str, ...] = ()
    allow_groups: tuple[str, ...] = ()
    breakglass_hold: float = DEFAULT_BREAKGLASS_HOLD
    """Seconds an object edited by break-glass is left alone before it is healed (``breakglassHold``)."""


@dataclass(frozen=True)
class IgnoreDifference:
    kind: str
    group: str = ""
    name: str = ""
    namespace: str = ""
    json_pointers: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()
    jq_path_expressions: tuple[str, ...] = ()

    def matches(self, *, group: str, kind: str, namespace: str, name: str) -> bool:
        """True when this rule applies to the object; ``*`` matches any group or kind."""
        return (
            self.group in ("*", group)
            and self.kind in ("*", kind)
            and self.name in ("", name)
            and self.namespace in ("", namespace)
        )


@dataclass(frozen=True)
class Application:
    name: str
    namespace: str
    source: Source
    destination: Destination = Destination()
    sync_policy: SyncPolicy = SyncPolicy()
    guard: Guard = Guard()
    ignore_differences: tuple[IgnoreDifference, ...] = ()
    project: str = ""
    revision_history_limit: int = DEFAULT_HISTORY_LIMIT

    @property
    def key(self) -> AppKey:
        return AppKey(self.namespace, self.name)


def _destination(spec: Mapping[str, Any]) -> Destination:
    raw = read_map(spec, "destination", "spec.destination") or {}
    namespace = read_str(raw, "namespace", "spec.destination.namespace", default="")
    if namespace and not _DNS_LABEL.match(namespace):
        raise PermanentError(f"spec.destination.namespace {namespace!r} is not a valid namespace name")
    server = read_str(raw, "server", "spec.destination.server", default="")
    name = read_str(raw, "name", "spec.destination.name", default="")
    return Destination(namespace, server or DEFAULT_SERVER, name, bool(server))


def _retry(raw: Mapping[str, Any] | None) -> Retry | None:
    if raw is None:
        return None
    where = "spec.syncPolicy.retry"
    backoff = read_map(raw, "backoff", f"{where}.backoff") or {}
    limit = read_number(raw, "limit", f"{where}.limit", 0)
    factor = read_number(backoff, "factor", f"{where}.backoff.factor", 2)
    if factor < 1:
        raise InvalidSpecError(f"{where}.backoff.factor must be at least 1, got {factor:g}")
    return Retry(
        limit=int(limit),
        duration=read_duration(backoff, "duration", f"{where}.backoff.duration", 5.0),
        factor=factor,
        max_duration=read_duration(backoff, "maxDuration", f"{where}.backoff.maxDuration", 180.0),
    )


def _sync_policy(spec: Mapping[str, Any]) -> SyncPolicy:
    raw = read_map(spec, "syncPolicy", "spec.syncPolicy") or {}
    if "managedNamespaceMetadata" in raw:
        message = "spec.syncPolicy.managedNamespaceMetadata is not supported; put the Namespace in Git"
        raise PermanentError(message)
    auto = read_map(raw, "automated", "spec.syncPolicy.automated")
    options = read_strs(raw, "syncOptions", "spec.syncPolicy.syncOptions")
    for i, option in enumerate(options):
        if "=" not in option or not option.partition("=")[0].strip():
            raise PermanentError(f"spec.syncPolicy.syncOptions[{i}] must look like Key=Value, got {option!r}")
    automated = None
    where = "spec.syncPolicy.automated"
    if auto is not None and auto.get("enabled", True) is not False:
        read_bool(auto, "enabled", f"{where}.enabled")
        automated = Automated(
            prune=read_bool(auto, "prune", f"{where}.prune"),
            self_heal=read_bool(auto, "selfHeal", f"{where}.selfHeal"),
            allow_empty=read_bool(auto, "allowEmpty", f"{where}.allowEmpty"),
            prune_ratio=_prune_ratio(auto, f"{where}.pruneRatio"),
        )
    return SyncPolicy(automated, options, _retry(read_map(raw, "retry", "spec.syncPolicy.retry")))


def _prune_ratio(auto: Mapping[str, Any], path: str) -> float:
    if not 0 <= (ratio := read_number(auto, "pruneRatio", path, DEFAULT_PRUNE_RATIO)) <= 1:
        raise InvalidSpecError(f"{path} is a share of the Application's objects, from 0 to 1; got {ratio}")
    return ratio


def _guard(spec: Mapping[str, Any]) -> Guard:
    raw = read_map(spec, "guard", "spec.guard") or {}
    mode = read_str(raw, "mode", "spec.guard.mode", default=DEFAULT_GUARD_MODE)
    if mode not in GUARD_MODES:
        raise PermanentError(f"spec.guard.mode must be one of {', '.join(GUARD_MODES)}, got {mode!r}")
    allow = read_map(raw, "allow", "spec.guard.allow") or {}
    hold = read_duration(raw, "breakglassHold", "spec.guard.breakglassHold", DEFAULT_BREAKGLASS_HOLD)
    return Guard(
        mode,
        read_strs(allow, "users", "spec.guard.allow.users"),
        read_strs(allow, "groups", "spec.guard.allow.groups"),
        hold,
    )


def _ignore_rule(raw: Any, where: str) -> IgnoreDifference:
    if not isinstance(raw, Mapping):
        raise PermanentError(f"{where} must be a mapping")
    expressions = read_strs(raw, "jqPathExpressions", f"{where}.jqPathExpressions")
    for j, expression in enumerate(expressions):
        try:
            compile_jq(expression)
        except ValueError as exc:
            message = f"{where}.jqPathExpressions[{j}] is not a jq path expression: {exc}"
            raise PermanentError(message) from exc
    pointers = read_strs(raw, "jsonPointers", f"{where}.jsonPointers")
    for j, pointer in enumerate(pointers):
        try:
            parse_pointer(pointer)
        except ValueError as exc:
            raise PermanentError(f"{where}.jsonPointers[{j}] is not an RFC 6901 JSON pointer: {exc}") from exc
    return IgnoreDifference(
        kind=read_str(raw, "kind", f"{where}.kind"),
        group=read_str(raw, "group", f"{where}.group", default=""),
        name=read_str(raw, "name", f"{where}.name", default=""),
        namespace=read_str(raw, "namespace", f"{where}.namespace", default=""),
        json_pointers=pointers,
        managed_fields_managers=read_strs(raw, "managedFieldsManagers", f"{where}.managedFieldsManagers"),
        jq_path_expressions=expressions,
    )


def _ignore_differences(spec: Mapping[str, Any]) -> tuple[IgnoreDifference, ...]:
    raw = spec.get("ignoreDifferences") or []
    if not isinstance(raw, list):
        raise PermanentError("spec.ignoreDifferences must be a list")
    return tuple(_ignore_rule(item, f"spec.ignoreDifferences[{i}]") for i, item in enumerate(raw))


def _history_limit(spec: Mapping[str, Any]) -> int:
    value = spec.get("revisionHistoryLimit", DEFAULT_HISTORY_LIMIT)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidSpecError(f"spec.revisionHistoryLimit must be a whole number >= 1, got {value!r}")
    return value


def parse_application(obj: Mapping[str, Any]) -> Application:
    """The Application in ``obj`` (a whole object with metadata and spec); InvalidSpecError when invalid."""
    try:
        return _parse(obj)
    except InvalidSpecError:
        raise
    except PermanentError as exc:
        raise InvalidSpecError(str(exc)) from exc


def _parse(obj: Mapping[str, Any]) -> Application:
    got = (obj.get("apiVersion", API_VERSION), obj.get("kind", APPLICATION_KIND))
    if got != (API_VERSION, APPLICATION_KIND):
        raise PermanentError(f"expected {API_VERSION} {APPLICATION_KIND}, got {got[0]} {got[1]}")
    meta = required_map(obj, "metadata", "metadata")
    spec = required_map(obj, "spec", "spec")
    if "sources" in spec:
        raise PermanentError("spec.sources is not supported (multi-source Applications); use spec.source")
    return Application(
        name=read_str(meta, "name", "metadata.name"),
        namespace=read_str(meta, "namespace", "metadata.namespace"),
        source=parse_source(spec),
        destination=_destination(spec),
        sync_policy=_sync_policy(spec),
        guard=_guard(spec),
        ignore_differences=_ignore_differences(spec),
        project=read_str(spec, "project", "spec.project", default=""),
        revision_history_limit=_history_limit(spec),
    )
