"""Parse an Application object (a plain dict, as read from the API) into frozen, defaulted dataclasses.

The shape is Argo CD's plus ``guard`` (docs/design.md). Invalid specs raise PermanentError naming the
field. Fields Argo CD has and driftwarden ignores (``project``, ``revisionHistoryLimit``...) are tolerated so
an Application can move over by changing its apiVersion; features driftwarden cannot honour (``sources``,
``chart``, ``jqPathExpressions``) are rejected rather than silently ignored. No I/O, no logging here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.diff.normalize import parse_pointer
from auditor.objects import AppKey, parse_sync_options
from driftwarden.contract import API_VERSION, APPLICATION_KIND, GUARD_MODES
from driftwarden.errors import PermanentError

DEFAULT_TARGET_REVISION = "HEAD"
DEFAULT_SERVER = "https://kubernetes.default.svc"
DEFAULT_GUARD_MODE = "enforce"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class DirectorySource:
    recurse: bool = False


@dataclass(frozen=True)
class HelmParameter:
    name: str
    value: str
    force_string: bool = False


@dataclass(frozen=True)
class HelmSource:
    value_files: tuple[str, ...] = ()
    values: str = ""
    parameters: tuple[HelmParameter, ...] = ()
    release_name: str = ""


@dataclass(frozen=True)
class KustomizeSource:
    name_prefix: str = ""
    name_suffix: str = ""
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    repo_url: str
    target_revision: str = DEFAULT_TARGET_REVISION
    path: str = "."
    directory: DirectorySource | None = None
    helm: HelmSource | None = None
    kustomize: KustomizeSource | None = None


@dataclass(frozen=True)
class Destination:
    namespace: str = ""
    server: str = DEFAULT_SERVER


@dataclass(frozen=True)
class Automated:
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False


@dataclass(frozen=True)
class SyncPolicy:
    automated: Automated | None = None
    sync_options: tuple[str, ...] = ()

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


@dataclass(frozen=True)
class Guard:
    mode: str = DEFAULT_GUARD_MODE
    allow_users: tuple[str, ...] = ()
    allow_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class IgnoreDifference:
    kind: str
    group: str = ""
    name: str = ""
    namespace: str = ""
    json_pointers: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()

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

    @property
    def key(self) -> AppKey:
        return AppKey(self.namespace, self.name)


def _map(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, Mapping):
        raise PermanentError(f"{path} must be a mapping, got {type(value).__name__}")
    return value


def _required_map(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = _map(obj, key, path)
    if value is None:
        raise PermanentError(f"{path} is required")
    return value


def _str(obj: Mapping[str, Any], key: str, path: str, *, default: str | None = None) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if default is None:
            raise PermanentError(f"{path} is required")
        return default
    if not isinstance(value, str):
        raise PermanentError(f"{path} must be a string, got {type(value).__name__}")
    return value


def _bool(obj: Mapping[str, Any], key: str, path: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise PermanentError(f"{path} must be true or false, got {value!r}")
    return value


def _strs(obj: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = obj.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PermanentError(f"{path} must be a list of strings")
    return tuple(value)


def _check_path(path: str, field: str) -> str:
    parts = path.replace("\\", "/").split("/")
    if path.startswith("/") or ".." in parts:
        raise PermanentError(f"{field} must be a relative path inside the repository, got {path!r}")
    return path


def _helm(raw: Mapping[str, Any], path: str) -> HelmSource:
    params = []
    for i, item in enumerate(raw.get("parameters") or []):
        where = f"{path}.parameters[{i}]"
        if not isinstance(item, Mapping):
            raise PermanentError(f"{where} must be a mapping")
        value = item.get("value", "")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        force = _bool(item, "forceString", f"{where}.forceString")
        params.append(HelmParameter(_str(item, "name", f"{where}.name"), text, force))
    return HelmSource(
        value_files=_strs(raw, "valueFiles", f"{path}.valueFiles"),
        values=_str(raw, "values", f"{path}.values", default=""),
        parameters=tuple(params),
        release_name=_str(raw, "releaseName", f"{path}.releaseName", default=""),
    )


def _kustomize(raw: Mapping[str, Any], path: str) -> KustomizeSource:
    return KustomizeSource(
        name_prefix=_str(raw, "namePrefix", f"{path}.namePrefix", default=""),
        name_suffix=_str(raw, "nameSuffix", f"{path}.nameSuffix", default=""),
        images=_strs(raw, "images", f"{path}.images"),
    )


def _source(spec: Mapping[str, Any]) -> Source:
    raw = _required_map(spec, "source", "spec.source")
    if "chart" in raw:
        raise PermanentError("spec.source.chart is not supported (Helm repository charts); use a Git path")
    kinds = [k for k in ("directory", "helm", "kustomize") if raw.get(k) is not None]
    if len(kinds) > 1:
        raise PermanentError(f"spec.source may set only one of directory, helm, kustomize; got {kinds}")
    directory, helm = _map(raw, "directory", "spec.source.directory"), _map(raw, "helm", "spec.source.helm")
    kustomize = _map(raw, "kustomize", "spec.source.kustomize")
    return Source(
        repo_url=_str(raw, "repoURL", "spec.source.repoURL"),
        target_revision=_str(
            raw, "targetRevision", "spec.source.targetRevision", default=DEFAULT_TARGET_REVISION
        ),
        path=_check_path(_str(raw, "path", "spec.source.path", default="."), "spec.source.path"),
        directory=None
        if directory is None
        else DirectorySource(_bool(directory, "recurse", "spec.source.directory.recurse")),
        helm=None if helm is None else _helm(helm, "spec.source.helm"),
        kustomize=None if kustomize is None else _kustomize(kustomize, "spec.source.kustomize"),
    )


def _destination(spec: Mapping[str, Any]) -> Destination:
    raw = _map(spec, "destination", "spec.destination") or {}
    namespace = _str(raw, "namespace", "spec.destination.namespace", default="")
    if namespace and not _DNS_LABEL.match(namespace):
        raise PermanentError(f"spec.destination.namespace {namespace!r} is not a valid namespace name")
    return Destination(namespace, _str(raw, "server", "spec.destination.server", default=DEFAULT_SERVER))


def _sync_policy(spec: Mapping[str, Any]) -> SyncPolicy:
    raw = _map(spec, "syncPolicy", "spec.syncPolicy") or {}
    auto = _map(raw, "automated", "spec.syncPolicy.automated")
    options = _strs(raw, "syncOptions", "spec.syncPolicy.syncOptions")
    for i, option in enumerate(options):
        if "=" not in option or not option.partition("=")[0].strip():
            raise PermanentError(f"spec.syncPolicy.syncOptions[{i}] must look like Key=Value, got {option!r}")
    automated = None
    if auto is not None:
        where = "spec.syncPolicy.automated"
        automated = Automated(
            prune=_bool(auto, "prune", f"{where}.prune"),
            self_heal=_bool(auto, "selfHeal", f"{where}.selfHeal"),
            allow_empty=_bool(auto, "allowEmpty", f"{where}.allowEmpty"),
        )
    return SyncPolicy(automated, options)


def _guard(spec: Mapping[str, Any]) -> Guard:
    raw = _map(spec, "guard", "spec.guard") or {}
    mode = _str(raw, "mode", "spec.guard.mode", default=DEFAULT_GUARD_MODE)
    if mode not in GUARD_MODES:
        raise PermanentError(f"spec.guard.mode must be one of {', '.join(GUARD_MODES)}, got {mode!r}")
    allow = _map(raw, "allow", "spec.guard.allow") or {}
    return Guard(
        mode,
        _strs(allow, "users", "spec.guard.allow.users"),
        _strs(allow, "groups", "spec.guard.allow.groups"),
    )


def _ignore_rule(raw: Any, where: str) -> IgnoreDifference:
    if not isinstance(raw, Mapping):
        raise PermanentError(f"{where} must be a mapping")
    if raw.get("jqPathExpressions"):
        raise PermanentError(f"{where}.jqPathExpressions is not supported; use jsonPointers")
    pointers = _strs(raw, "jsonPointers", f"{where}.jsonPointers")
    for j, pointer in enumerate(pointers):
        try:
            parse_pointer(pointer)
        except ValueError as exc:
            raise PermanentError(f"{where}.jsonPointers[{j}] is not an RFC 6901 JSON pointer: {exc}") from exc
    return IgnoreDifference(
        kind=_str(raw, "kind", f"{where}.kind"),
        group=_str(raw, "group", f"{where}.group", default=""),
        name=_str(raw, "name", f"{where}.name", default=""),
        namespace=_str(raw, "namespace", f"{where}.namespace", default=""),
        json_pointers=pointers,
        managed_fields_managers=_strs(raw, "managedFieldsManagers", f"{where}.managedFieldsManagers"),
    )


def _ignore_differences(spec: Mapping[str, Any]) -> tuple[IgnoreDifference, ...]:
    raw = spec.get("ignoreDifferences") or []
    if not isinstance(raw, list):
        raise PermanentError("spec.ignoreDifferences must be a list")
    return tuple(_ignore_rule(item, f"spec.ignoreDifferences[{i}]") for i, item in enumerate(raw))


def parse_application(obj: Mapping[str, Any]) -> Application:
    """The Application in ``obj`` (a whole object with metadata and spec); PermanentError when invalid."""
    got = (obj.get("apiVersion", API_VERSION), obj.get("kind", APPLICATION_KIND))
    if got != (API_VERSION, APPLICATION_KIND):
        raise PermanentError(f"expected {API_VERSION} {APPLICATION_KIND}, got {got[0]} {got[1]}")
    meta = _required_map(obj, "metadata", "metadata")
    spec = _required_map(obj, "spec", "spec")
    if "sources" in spec:
        raise PermanentError("spec.sources is not supported (multi-source Applications); use spec.source")
    return Application(
        name=_str(meta, "name", "metadata.name"),
        namespace=_str(meta, "namespace", "metadata.namespace"),
        source=_source(spec),
        destination=_destination(spec),
        sync_policy=_sync_policy(spec),
        guard=_guard(spec),
        ignore_differences=_ignore_differences(spec),
    )
