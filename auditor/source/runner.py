"""Running the render tools (kubectl/kustomize, helm, the jsonnet evaluator) as child processes.

Adapter layer shared by the renderers: ``RenderTools`` says which binaries to run, ``run`` runs one with a
minimal environment, its input on stdin, a timeout (the child is killed when it runs out) and its error
output clipped and stripped of temporary paths and secrets; ``scratch`` is a private directory removed
afterwards; ``helm_environment`` gives helm a HOME, cache, config and data directory inside it, never the
user's. Failures are ``RenderError``. This module must not read os.environ, log or parse manifests.
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

from auditor.source.render import clip_output
from driftwarden.errors import RenderError

DEFAULT_TIMEOUT = 120.0
PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class RenderTools:
    """Binaries the renderers may run; kustomizations build with ``kustomize`` if set, else ``kubectl``."""

    kubectl: Path | None = None
    kustomize: Path | None = None
    helm: Path | None = None
    timeout: float = DEFAULT_TIMEOUT


def executable(path: Path | None) -> bool:
    return path is not None and path.is_file() and os.access(path, os.X_OK)


async def run(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    what: str,
    tools: RenderTools,
    redact: Mapping[str, str],
    stdin: bytes | None = None,
) -> str:
    """``argv``'s standard output; RenderError naming ``what`` when it fails or outlives the timeout."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise RenderError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), tools.timeout)
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
async def scratch() -> AsyncIterator[Path]:
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="driftwarden-render-"))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


def helm_environment(home: Path) -> dict[str, str]:
    """helm's environment: everything it keeps (repositories, registry logins, caches) under ``home``."""
    return {
        "HOME": str(home),
        "PATH": PATH,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
