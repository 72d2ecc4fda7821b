"""Render adapters: read plain manifest directories, run kustomize and helm, over an exported commit tree.

I/O layer on top of ``auditor.source.render`` (the pure parsing core). Files are read and parsed in worker
threads; kubectl/kustomize/helm run as async subprocesses with a minimal environment (their own HOME and,
for helm, private cache/config dirs) and a timeout. Every failure is a ``RenderError`` whose text names
repository-relative paths, never temporary directories. This module must not fetch from Git, read
os.environ, log, or decide whether an empty render may be applied (orchestration owns allowEmpty).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from auditor.application import Application, KustomizeSource
from auditor.source.render import (
    CHART_FILE,
    RenderResult,
    clip_output,
    detect_source_type,
    helm_sources,
    helm_template_args,
    is_manifest_file,
    kustomization_file,
    overlay_kustomization,
    parse_manifests,
)
from driftwarden.errors import RenderError

DEFAULT_TIMEOUT = 120.0
_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class RenderTools:
    """Binaries the renderers may run; kustomizations build with ``kustomize`` if set, else ``kubectl``."""

    kubectl: Path | None = None
    kustomize: Path | None = None
    helm: Path | None = None
    timeout: float = DEFAULT_TIMEOUT


def _executable(path: Path | None) -> bool:
    return path is not None and path.is_file() and os.access(path, os.X_OK)


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


def _directory_files(app_dir: Path, recurse: bool) -> list[Path]:
    if not recurse:
        return sorted(p for p in app_dir.iterdir() if p.is_file() and is_manifest_file(p.name))
    found = []
    for dirpath, dirnames, filenames in os.walk(app_dir):
        dirnames.sort()
        found += [Path(dirpath) / name for name in filenames if is_manifest_file(name)]
    return sorted(found, key=lambda p: p.relative_to(app_dir).as_posix())


def _render_directory(root: Path, app_dir: Path, recurse: bool) -> RenderResult:
    manifests: list[dict[str, Any]] = []
    files = []
    for path in _directory_files(app_dir, recurse):
        rel = _rel(path, root)
        files.append(rel)
        manifests += parse_manifests(path.read_bytes(), file=rel)
    return RenderResult(tuple(manifests), "directory", tuple(files))


async def _run(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    what: str,
    tools: RenderTools,
    redact: Mapping[str, str],
) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise RenderError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), tools.timeout)
    except TimeoutError:
        raise RenderError(f"{what} did not finish within {tools.timeout:g}s") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        message = clip_output(err.decode(errors="replace"), replace=redact)
        raise RenderError(f"{what} failed (exit status {proc.returncode}): {message}")
    return out.decode(errors="replace")


@contextlib.asynccontextmanager
async def _scratch() -> AsyncIterator[Path]:
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="driftwarden-render-"))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


def _write_overlay(overlay_dir: Path, root: Path, app_dir: Path, options: KustomizeSource) -> str | None:
    """Write the overlay that applies the Application's kustomize options; returns the overlay's relative
    path to ``root`` (to redact from messages), or None when there are no options to apply."""
    overlay = overlay_kustomization(os.path.relpath(app_dir, overlay_dir), options)
    if overlay is None:
        return None
    overlay_dir.mkdir()
    (overlay_dir / "kustomization.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    return os.path.relpath(root, overlay_dir)


async def _render_kustomize(
    app: Application, *, root: Path, app_dir: Path, names: list[str], tools: RenderTools
) -> RenderResult:
    rel = app.source.path
    if _executable(tools.kustomize):
        base = [str(tools.kustomize), "build"]
    elif _executable(tools.kubectl):
        base = [str(tools.kubectl), "kustomize"]
    else:
        looked = ", ".join(str(p) for p in (tools.kustomize, tools.kubectl) if p) or "none configured"
        raise RenderError(
            f"cannot build kustomization {rel}: no kustomize or kubectl binary ({looked}); "
            "build the pinned kubectl with `make control-plane` (tools/build-control-plane.sh)"
        )
    async with _scratch() as scratch:
        target = scratch / "overlay"
        redact = {f"{root}/": "", str(root): ".", str(scratch): "<overlay>"}
        options = app.source.kustomize
        up = (
            None
            if options is None
            else await asyncio.to_thread(_write_overlay, target, root, app_dir, options)
        )
        if up is None:
            target = app_dir
        else:
            redact[f"{up}/"] = ""
        env = {"HOME": str(scratch), "PATH": _PATH}
        out = await _run(
            [*base, str(target)],
            cwd=scratch,
            env=env,
            what=f"kustomize build of {rel}",
            tools=tools,
            redact=redact,
        )
    manifests = await asyncio.to_thread(parse_manifests, out, file=f"kustomize output of {rel}")
    kfile = kustomization_file(names)
    files = (_rel(app_dir / kfile, root),) if kfile else ()
    return RenderResult(tuple(manifests), "kustomize", files)


def _value_file(root: Path, app_dir: Path, name: str, rel: str, revision: str) -> str:
    if "://" in name:
        raise RenderError(f"helm value file {name!r}: remote value files are not supported; keep it in Git")
    path = (app_dir / name).resolve()
    if not path.is_relative_to(root.resolve()):
        raise RenderError(f"helm value file {name!r} of {rel} is outside the repository")
    if not path.is_file():
        raise RenderError(f"helm value file {name!r} does not exist in {rel} at revision {revision}")
    return str(path)


def _chart_name(app_dir: Path) -> str:
    try:
        chart = yaml.safe_load((app_dir / CHART_FILE).read_text())
    except (OSError, yaml.YAMLError):
        return ""
    return str(chart.get("name", "")) if isinstance(chart, dict) else ""


async def _render_helm(
    app: Application, *, root: Path, app_dir: Path, revision: str, tools: RenderTools, kube_version: str
) -> RenderResult:
    rel = app.source.path
    if not _executable(tools.helm):
        raise RenderError(
            f"cannot render Helm chart {rel}: helm is missing ({tools.helm or 'no helm binary configured'}). "
            "Build it from source with `make helm` (tools/build-helm.sh; needs Go 1.25+), "
            "or set DRIFTWARDEN_HELM_BIN_DIR to a directory that has helm"
        )
    helm = app.source.helm
    value_files = []
    for name in helm.value_files if helm else ():
        value_files.append(await asyncio.to_thread(_value_file, root, app_dir, name, rel, revision))
    async with _scratch() as scratch:
        values_file = None
        if helm is not None and helm.values.strip():
            values_file = str(scratch / "values.yaml")
            await asyncio.to_thread(Path(values_file).write_text, helm.values)
        args = helm_template_args(
            (helm.release_name if helm else "") or app.name,
            chart_dir=str(app_dir),
            namespace=app.destination.namespace,
            value_files=tuple(value_files),
            values_file=values_file,
            parameters=helm.parameters if helm else (),
            kube_version=kube_version,
        )
        env = {
            "HOME": str(scratch),
            "PATH": _PATH,
            "HELM_CACHE_HOME": str(scratch / "cache"),
            "HELM_CONFIG_HOME": str(scratch / "config"),
            "HELM_DATA_HOME": str(scratch / "data"),
        }
        redact = {f"{root}/": "", str(root): ".", str(scratch): "<scratch>"}
        out = await _run(
            [str(tools.helm), *args],
            cwd=scratch,
            env=env,
            what=f"helm template of {rel}",
            tools=tools,
            redact=redact,
        )
    manifests = await asyncio.to_thread(parse_manifests, out, file=f"helm template output of {rel}")
    chart = await asyncio.to_thread(_chart_name, app_dir)
    return RenderResult(tuple(manifests), "helm", helm_sources(out, chart_name=chart, app_path=rel))


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
    path is
    a RenderError ``path <p> does not exist at revision <sha>``; an empty result is returned as is.
    """
    source = app.source
    app_dir, names = await asyncio.to_thread(_source_dir, root, source.path, revision)
    kind = detect_source_type(source, names)
    if kind == "kustomize":
        return await _render_kustomize(app, root=root, app_dir=app_dir, names=names, tools=tools)
    if kind == "helm":
        return await _render_helm(
            app, root=root, app_dir=app_dir, revision=revision, tools=tools, kube_version=kube_version
        )
    recurse = source.directory is not None and source.directory.recurse
    return await asyncio.to_thread(_render_directory, root, app_dir, recurse)
