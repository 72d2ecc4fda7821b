"""Helm charts for tests: charts in Git with dependencies (vendored, or ``file://`` ones to build), a chart
repository served over HTTP on 127.0.0.1 (an ``index.yaml`` and packaged charts made with the real helm:
``helm package`` and ``helm repo index``), optionally behind basic auth, and an OCI registry (CNCF
Distribution, built from source by tools/build-registry.sh) to ``helm push`` charts to."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import aiohttp
from aiohttp import web

from driftwarden.settings import cache_root

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

DEPENDENCY_CASES = {
    "charts/vendored": {"vendored": "blue", "sub": "green"},
    "charts/parent": {"parent": "blue", "child": "red"},
}
"""For each chart of CHARTS_IN_GIT: the color of each chart's ConfigMap (``<release>-<chart>``) it renders."""


def package(helm: Path, chart_dir: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(helm), "package", str(chart_dir), "--destination", str(dest)], check=True,
                   capture_output=True, env={"HOME": str(dest.parent), "PATH": "/usr/bin:/bin"})  # fmt: skip


def packaged(helm: Path, work: Path, versions: dict[str, list[str]]) -> Path:
    """A directory with each chart at each version packaged (``<name>-<version>.tgz``); ``color`` is
    ``v<version>``, so a render shows which version it came from."""
    served = work / "served"
    for name, listed in versions.items():
        for version in listed:
            source = work / "src" / f"{name}-{version}"
            for rel, text in chart_files(str(source), name, version, color=f"v{version}").items():
                Path(rel).parent.mkdir(parents=True, exist_ok=True)
                Path(rel).write_text(text)
            package(helm, source, served)
    return served


def repository_dir(helm: Path, work: Path, versions: dict[str, list[str]]) -> Path:
    """``packaged`` plus the ``index.yaml`` of a Helm repository (``helm repo index``, relative URLs)."""
    served = packaged(helm, work, versions)
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


REGISTRY_VERSION = "v3.0.0"
"""The registry tools/build-registry.sh builds (pinned in tools/registry/go.mod); keep the two in step."""


def registry_bin_dir(env: Mapping[str, str]) -> Path:
    """The cache directory of the pinned OCI registry (``registry-<version>``), as the build script prints."""
    return cache_root(env) / f"registry-{REGISTRY_VERSION}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def oci_registry(binary: Path, work: Path) -> AsyncIterator[str]:
    """The CNCF Distribution registry on 127.0.0.1 (plain HTTP, as helm speaks to a loopback registry),
    storing under ``work``; yields ``host:port``. Stopped (its own process only) when the block ends."""
    port = _free_port()
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\n"
        f"storage: {{filesystem: {{rootdirectory: {work / 'data'}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        "serve",
        str(config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/v2/") as answer:
                        if answer.status == 200:
                            break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the OCI registry did not answer within 10 s")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        await proc.wait()


def push(helm: Path, archive: Path, ref: str, home: Path) -> None:
    """``helm push`` a packaged chart to ``oci://<ref>``."""
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_CACHE_HOME": str(home / "cache"), "HELM_DATA_HOME": str(home / "data")}  # fmt: skip
    subprocess.run(
        [str(helm), "push", str(archive), f"oci://{ref}"], check=True, capture_output=True, env=env
    )
