"""Rendering core: source-type detection, manifest parsing, kustomization edits and helm's arguments.

Pure functions over names, text and parsed Application sources: text in, plain manifest dicts and frozen
``RenderResult`` out. Errors are ``RenderError`` naming the file (repository-relative), line or document.
This module must not touch the file system, run processes, await or log; ``auditor.source.renderers`` does
the I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from auditor.appsource import HelmParameter, KustomizeSource, Source
from driftwarden.errors import RenderError

SourceType = Literal["directory", "kustomize", "helm"]
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CHART_FILE = "Chart.yaml"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
OUTPUT_LIMIT = 2000
NAME_FIELDS = ("name", "generateName")
"""An object needs one; a ``generateName`` is accepted here and refused later unless the object is a hook."""

_HELM_SOURCE = re.compile(r"^# Source: (\S+)\s*$", re.MULTILINE)
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


@dataclass(frozen=True)
class RenderResult:
    """What a source rendered to: manifests in a stable order, how, and from which repository files.

    ``files`` are repository-relative paths: the manifest files read (directory), the kustomization file
    (kustomize), or the chart templates that produced output (helm). An empty ``manifests`` is valid.
    """

    manifests: tuple[dict[str, Any], ...]
    source_type: SourceType
    files: tuple[str, ...]


def kustomization_file(names: Collection[str]) -> str | None:
    """The kustomization file among a directory's entry ``names``, in kustomize's own order of preference."""
    return next((name for name in KUSTOMIZATION_FILES if name in names), None)


def detect_source_type(source: Source, names: Collection[str]) -> SourceType:
    """The source type as Argo CD detects it, from the Application and ``names`` (the path's entries).

    An explicit ``helm``/``kustomize``/``directory`` wins; else a kustomization file means Kustomize,
    ``Chart.yaml`` means Helm (a kustomization wins over a chart), anything else is a plain directory.
    """
    if source.helm is not None:
        return "helm"
    if source.kustomize is not None:
        return "kustomize"
    if source.directory is not None:
        return "directory"
    if kustomization_file(names):
        return "kustomize"
    if CHART_FILE in names:
        return "helm"
    return "directory"


def is_manifest_file(name: str) -> bool:
    return name.endswith(MANIFEST_SUFFIXES)


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as Kubernetes reads it: timestamps stay strings (sigs.k8s.io/yaml goes through JSON)."""


_RESOLVERS = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.yaml_implicit_resolvers = _RESOLVERS
# The same with libyaml's parser when PyYAML was built with it (its wheels are): about 8x less CPU per
# document, and parsing was the largest share of a full pass's own CPU (docs/benchmarks.md). Only the
# pure-Python parser words an error as users and tests know it, so a document libyaml refuses is parsed
# again by it for the message.
_FastLoader: Any = None
if hasattr(yaml, "CSafeLoader"):

    class _CLoader(yaml.CSafeLoader):
        """``_Loader`` on libyaml."""

    _CLoader.yaml_implicit_resolvers = _RESOLVERS
    _FastLoader = _CLoader


def _documents(loader: Any) -> Iterator[tuple[str, Any]]:
    index = 0
    while loader.check_node():
        node = loader.get_node()
        index += 1
        if node is None:
            continue
        yield f"document {index} (line {node.start_mark.line + 1})", loader.construct_document(node)


def _yaml_documents(text: str, *, file: str) -> Iterator[tuple[str, Any]]:
    """(label, value) for each document; labels read ``document N (line L)``, counting from 1."""
    if _FastLoader is not None:
        fast = _FastLoader(text)
        try:
            return iter(list(_documents(fast)))
        except yaml.YAMLError:
            pass  # parsed again below, for the error in the pure-Python parser's words
        finally:
            fast.dispose()
    return _slow_documents(text, file=file)


def _slow_documents(text: str, *, file: str) -> Iterator[tuple[str, Any]]:
    loader = _Loader(text)
    try:
        yield from _documents(loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        context = exc.context or ""
        if context and exc.context_mark is not None and exc.context_mark is not mark:
            context += f" (from line {exc.context_mark.line + 1})"
        problem = ": ".join(p for p in (context, exc.problem) if p) or "malformed"
        raise RenderError(f"{where}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise RenderError(f"{file}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


def _check_object(doc: Mapping[str, Any], where: str) -> dict[str, Any]:
    for field in ("apiVersion", "kind"):
        if not isinstance(doc.get(field), str) or not doc[field]:
            raise RenderError(f"{where}: not a Kubernetes object: {field} is missing")
    meta = doc.get("metadata")
    named = isinstance(meta, Mapping) and any(isinstance(meta.get(k), str) and meta[k] for k in NAME_FIELDS)
    if not named:
        raise RenderError(f"{where}: {doc['kind']} has no metadata.name")
    return dict(doc)


def _is_list(doc: Mapping[str, Any]) -> bool:
    kind = doc.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list)


def manifests_from_documents(documents: Iterator[tuple[str, Any]], *, file: str) -> list[dict[str, Any]]:
    """Objects from parsed documents: empty ones skipped, ``List`` kinds flattened, each one checked."""
    found: list[dict[str, Any]] = []
    for label, doc in documents:
        where = f"{file}: {label}"
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise RenderError(f"{where}: expected a mapping (a Kubernetes object), got {type(doc).__name__}")
        if not _is_list(doc):
            found.append(_check_object(doc, where))
            continue
        for i, item in enumerate(doc["items"]):
            if not isinstance(item, Mapping):
                raise RenderError(f"{where}, item {i}: expected a mapping, got {type(item).__name__}")
            found.append(_check_object(item, f"{where}, item {i}"))
    return found


def parse_manifests(data: bytes | str, *, file: str) -> list[dict[str, Any]]:
    """The Kubernetes objects in one file (``*.json`` is one JSON document, anything else YAML) or stream."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise RenderError(f"{file}: not UTF-8 text (byte {exc.start})") from exc
    if not file.endswith(".json"):
        return manifests_from_documents(_yaml_documents(text, file=file), file=file)
    try:
        doc = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        raise RenderError(f"{file}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    return manifests_from_documents(iter([("document 1 (line 1)", doc)]), file=file)


def parse_image(spec: str) -> dict[str, str]:
    """A ``kustomize edit set image`` argument (``[name=]newName[:tag][@digest]``) as an ``images`` entry."""
    name, sep, rest = spec.partition("=")
    target = rest if sep else spec
    target, _, digest = target.partition("@")
    slash = target.rfind("/")
    colon = target.rfind(":")
    new_name, tag = (target[:colon], target[colon + 1 :]) if colon > slash else (target, "")
    if not (name if sep else new_name) or (sep and not new_name):
        raise RenderError(f"spec.source.kustomize.images entry {spec!r} is not [name=]newName[:tag][@digest]")
    image = {"name": name if sep else new_name}
    if sep:
        image["newName"] = new_name
    if tag:
        image["newTag"] = tag
    if digest:
        image["digest"] = digest
    return image


_PRESERVE = "*"
_IMAGE_FIELDS = ("newName", "newTag", "digest")


def _set_images(images: list[Any], specs: tuple[str, ...]) -> list[dict[str, Any]]:
    """``kustomize edit set image``: each argument replaces the entry of the same name whole (a ``*``
    keeps that entry's newName, newTag or digest) or is added; the list comes out sorted by name."""
    wanted = {image["name"]: image for image in map(parse_image, specs)}
    merged: dict[str, dict[str, Any]] = {}
    for entry in images:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            continue
        arg = wanted.get(entry["name"])
        if arg is None:
            merged[entry["name"]] = dict(entry)
            continue
        merged[entry["name"]] = {
            key: entry.get(key, "") if value == _PRESERVE else value for key, value in arg.items()
        }
    for name, arg in wanted.items():
        merged.setdefault(name, arg)
    return [
        {k: v for k, v in merged[name].items() if k not in _IMAGE_FIELDS or v not in ("", _PRESERVE)}
        for name in sorted(merged)
    ]


def edit_kustomization(kustomization: Mapping[str, Any], options: KustomizeSource) -> dict[str, Any]:
    """The kustomization as Argo CD leaves it before building: ``kustomize edit set nameprefix``,
    ``namesuffix`` and ``image`` run in the source directory, so the Application's prefix and suffix
    replace the kustomization's own (they are not added on top) and its images replace entries by name."""
    edited = dict(kustomization)
    if options.name_prefix:
        edited["namePrefix"] = options.name_prefix
    if options.name_suffix:
        edited["nameSuffix"] = options.name_suffix
    if options.images:
        edited["images"] = _set_images(list(edited.get("images") or []), options.images)
    return edited


def _set_value(value: str) -> str:
    """Escape commas as Argo CD does, so a value is one value (``{a,b}`` stays a Helm list)."""
    if value.startswith("{") and value.endswith("}"):
        return value
    return _UNESCAPED_COMMA.sub(r"\\,", value)


def helm_template_args(
    release: str,
    *,
    chart_dir: str,
    namespace: str = "",
    value_files: tuple[str, ...] = (),
    values_file: str | None = None,
    parameters: tuple[HelmParameter, ...] = (),
    kube_version: str = "",
) -> list[str]:
    """``helm template`` arguments (after the binary); Argo CD's order: value files, inline values, sets."""
    args = ["template", release, chart_dir, "--include-crds"]
    if namespace:
        args += ["--namespace", namespace]
    if kube_version:
        args += ["--kube-version", kube_version]
    for path in (*value_files, *([values_file] if values_file else [])):
        args += ["--values", path]
    for param in parameters:
        args += ["--set-string" if param.force_string else "--set", f"{param.name}={_set_value(param.value)}"]
    return args


def helm_sources(output: str, *, chart_name: str, app_path: str) -> tuple[str, ...]:
    """Repository-relative template paths named by ``# Source:`` lines in ``helm template`` output."""
    base = "" if app_path in ("", ".") else app_path.rstrip("/") + "/"
    found = set()
    for source in _HELM_SOURCE.findall(output):
        head, _, rest = source.partition("/")
        found.add(base + rest if head == chart_name and rest else source)
    return tuple(sorted(found))


def clip_output(text: str, *, replace: Mapping[str, str] | None = None) -> str:
    """Tool output fit for a message: temporary paths replaced, the tail kept when it is long."""
    for old, new in sorted((replace or {}).items(), key=lambda kv: len(kv[0]), reverse=True):
        text = text.replace(old, new)
    text = text.strip()
    if len(text) > OUTPUT_LIMIT:
        text = f"...({len(text) - OUTPUT_LIMIT} characters clipped) " + text[-OUTPUT_LIMIT:]
    return text or "(no output)"
