"""Render adapters: plain manifest and jsonnet directories, kustomize and helm, over an exported commit tree.

I/O layer on top of ``auditor.source.render`` and ``auditor.source.directory`` (the pure cores). Files are
read and parsed in worker threads; kubectl/kustomize, helm (``auditor.source.helmcharts``) and the jsonnet
evaluator (``python -m auditor.source.jsonnetrun``) run as child processes with a minimal environment and a
timeout (``auditor.source.runner``). Every failure is a ``RenderError`` (or an ``UnsupportedSourceError``
for a directory of files nothing renders) whose text names repository-relative paths, never temporary
directories. This module must not fetch from Git, read os.environ, log, or decide whether an empty
render may be applied (orchestration owns allowEmpty).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from auditor.application import Application
from auditor.appsource import DirectorySource, KustomizeSource
from auditor.source.directory import jsonnet_manifests, refuse_unrendered, select
from auditor.source.helmcharts import render_helm, render_pulled
from auditor.source.render import (
    RenderResult,
    detect_source_type,
    edit_kustomization,
    kustomization_file,
    parse_manifests,
)
from auditor.source.runner import PATH, RenderTools, executable, run, scratch
from driftwarden.errors import RenderError

__all__ = ["RenderTools", "render", "render_chart"]

_PACKAGES = str(Path(__file__).resolve().parents[2])
"""Where the ``auditor`` package is, so the evaluator's interpreter imports this very copy of it."""


