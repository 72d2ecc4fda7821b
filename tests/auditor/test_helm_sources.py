"""Helm beyond one chart in Git: dependencies vendored or built (`helm dependency build`), and charts from a
Helm repository served over HTTP on 127.0.0.1, pulled and rendered by the real helm."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from auditor.application import Application, parse_application
from auditor.settings import AuditorSettings
from auditor.source.git import GitCredentials, fetch
from auditor.source.helmcharts import ChartRepositoryError
from auditor.source.renderers import RenderTools, render
from auditor.source.resolve import render_revision, resolve_revision
from driftwarden.contract import API_VERSION, APPLICATION_KIND
from driftwarden.errors import RenderError, TemporaryError
from driftwarden.settings import environment, helm_bin_dir
from tests.support.charts import (
    CHARTS_IN_GIT,
    DEPENDENCY_CASES,
    chart_files,
    oci_registry,
    packaged,
    push,
    registry_bin_dir,
    repository_dir,
    serve,
)
from tests.support.gitrepo import GitRepo

HELM = helm_bin_dir(environment()) / "helm"
TOOLS = RenderTools(helm=HELM)


def app(source: Mapping[str, Any]) -> Application:
    return parse_application({
        "apiVersion": API_VERSION, "kind": APPLICATION_KIND,
        "metadata": {"name": "rel", "namespace": "driftwarden-system"},
        "spec": {"source": source, "destination": {"namespace": "prod"}},
    })  # fmt: skip


def configmaps(manifests: tuple[dict[str, Any], ...]) -> dict[str, dict[str, str]]:
    return {m["metadata"]["name"]: m["data"] for m in manifests}


@pytest.mark.parametrize("path", sorted(DEPENDENCY_CASES))
async def test_chart_dependencies_vendored_or_built(
    git_repo: Callable[..., GitRepo], tmp_path: Path, path: str
) -> None:
    expected = {f"rel-{chart}": color for chart, color in DEPENDENCY_CASES[path].items()}
    origin = git_repo(CHARTS_IN_GIT)
    repo = await fetch(origin.url, cache_dir=tmp_path / "cache")
    sha = await repo.resolve("main")
    async with repo.exported(sha) as root:
        result = await render(
            app({"repoURL": origin.url, "path": path}), root=root, revision=sha, tools=TOOLS
        )
    assert {name: data["color"] for name, data in configmaps(result.manifests).items()} == expected
    assert f"{path}/templates/cm.yaml" in result.files


async def test_a_file_dependency_outside_the_repository_is_refused(
    git_repo: Callable[..., GitRepo], tmp_path: Path
) -> None:
    outside = "- {name: x, version: 0.1.0, repository: 'file://../../../../../../../../etc'}\n"
    origin = git_repo(chart_files("c", "c", deps=outside))
    repo = await fetch(origin.url, cache_dir=tmp_path / "cache")
    sha = await repo.resolve("main")
    async with repo.exported(sha) as root:
        with pytest.raises(
            RenderError, match=r"Helm chart c: dependency x \(file://.*\) is outside the repository"
        ):
            await render(app({"repoURL": origin.url, "path": "c"}), root=root, revision=sha, tools=TOOLS)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return repository_dir(HELM, tmp_path_factory.mktemp("charts"), {"hello": ["1.0.0", "1.1.0", "2.0.0"]})


@pytest.mark.parametrize(
    ("wanted", "version"), [("1.0.0", "1.0.0"), ("^1.0", "1.1.0"), ("HEAD", "2.0.0"), ("*", "2.0.0")]
)
async def test_a_chart_from_a_helm_repository(
    served: Path, tmp_path: Path, wanted: str, version: str
) -> None:
    settings = AuditorSettings(git_cache=tmp_path / "cache", tools=TOOLS)
    helm = {"releaseName": "web", "parameters": [{"name": "color", "value": "teal"}]}
    async with serve(served) as url:
        chart = app({"repoURL": url, "chart": "hello", "targetRevision": wanted, "helm": helm})
        resolved = await resolve_revision(chart, settings=settings)
        rendered = await render_revision(chart, resolved, settings=settings)
    assert rendered.revision == version
    assert configmaps(rendered.result.manifests) == {
        "web-hello": {"chart": "hello", "version": version, "color": "teal"}
    }
    assert rendered.result.source_type == "helm" and rendered.result.files == ("templates/cm.yaml",)
    if wanted == "1.0.0":  # an exact version already pulled is not asked for again: the server is gone
        again = await resolve_revision(chart, settings=settings)
        assert (again.revision, again.chart) == (version, resolved.chart)


async def test_repository_credentials_reach_helm_and_never_a_message(served: Path, tmp_path: Path) -> None:
    settings = AuditorSettings(git_cache=tmp_path / "cache", tools=TOOLS)
    password = "chart-s3cret-token"
    async with serve(served, basic_auth=("reader", password)) as url:
        chart = app({"repoURL": url, "chart": "hello", "targetRevision": "1.1.0"})
        resolved = await resolve_revision(
            chart, settings=settings, credentials=GitCredentials("reader", password)
        )
        assert resolved.revision == "1.1.0"
        other = app({"repoURL": url, "chart": "hello", "targetRevision": "2.0.0"})
        with pytest.raises(ChartRepositoryError) as refused:
            await resolve_revision(
                other, settings=settings, credentials=GitCredentials("reader", password + "x")
            )
        assert isinstance(refused.value, TemporaryError)
        with pytest.raises(ChartRepositoryError, match=r"helm pull of chart hello of http://127\.0\.0\.1"):
            await resolve_revision(other, settings=settings)
    assert password not in str(refused.value) and "401" in str(refused.value)


@pytest.fixture(scope="module")
async def oci(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """``oci://127.0.0.1:<port>/charts`` with hello 1.0.0 and 1.1.0 pushed by the real helm."""
    binary = registry_bin_dir(environment()) / "registry"
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: build it with `make registry` (tools/build-registry.sh)")
    work = tmp_path_factory.mktemp("oci")
    archives = packaged(HELM, work, {"hello": ["1.0.0", "1.1.0"]})
    async with oci_registry(binary, work) as host:
        for archive in sorted(archives.glob("*.tgz")):
            push(HELM, archive, f"{host}/charts", work)
        yield f"oci://{host}/charts"


