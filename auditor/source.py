"""Resolve an Application's Git revision and render it (orchestration over gitsource and renderers).

An unreachable remote falls back to the mirror the last good fetch left, so the Application keeps its last
good revision and never empties; the fallback is reported, not hidden. Repository credentials come from
Secrets labelled ``driftwarden.io/secret-type=repository`` in the install namespace (``url`` prefix-matched,
``username``/``password`` or ``sshPrivateKey``/``knownHosts``); their values never leave this module.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client

from auditor.application import Application
from auditor.gitsource import GitCredentials, LocalRepo, cached, fetch
from auditor.render import RenderResult
from auditor.renderers import render
from auditor.settings import AuditorSettings
from driftwarden.errors import GitUnreachableError
from driftwarden.kuberest import request_json, resource_path

SECRET_TYPE_LABEL = "driftwarden.io/secret-type"


@dataclass(frozen=True)
class Rendered:
    """The commit an Application resolved to, what it rendered, and whether Git was only read from cache."""

    revision: str
    result: RenderResult
    unreachable: str = ""
    """Non-empty when the remote could not be fetched and the cached mirror was used; says why."""


def _decode(data: dict[str, Any], key: str) -> str:
    raw = data.get(key)
    return base64.b64decode(raw).decode() if isinstance(raw, str) else ""


async def repository_credentials(
    api: client.ApiClient, repo_url: str, *, namespace: str
) -> GitCredentials | None:
    """The credentials of the longest matching ``url`` among the repository Secrets, if any."""
    path = resource_path(group="", version="v1", plural="secrets", namespace=namespace)
    listed = await request_json(
        api, "GET", path, query={"labelSelector": f"{SECRET_TYPE_LABEL}=repository"}, request_timeout=10
    )
    best: tuple[int, dict[str, Any]] | None = None
    for secret in listed.get("items") or []:
        data = secret.get("data") or {}
        url = _decode(data, "url")
        if url and repo_url.startswith(url) and (best is None or len(url) > best[0]):
            best = (len(url), data)
    if best is None:
        return None
    data = best[1]
    return GitCredentials(
        username=_decode(data, "username"),
        password=_decode(data, "password"),
        ssh_private_key=_decode(data, "sshPrivateKey"),
        known_hosts=_decode(data, "knownHosts"),
    )


async def _repo(
    app: Application, settings: AuditorSettings, credentials: GitCredentials | None
) -> tuple[LocalRepo, str]:
    try:
        return await fetch(app.source.repo_url, cache_dir=settings.git_cache, credentials=credentials), ""
    except GitUnreachableError as exc:
        repo = await cached(app.source.repo_url, cache_dir=settings.git_cache)
        if repo is None:
            raise
        return repo, f"{exc}; using the last fetched state of the repository"


async def resolve_and_render(
    app: Application,
    *,
    settings: AuditorSettings,
    credentials: GitCredentials | None = None,
    revision: str | None = None,
) -> Rendered:
    """Fetch (or fall back to the cache), resolve ``revision`` (default: targetRevision), and render it."""
    repo, unreachable = await _repo(app, settings, credentials)
    sha = await repo.resolve(revision or app.source.target_revision)
    async with repo.exported(sha) as root:
        result = await render(app, root=root, revision=sha, tools=settings.tools)
    return Rendered(sha, result, unreachable)