def _rel(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return rel or "."


def _source_dir(root: Path, rel: str, revision: str) -> tuple[Path, list[str]]:
    app_dir = root / rel
    resolved = app_dir.resolve()
    if not resolved.is_relative_to(root.resolve()) or not resolved.exists():
        raise RenderError(f"path {rel} does not exist at revision {revision}")
    if not resolved.is_dir():
        raise RenderError(f"path {rel} at revision {revision} is a file, not a directory")
    return app_dir, sorted(entry.name for entry in app_dir.iterdir())


def _directory_files(app_dir: Path, recurse: bool) -> list[str]:
    """Every file of the source directory (of its subdirectories too with ``recurse``), relative to it."""
    if not recurse:
        return sorted(p.name for p in app_dir.iterdir() if p.is_file())
    found = []
    for dirpath, dirnames, filenames in os.walk(app_dir):
        dirnames.sort()
        found += [(Path(dirpath) / name).relative_to(app_dir).as_posix() for name in filenames]
    return sorted(found)


def _parse_files(root: Path, app_dir: Path, files: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    return {
        rel: parse_manifests((app_dir / rel).read_bytes(), file=_rel(app_dir / rel, root)) for rel in files
    }


async def _evaluate_jsonnet(
    app: Application, options: DirectorySource, *, root: Path, app_dir: Path, files: tuple[str, ...],
    tools: RenderTools,
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Each jsonnet file's objects, evaluated in one child process with the Application's variables."""
    jsonnet = options.jsonnet
    request = {
        "root": str(root),
        "files": [str(app_dir / rel) for rel in files],
        "libs": [str(root / lib) for lib in jsonnet.libs],
        "ext_vars": {v.name: v.value for v in jsonnet.ext_vars if not v.code},
        "ext_codes": {v.name: v.value for v in jsonnet.ext_vars if v.code},
        "tla_vars": {v.name: v.value for v in jsonnet.tlas if not v.code},
        "tla_codes": {v.name: v.value for v in jsonnet.tlas if v.code},
    }
    async with scratch() as home:
        out = await run(
            [sys.executable, "-m", "auditor.source.jsonnetrun"],
            cwd=home,
            env={"HOME": str(home), "PATH": PATH, "PYTHONPATH": _PACKAGES},
            what=f"jsonnet evaluation of {app.source.path}",
            tools=tools,
            redact={f"{root}/": "", str(root): "."},
            stdin=json.dumps(request).encode(),
        )
    outputs = json.loads(out)
    return {
        rel: await asyncio.to_thread(jsonnet_manifests, output, file=_rel(app_dir / rel, root))
        for rel, output in zip(files, outputs, strict=True)
    }


async def _render_directory(
    app: Application, *, root: Path, app_dir: Path, tools: RenderTools
) -> RenderResult:
    options = app.source.directory or DirectorySource()
    files = await asyncio.to_thread(_directory_files, app_dir, options.recurse)
    selection = select(options, files)
    if selection.empty:
        refuse_unrendered(app.source.path, options, files)
        return RenderResult((), "directory", ())
    rendered = await asyncio.to_thread(_parse_files, root, app_dir, selection.manifests)
    if selection.jsonnet:
        rendered |= await _evaluate_jsonnet(
            app, options, root=root, app_dir=app_dir, files=selection.jsonnet, tools=tools
        )
    ordered = sorted(rendered)  # Argo CD walks the directory in path order, whatever a file's kind
    manifests = tuple(m for rel in ordered for m in rendered[rel])
    return RenderResult(manifests, "directory", tuple(_rel(app_dir / rel, root) for rel in ordered))


def _edit_kustomization(path: Path, options: KustomizeSource) -> bytes:
    """Apply the Application's kustomize options to the kustomization file in place (as Argo CD's
    ``kustomize edit set`` does in its checkout); returns the original bytes to put back."""
    original = path.read_bytes()
    try:
        loaded = yaml.safe_load(original) or {}
    except yaml.YAMLError as exc:
        raise RenderError(f"{path.name}: invalid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise RenderError(f"{path.name}: a kustomization must be a mapping")
    path.write_text(yaml.safe_dump(edit_kustomization(loaded, options), sort_keys=False))
    return original


async def _render_kustomize(
    app: Application, *, root: Path, app_dir: Path, names: list[str], tools: RenderTools
) -> RenderResult:
    rel = app.source.path
    if executable(tools.kustomize):
        base = [str(tools.kustomize), "build"]
    elif executable(tools.kubectl):
        base = [str(tools.kubectl), "kustomize"]
    else:
        looked = ", ".join(str(p) for p in (tools.kustomize, tools.kubectl) if p) or "none configured"
        raise RenderError(
            f"cannot build kustomization {rel}: no kustomize or kubectl binary ({looked}); "
            "build the pinned kubectl with `make control-plane` (tools/build-control-plane.sh)"
        )
    kfile = kustomization_file(names)
    options = app.source.kustomize
    edited = app_dir / kfile if kfile and options is not None else None
    original = None if edited is None or options is None else await asyncio.to_thread(
        _edit_kustomization, edited, options
    )  # fmt: skip
    try:
        async with scratch() as home:
            out = await run(
                [*base, str(app_dir)],
                cwd=home,
                env={"HOME": str(home), "PATH": PATH},
                what=f"kustomize build of {rel}",
                tools=tools,
                redact={f"{root}/": "", str(root): "."},
            )
    finally:
        if edited is not None and original is not None:  # the tree is rendered again, unedited
            await asyncio.to_thread(edited.write_bytes, original)
    manifests = await asyncio.to_thread(parse_manifests, out, file=f"kustomize output of {rel}")
    files = (_rel(app_dir / kfile, root),) if kfile else ()
    return RenderResult(tuple(manifests), "kustomize", files)


async def render(
    app: Application,
    *,
    root: Path,
    revision: str,
    tools: RenderTools,
    kube_version: str = "",
) -> RenderResult:
    """Render ``app.source`` from ``root``, the exported tree of commit ``revision`` (used in messages).

    The source type is detected as Argo CD does (``auditor.source.render.detect_source_type``). A missing
    path is a RenderError ``path <p> does not exist at revision <sha>``; an empty result is returned as
    is. A kustomization is edited in place while it builds, as Argo CD does, and put back afterwards.
    """
    source = app.source
    app_dir, names = await asyncio.to_thread(_source_dir, root, source.path, revision)
    kind = detect_source_type(source, names)
    if kind == "kustomize":
        return await _render_kustomize(app, root=root, app_dir=app_dir, names=names, tools=tools)
    if kind == "helm":
        return await render_helm(
            app, root=root, app_dir=app_dir, rel=source.path, revision=revision, tools=tools,
            kube_version=kube_version,
        )  # fmt: skip
    return await _render_directory(app, root=root, app_dir=app_dir, tools=tools)


async def render_chart(
    app: Application, archive: Path, *, version: str, tools: RenderTools, kube_version: str = ""
) -> RenderResult:
    """Render ``spec.source.chart`` from ``archive``, the pulled chart of ``version``."""
    return await render_pulled(app, archive, version=version, tools=tools, kube_version=kube_version)
