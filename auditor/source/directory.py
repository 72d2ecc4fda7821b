"""What a directory source renders: which files (include/exclude, recurse), and why nothing, when nothing.

Argo CD's rules for a directory source: ``*.yaml``/``*.yml``/``*.json`` are manifests, ``*.jsonnet`` files
are evaluated (``*.libsonnet`` are libraries they import), paths are matched against ``exclude`` first,
then ``include`` (globs over paths relative to the source path, ``{a,b}`` alternatives). A directory
whose files are all of a kind nothing renders (a config-management-plugin directory, only jsonnet
libraries) is an ``UnsupportedSourceError``, never an empty render: an empty render is for a directory
that really holds no objects. Also turns jsonnet output (an object, a list, nested lists or ``List``s)
into manifests. Pure: relative paths and parsed JSON in, tuples out; no file system, processes or logs.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from auditor.appsource import DirectorySource
from auditor.source.render import is_manifest_file, manifests_from_documents
from auditor.specfields import InvalidSpecError

JSONNET_SUFFIX = ".jsonnet"
LIBSONNET_SUFFIX = ".libsonnet"
_SHOWN = 5
_BRACES = re.compile(r"\{([^{}]*)\}")
# Files that never render in Argo CD either, and that a directory of manifests may well hold.
_DOCS = re.compile(
    r"(?i)^(readme|license|licence|notice|owners|codeowners|changelog|authors)(\..*)?$|\.(md|txt)$"
)


class UnsupportedSourceError(InvalidSpecError):
    """The source is of a kind driftwarden does not render (a plugin's files, only jsonnet libraries)."""


@dataclass(frozen=True)
class Selection:
    """The files of a directory source to render, by kind; paths relative to the source path."""

    manifests: tuple[str, ...]
    jsonnet: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.manifests or self.jsonnet)


def expand_braces(pattern: str) -> list[str]:
    """``{a,b}`` alternatives of a glob (nested and repeated ones too), as gobwas/glob reads them."""
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [expanded for alt in match.group(1).split(",") for expanded in expand_braces(head + alt + tail)]


def glob_match(pattern: str, path: str) -> bool:
    """Argo CD's ``glob.Match`` without separators: ``*`` matches across ``/`` too."""
    return any(fnmatch.fnmatchcase(path, alt) for alt in expand_braces(pattern))


def _wanted(options: DirectorySource, rel: str) -> bool:
    if options.exclude and glob_match(options.exclude, rel):
        return False
    return not options.include or glob_match(options.include, rel)


def select(options: DirectorySource, files: Iterable[str]) -> Selection:
    """The manifests and jsonnet files among ``files`` (relative to the source path), in path order."""
    manifests, jsonnet = [], []
    for rel in sorted(files):
        if not _wanted(options, rel):
            continue
        name = rel.rsplit("/", 1)[-1]
        if is_manifest_file(name):
            manifests.append(rel)
        elif name.endswith(JSONNET_SUFFIX):
            jsonnet.append(rel)
    return Selection(tuple(manifests), tuple(jsonnet))


def _listed(paths: list[str]) -> str:
    shown = ", ".join(paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def refuse_unrendered(path: str, options: DirectorySource, files: Iterable[str]) -> None:
    """Raise UnsupportedSourceError when a directory that renders nothing holds files of another kind.

    Files the include/exclude patterns leave out were left out on purpose; documentation and dotfiles
    never count. What is left says which source type this is, and the message names it.
    """
    others = sorted(
        rel
        for rel in files
        if _wanted(options, rel)
        and not rel.rsplit("/", 1)[-1].startswith(".")
        and not _DOCS.search(rel.rsplit("/", 1)[-1])
        and not any(part.startswith(".") for part in rel.split("/")[:-1])
    )
    if not others:
        return
    where = f"path {path}" if path not in ("", ".") else "the repository root"
    if all(rel.endswith(LIBSONNET_SUFFIX) for rel in others):
        raise UnsupportedSourceError(
            f"{where} renders nothing: it holds only jsonnet libraries ({_listed(others)}) and no *.jsonnet "
            "file to evaluate; point spec.source.path at the directory of the *.jsonnet files"
        )
    raise UnsupportedSourceError(
        f"{where} renders nothing: it holds no YAML, JSON or jsonnet, only files of a kind driftwarden does "
        f"not render ({_listed(others)}); source type 'plugin' (config management plugins) is not "
        "supported: commit the rendered manifests, or use Helm, Kustomize or jsonnet"
    )


def _flatten(value: Any, label: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{label}, item {i}")
    else:
        yield label, value


def jsonnet_manifests(output: Any, *, file: str) -> list[dict[str, Any]]:
    """The objects a jsonnet file evaluated to: an object, a ``List``, or (nested) lists of them."""
    return manifests_from_documents(_flatten(output, "output"), file=file)
