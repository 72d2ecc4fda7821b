"""The source part of an Application's spec (``spec.source``), parsed into frozen, defaulted dataclasses.

Argo CD's shape: a Git ``path`` rendered as a directory (plain YAML/JSON and jsonnet), Kustomize or Helm,
or a Helm ``chart`` from a chart repository (``repoURL`` is then the repository, ``targetRevision`` the
chart version). Invalid fields raise PermanentError naming the field; ``auditor.application`` turns them
into ``InvalidSpecError``. Pure: plain mappings in, dataclasses out; no I/O, no logging.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.specfields import check_path, read_bool, read_map, read_str, read_strs, required_map
from driftwarden.errors import PermanentError

DEFAULT_TARGET_REVISION = "HEAD"


@dataclass(frozen=True)
class JsonnetVar:
    """An ``extVars``/``tlas`` entry: a string, or jsonnet code when ``code`` is set."""

    name: str
    value: str
    code: bool = False


@dataclass(frozen=True)
class JsonnetSource:
    ext_vars: tuple[JsonnetVar, ...] = ()
    tlas: tuple[JsonnetVar, ...] = ()
    libs: tuple[str, ...] = ()
    """Library directories, relative to the repository root (Argo CD's ``jsonnet.libs``)."""


@dataclass(frozen=True)
class DirectorySource:
    recurse: bool = False
    include: str = ""
    """A glob over paths relative to the source path (``{a,b}`` alternatives); empty includes all."""
    exclude: str = ""
    jsonnet: JsonnetSource = JsonnetSource()


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
    chart: str = ""
    """A chart of the Helm repository (or OCI registry) ``repo_url``; empty for a Git source."""


def _jsonnet_vars(raw: Mapping[str, Any], key: str, path: str) -> tuple[JsonnetVar, ...]:
    items = raw.get(key) or []
    if not isinstance(items, list):
        raise PermanentError(f"{path}.{key} must be a list")
    found = []
    for i, item in enumerate(items):
        where = f"{path}.{key}[{i}]"
        if not isinstance(item, Mapping):
            raise PermanentError(f"{where} must be a mapping with name, value and code")
        value = item.get("value", "")
        if not isinstance(value, str):
            raise PermanentError(f"{where}.value must be a string, got {type(value).__name__}")
        code = read_bool(item, "code", f"{where}.code")
        found.append(JsonnetVar(read_str(item, "name", f"{where}.name"), value, code))
    return tuple(found)


def _jsonnet(raw: Mapping[str, Any] | None, path: str) -> JsonnetSource:
    if raw is None:
        return JsonnetSource()
    libs = read_strs(raw, "libs", f"{path}.libs")
    for i, lib in enumerate(libs):
        check_path(lib, f"{path}.libs[{i}]")
    return JsonnetSource(_jsonnet_vars(raw, "extVars", path), _jsonnet_vars(raw, "tlas", path), libs)


def _directory(raw: Mapping[str, Any], path: str) -> DirectorySource:
    return DirectorySource(
        recurse=read_bool(raw, "recurse", f"{path}.recurse"),
        include=read_str(raw, "include", f"{path}.include", default=""),
        exclude=read_str(raw, "exclude", f"{path}.exclude", default=""),
        jsonnet=_jsonnet(read_map(raw, "jsonnet", f"{path}.jsonnet"), f"{path}.jsonnet"),
    )


def _helm(raw: Mapping[str, Any], path: str) -> HelmSource:
    params = []
    for i, item in enumerate(raw.get("parameters") or []):
        where = f"{path}.parameters[{i}]"
        if not isinstance(item, Mapping):
            raise PermanentError(f"{where} must be a mapping")
        value = item.get("value", "")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        force = read_bool(item, "forceString", f"{where}.forceString")
        params.append(HelmParameter(read_str(item, "name", f"{where}.name"), text, force))
    return HelmSource(
        value_files=read_strs(raw, "valueFiles", f"{path}.valueFiles"),
        values=read_str(raw, "values", f"{path}.values", default=""),
        parameters=tuple(params),
        release_name=read_str(raw, "releaseName", f"{path}.releaseName", default=""),
    )


def _kustomize(raw: Mapping[str, Any], path: str) -> KustomizeSource:
    return KustomizeSource(
        name_prefix=read_str(raw, "namePrefix", f"{path}.namePrefix", default=""),
        name_suffix=read_str(raw, "nameSuffix", f"{path}.nameSuffix", default=""),
        images=read_strs(raw, "images", f"{path}.images"),
    )


def parse_source(spec: Mapping[str, Any]) -> Source:
    """``spec.source`` of an Application spec; PermanentError naming the field when it is invalid."""
    raw = required_map(spec, "source", "spec.source")
    if "plugin" in raw:
        raise PermanentError(
            "spec.source.plugin: source type 'plugin' (config management plugins) is not supported; "
            "commit the rendered manifests, or render them with Helm, Kustomize or jsonnet"
        )
    kinds = [k for k in ("directory", "helm", "kustomize") if raw.get(k) is not None]
    if len(kinds) > 1:
        raise PermanentError(f"spec.source may set only one of directory, helm, kustomize; got {kinds}")
    chart = read_str(raw, "chart", "spec.source.chart", default="")
    if chart and kinds and kinds != ["helm"]:
        raise PermanentError(f"spec.source.chart is a Helm chart: spec.source.{kinds[0]} does not apply")
    directory = read_map(raw, "directory", "spec.source.directory")
    helm = read_map(raw, "helm", "spec.source.helm")
    kustomize = read_map(raw, "kustomize", "spec.source.kustomize")
    return Source(
        repo_url=read_str(raw, "repoURL", "spec.source.repoURL"),
        target_revision=read_str(
            raw, "targetRevision", "spec.source.targetRevision", default=DEFAULT_TARGET_REVISION
        ),
        path=check_path(read_str(raw, "path", "spec.source.path", default="."), "spec.source.path"),
        directory=None if directory is None else _directory(directory, "spec.source.directory"),
        helm=None if helm is None else _helm(helm, "spec.source.helm"),
        kustomize=None if kustomize is None else _kustomize(kustomize, "spec.source.kustomize"),
        chart=chart,
    )
