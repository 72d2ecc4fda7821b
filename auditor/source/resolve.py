"""Resolve an Application's Git revision, then render it: two steps (orchestration over gitsource, renderers).

``resolve_revision`` fetches (or falls back to the cache) and resolves the revision to a commit;
``render_revision`` exports that commit's tree and renders it. They are separate so that each is a span of
its own in a reconcile pass (``git.fetch``, ``render``). For a chart from a Helm repository
(``spec.source.chart``) the first step pulls the chart version ``targetRevision`` picks (the revision is
that exact version) and the second renders the pulled chart.

An unreachable remote falls back to the mirror the last good fetch left, so the Application keeps its last
good revision and never empties; the fallback is reported, not hidden. Repository credentials come from
Secrets labelled ``driftwarden.io/secret-type=repository`` in the install namespace (``url`` prefix-matched,
``username``/``password`` or ``sshPrivateKey``/``knownHosts``); their values never leave this module.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

from auditor.application import Application
from auditor.settings import AuditorSettings
from auditor.source.git import GitCredentials, LocalRepo, cached, fetch
from auditor.source.helmcharts import pull_chart
from auditor.source.render import RenderResult
from auditor.source.renderers import render, render_chart
from driftwarden.errors import GitUnreachableError
from driftwarden.kube.rest import request_json, resource_path

SECRET_TYPE_LABEL = "driftwarden.io/secret-type"


@dataclass(frozen=True)
class Resolved:
    """The mirror an Application's revision was resolved in, the commit, and whether Git was only cached;
    for a repository chart, no mirror: the pulled chart's archive, and its exact version as revision."""

    repo: LocalRepo | None
    revision: str
    unreachable: str = ""
    """Non-empty when the remote could not be fetched and the cached mirror was used; says why."""
    chart: Path | None = None


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


async def resolve_revision(
    app: Application,
    *,
    settings: AuditorSettings,
    credentials: GitCredentials | None = None,
    revision: str | None = None,
) -> Resolved:
    """Fetch (or fall back to the cache) and resolve ``revision`` (default: targetRevision) to a commit;
    for a repository chart, pull the version ``revision`` picks."""
    if app.source.chart:
        if revision:
            app = dataclasses.replace(app, source=dataclasses.replace(app.source, target_revision=revision))
        cache, tools = settings.git_cache, settings.tools
        version, archive = await pull_chart(app, cache_dir=cache, tools=tools, credentials=credentials)
        return Resolved(None, version, chart=archive)
    repo, unreachable = await _repo(app, settings, credentials)
    sha = await repo.resolve(revision or app.source.target_revision)
    return Resolved(repo, sha, unreachable)


async def render_revision(app: Application, resolved: Resolved, *, settings: AuditorSettings) -> Rendered:
    """Export the resolved commit's tree and render the Application's source from it."""
    if resolved.chart is not None:
        result = await render_chart(app, resolved.chart, version=resolved.revision, tools=settings.tools)
        return Rendered(resolved.revision, result)
    assert resolved.repo is not None, "a Git source is resolved in a mirror"
    async with resolved.repo.exported(resolved.revision) as root:
        result = await render(app, root=root, revision=resolved.revision, tools=settings.tools)
    return Rendered(resolved.revision, result, resolved.unreachable)