@pytest.mark.parametrize(("wanted", "version"), [("1.0.0", "1.0.0"), ("^1.0", "1.1.0")])
async def test_a_chart_from_an_oci_registry(oci: str, tmp_path: Path, wanted: str, version: str) -> None:
    settings = AuditorSettings(git_cache=tmp_path / "cache", tools=TOOLS)
    chart = app({"repoURL": oci, "chart": "hello", "targetRevision": wanted})
    rendered = await render_revision(
        chart, await resolve_revision(chart, settings=settings), settings=settings
    )
    assert rendered.revision == version
    assert configmaps(rendered.result.manifests) == {
        "rel-hello": {"chart": "hello", "version": version, "color": f"v{version}"}
    }


def test_build_registry_script_agrees_with_the_tests_and_needs_go(tmp_path: Path) -> None:
    script = Path(__file__).parents[2] / "tools" / "build-registry.sh"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DRIFTWARDEN_CACHE": str(tmp_path / "cache")}
    printed = subprocess.run([script, "--print-dir"], env=env, capture_output=True, text=True, check=True)
    assert Path(printed.stdout.strip()) == registry_bin_dir(env)
    assert shutil.which("go", path=env["PATH"]) is None, "this check needs a PATH without go"
    failed = subprocess.run([script], env=env, capture_output=True, text=True, check=False)
    assert failed.returncode == 2 and "is needed to build the OCI registry" in failed.stderr
    assert not (tmp_path / "cache").exists()
