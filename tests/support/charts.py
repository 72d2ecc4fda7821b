"""Helm charts for tests: charts in Git with dependencies (vendored, or ``file://`` ones to build), and a
chart repository served over HTTP on 127.0.0.1 (an ``index.yaml`` and packaged charts made with the real
helm: ``helm package`` and ``helm repo index``), optionally behind basic auth."""

from __future__ import annotations

import base64
import contextlib
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}}}
data:
  chart: {{{{ .Chart.Name }}}}
  version: {{{{ .Chart.Version | quote }}}}
  color: {{{{ .Values.color | quote }}}}
"""


def chart_files(
    prefix: str, name: str, version: str = "0.1.0", *, deps: str = "", color: str = "blue"
) -> dict[str, str]:
    """A chart ``name`` under ``prefix/`` with one ConfigMap ``<release>-<name>``; ``deps`` is YAML for
    Chart.yaml's ``dependencies``."""
    chart = f"apiVersion: v2\nname: {name}\nversion: {version}\n" + (f"dependencies:\n{deps}" if deps else "")
    return {
        f"{prefix}/Chart.yaml": chart,
        f"{prefix}/values.yaml": f"color: {color}\n",
        f"{prefix}/templates/cm.yaml": CONFIGMAP.format(name="{{ .Release.Name }}-" + name),
    }


CHARTS_IN_GIT = {
    # A dependency vendored under charts/: rendered as is; its repository is never asked.
    **chart_files("charts/vendored", "vendored", deps="- {name: sub, version: 0.1.0, repository: https://charts.invalid}\n"),
    **chart_files("charts/vendored/charts/sub", "sub", color="green"),
    # A dependency in the same repository (file://): `helm dependency build` packages it first.
    **chart_files("charts/parent", "parent", deps="- {name: child, version: 0.2.0, repository: file://../child}\n"),
    **chart_files("charts/child", "child", "0.2.0", color="red"),
}  # fmt: skip


def package(helm: Path, chart_dir: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(helm), "package", str(chart_dir), "--destination", str(dest)], check=True,
                   capture_output=True, env={"HOME": str(dest.parent), "PATH": "/usr/bin:/bin"})  # fmt: skip


def repository_dir(helm: Path, work: Path, versions: dict[str, list[str]]) -> Path:
    """A directory with each chart at each version packaged and an ``index.yaml`` (relative URLs)."""
    served = work / "served"
    for name, listed in versions.items():
        for version in listed:
            source = work / "src" / f"{name}-{version}"
            for rel, text in chart_files(str(source), name, version, color=f"v{version}").items():
                Path(rel).parent.mkdir(parents=True, exist_ok=True)
                Path(rel).write_text(text)
            package(helm, source, served)
    subprocess.run([str(helm), "repo", "index", str(served)], check=True, capture_output=True,
                   env={"HOME": str(work), "PATH": "/usr/bin:/bin"})  # fmt: skip
    return served


@contextlib.asynccontextmanager
async def serve(directory: Path, *, basic_auth: tuple[str, str] | None = None) -> AsyncIterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port); yields the base URL."""
    expected = "Basic " + base64.b64encode(":".join(basic_auth).encode()).decode() if basic_auth else None

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if expected is not None and request.headers.get("Authorization") != expected:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="charts"'})
        return await handler(request)

    app = web.Application(middlewares=[guard])
    app.router.add_static("/", directory)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
