"""Helm: charts in Git (dependencies built first), and charts from Helm repositories and OCI registries.

Adapter layer over ``helm`` (built from source by ``make helm``), run through ``auditor.source.runner``
with a private HOME, cache, config and data directory per call, never the user's. A chart in Git whose
declared dependencies are not all vendored under ``charts/`` gets ``helm dependency build`` first (each
``https``/``http`` dependency repository is added to the private config by URL; ``file://`` and ``oci://``
ones need no adding). A chart from a repository (``spec.source.chart``) is pulled once per exact version
into ``<cache>/helm`` (``pull_chart``) and rendered from there (``render_pulled``). Repository
credentials reach helm on stdin (``--password-stdin``), never through argv, the environment or a
message. Failures are ``RenderError``, or ``ChartRepositoryError`` when a repository could not be read
(temporary: retried). This module must not read os.environ, log or decide policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml

from auditor.application import Application
from auditor.source.git import GitCredentials, scrub
from auditor.source.render import CHART_FILE, RenderResult, helm_sources, helm_template_args, parse_manifests
from auditor.source.runner import RenderTools, executable, helm_environment, run, scratch
from driftwarden.errors import RenderError, TemporaryError

EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
LATEST = ("", "HEAD", "*")
_REPO_NAME = "driftwarden-source"


class ChartRepositoryError(TemporaryError):
    """A chart could not be pulled from its Helm repository or OCI registry (tried again later)."""


def _need_helm(tools: RenderTools, what: str) -> Path:
    if not executable(tools.helm) or tools.helm is None:
        raise RenderError(
            f"cannot render {what}: helm is missing ({tools.helm or 'no helm binary configured'}). "
            "Build it from source with `make helm` (tools/build-helm.sh; needs Go 1.25+), "
            "or set DRIFTWARDEN_HELM_BIN_DIR to a directory that has helm"
        )
    return tools.helm


def _yaml_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _vendored(charts_dir: Path) -> set[str]:
    """Names of the charts under ``charts/``: unpacked directories and ``<name>-<version>.tgz`` archives."""
    names: set[str] = set()
    for entry in sorted(charts_dir.iterdir()) if charts_dir.is_dir() else ():
        if entry.is_dir():
            names.add(str(_yaml_file(entry / CHART_FILE).get("name", entry.name)))
        elif entry.name.endswith(".tgz"):
            names.add(entry.name[: -len(".tgz")].rsplit("-", 1)[0])
    return names


def _missing_dependencies(chart_dir: Path) -> list[dict[str, Any]]:
    """The dependencies Chart.yaml (or a v1 chart's requirements.yaml) declares that charts/ lacks."""
    declared = _yaml_file(chart_dir / CHART_FILE).get("dependencies") or _yaml_file(
        chart_dir / "requirements.yaml"
    ).get("dependencies")
    vendored = _vendored(chart_dir / "charts")
    return [d for d in declared or [] if isinstance(d, dict) and str(d.get("name")) not in vendored]


def _check_local(chart_dir: Path, root: Path, rel: str, missing: list[dict[str, Any]]) -> None:
    """A ``file://`` dependency must be inside the repository: helm would package any directory."""
    for dep in missing:
        url = str(dep.get("repository", ""))
        if url.startswith("file://") and not (chart_dir / url[7:]).resolve().is_relative_to(root.resolve()):
            raise RenderError(
                f"Helm chart {rel}: dependency {dep.get('name')} ({url}) is outside the repository"
            )


async def build_dependencies(
    chart_dir: Path, *, root: Path, rel: str, tools: RenderTools, home: Path
) -> None:
    """``helm dependency build`` when a declared dependency is not vendored; nothing otherwise."""
    missing = await asyncio.to_thread(_missing_dependencies, chart_dir)
    if not missing:
        return
    await asyncio.to_thread(_check_local, chart_dir, root, rel, missing)
    helm = _need_helm(tools, f"Helm chart {rel}")
    env = helm_environment(home)
    redact = {f"{chart_dir}/": f"{rel}/", str(chart_dir): rel, str(home): "<scratch>"}
    urls = sorted({str(d.get("repository", "")) for d in missing})
    for i, url in enumerate(u for u in urls if u.startswith(("https://", "http://"))):
        what = f"helm repo add for dependency repository {scrub(url)} of {rel}"
        await run([str(helm), "repo", "add", f"dependency-{i}", url], cwd=home, env=env, what=what,
                  tools=tools, redact=redact)  # fmt: skip
    for url in urls:
        if url.startswith("@") or url.startswith("alias:"):
            raise RenderError(f"Helm chart {rel}: dependency repository {url!r} is an alias; name it by URL")
    what = f"helm dependency build of {rel}"
    await run([str(helm), "dependency", "build", "--skip-refresh", str(chart_dir)], cwd=home, env=env,
              what=what, tools=tools, redact=redact)  # fmt: skip


def _value_file(root: Path, app_dir: Path, name: str, rel: str, revision: str) -> str:
    if "://" in name:
        raise RenderError(f"helm value file {name!r}: remote value files are not supported; keep it in Git")
    path = (app_dir / name).resolve()
    if not path.is_relative_to(root.resolve()):
        raise RenderError(f"helm value file {name!r} of {rel} is outside the repository")
    if not path.is_file():
        raise RenderError(f"helm value file {name!r} does not exist in {rel} at revision {revision}")
    return str(path)


async def render_helm(
    app: Application,
    *,
    root: Path,
    app_dir: Path,
    rel: str,
    revision: str,
    tools: RenderTools,
    kube_version: str = "",
    files_base: str | None = None,
) -> RenderResult:
    """``helm template`` of the chart in ``app_dir`` (``rel`` names it in messages), dependencies built."""
    helm_bin = _need_helm(tools, f"Helm chart {rel}")
    helm = app.source.helm
    value_files = []
    for name in helm.value_files if helm else ():
        value_files.append(await asyncio.to_thread(_value_file, root, app_dir, name, rel, revision))
    async with scratch() as home:
        await build_dependencies(app_dir, root=root, rel=rel, tools=tools, home=home)
        values_file = None
        if helm is not None and helm.values.strip():
            values_file = str(home / "values.yaml")
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
        redact = {f"{root}/": "", str(root): ".", str(home): "<scratch>"}
        out = await run([str(helm_bin), *args], cwd=home, env=helm_environment(home),
                        what=f"helm template of {rel}", tools=tools, redact=redact)  # fmt: skip
    manifests = await asyncio.to_thread(parse_manifests, out, file=f"helm template output of {rel}")
    chart = str((await asyncio.to_thread(_yaml_file, app_dir / CHART_FILE)).get("name", ""))
    base = rel if files_base is None else files_base
    return RenderResult(tuple(manifests), "helm", helm_sources(out, chart_name=chart, app_path=base))


def chart_label(repo_url: str, chart: str) -> str:
    """How a repository chart is named in messages: the repository without credentials, and the chart."""
    return f"chart {chart} of {scrub(repo_url)}"


def chart_cache(cache_dir: Path, repo_url: str, chart: str) -> Path:
    """Where pulled versions of one chart are kept: a readable name plus a hash of repository and chart."""
    digest = hashlib.sha256(f"{repo_url.strip().rstrip('/')}\n{chart}".encode()).hexdigest()[:20]
    return cache_dir / "helm" / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', chart)[:40]}-{digest}"


def _archive_version(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.name.count("/") == 1 and member.name.endswith("/" + CHART_FILE):
                handle = tar.extractfile(member)
                if handle is not None:
                    meta = yaml.safe_load(handle.read())
                    if isinstance(meta, dict) and meta.get("version"):
                        return str(meta["version"])
    raise RenderError(f"{archive.name} is not a Helm chart archive (no Chart.yaml with a version)")


def _keep(pulled: Path, cache: Path) -> tuple[str, Path]:
    archives = sorted(pulled.glob("*.tgz"))
    if len(archives) != 1:
        raise RenderError(f"helm pull wrote {len(archives)} chart archives, not one")
    archive = archives[0]
    version = _archive_version(archive)
    cache.mkdir(parents=True, exist_ok=True)
    kept = cache / f"{version}.tgz"
    # Copied beside its final name, then renamed: a pass reading the cache never sees half an archive.
    partial = Path(tempfile.mkstemp(dir=cache, prefix=f".{version}-", suffix=".partial")[1])
    shutil.move(str(archive), partial)
    os.replace(partial, kept)
    return version, kept


async def pull_chart(
    app: Application, *, cache_dir: Path, tools: RenderTools, credentials: GitCredentials | None
) -> tuple[str, Path]:
    """The exact version ``targetRevision`` picks and its archive; an exact version already pulled is not
    fetched again (chart versions do not change)."""
    source = app.source
    label = chart_label(source.repo_url, source.chart)
    cache = chart_cache(cache_dir, source.repo_url, source.chart)
    wanted = source.target_revision.strip()
    kept = cache / f"{wanted.removeprefix('v')}.tgz"
    exact = EXACT_VERSION.match(wanted) is not None
    if exact and await asyncio.to_thread(kept.is_file):
        return wanted.removeprefix("v"), kept
    helm = _need_helm(tools, label)
    secrets = credentials.secrets() if credentials else ()
    login = credentials if credentials is not None and credentials.password else None
    async with scratch() as home:
        redact = {str(home): "<scratch>", **{secret: "***" for secret in secrets}}
        await asyncio.to_thread((home / "pulled").mkdir)

        async def call(args: list[str], what: str, password: GitCredentials | None = None) -> None:
            try:
                await run([str(helm), *args], cwd=home, env=helm_environment(home), what=what, tools=tools,
                          redact=redact, stdin=password.password.encode() if password else None)  # fmt: skip
            except RenderError as exc:
                raise ChartRepositoryError(scrub(str(exc), secrets)) from exc

        url = source.repo_url.rstrip("/")
        if url.startswith("oci://"):
            ref, where = f"{url}/{source.chart}", list[str]()
            if login is not None:
                host = url.removeprefix("oci://").split("/", 1)[0]
                user = ["--username", login.username or "oauth2", "--password-stdin"]
                await call(["registry", "login", host, *user], f"helm registry login to {host}", login)
        elif login is not None:
            user = ["--username", login.username, "--password-stdin"]
            await call(["repo", "add", _REPO_NAME, url, *user], f"helm repo add {scrub(url)}", login)
            ref, where = f"{_REPO_NAME}/{source.chart}", []
        else:
            ref, where = source.chart, ["--repo", url]
        version = [] if wanted in LATEST else ["--version", wanted]
        await call(
            ["pull", ref, *where, *version, "--destination", str(home / "pulled")], f"helm pull of {label}"
        )
        return await asyncio.to_thread(_keep, home / "pulled", cache)


def _unpack(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")  # no absolute paths, links out, or devices
    found = [p for p in dest.iterdir() if p.is_dir()]
    if len(found) != 1:
        raise RenderError(f"{archive.name} holds {len(found)} top-level directories, not one chart")
    return found[0]


async def render_pulled(
    app: Application, archive: Path, *, version: str, tools: RenderTools, kube_version: str = ""
) -> RenderResult:
    """``helm template`` of a pulled chart, unpacked so that ``valueFiles`` can name files inside it."""
    label = chart_label(app.source.repo_url, app.source.chart)
    async with scratch() as unpacked:
        chart_dir = await asyncio.to_thread(_unpack, archive, unpacked)
        return await render_helm(
            app, root=unpacked, app_dir=chart_dir, rel=f"{label} {version}", revision=version,
            tools=tools, kube_version=kube_version, files_base="",
        )  # fmt: skip
