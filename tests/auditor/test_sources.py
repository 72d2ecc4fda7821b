"""Jsonnet directories, include/exclude, and directories nothing renders: auditor.source.directory (pure)
and the renderers over real Git repositories, jsonnet evaluated by the real evaluator process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from auditor.application import Application, parse_application
from auditor.appsource import DirectorySource
from auditor.source.directory import (
    UnsupportedSourceError,
    expand_braces,
    glob_match,
    jsonnet_manifests,
    refuse_unrendered,
    select,
)
from auditor.source.git import fetch
from auditor.source.renderers import RenderTools, render
from auditor.specfields import InvalidSpecError
from driftwarden.contract import API_VERSION, APPLICATION_KIND
from driftwarden.errors import RenderError
from tests.support.gitrepo import GitRepo
from tests.support.sources import JSONNET, JSONNET_OPTIONS

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}


def test_braces_and_globs_as_argo_cd_matches_paths() -> None:
    assert expand_braces("{a,b}/{x,y}.yaml") == ["a/x.yaml", "a/y.yaml", "b/x.yaml", "b/y.yaml"]
    assert glob_match("{config.json,deployment.yaml}", "deployment.yaml")
    assert glob_match("env-usw2/*", "env-usw2/sub/deep.yaml")  # no separators: * crosses /
    assert not glob_match("*.jsonnet", "main.yaml")


def test_select_excludes_first_then_includes_and_sorts_by_kind() -> None:
    files = ["b.yaml", "a.jsonnet", "lib.libsonnet", "README.md", "sub/c.json", "skip.yaml"]
    assert select(DirectorySource(), files).manifests == ("b.yaml", "skip.yaml", "sub/c.json")
    chosen = select(DirectorySource(include="{*.yaml,*.jsonnet}", exclude="skip*"), files)
    assert (chosen.manifests, chosen.jsonnet) == (("b.yaml",), ("a.jsonnet",))
    assert select(DirectorySource(include="*.txt"), files).empty


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["main.ts", "go.mod", "README.md"], r"path p renders nothing: .*\(go.mod, main.ts\); "
         r"source type 'plugin' \(config management plugins\) is not supported"),
        (["k.libsonnet", "v/x.libsonnet"], r"only jsonnet libraries \(k.libsonnet, v/x.libsonnet\)"),
    ],
)  # fmt: skip
def test_a_directory_of_files_nothing_renders_is_refused(files: list[str], message: str) -> None:
    with pytest.raises(UnsupportedSourceError, match=message) as refused:
        refuse_unrendered("p", DirectorySource(), files)
    assert isinstance(refused.value, InvalidSpecError)


@pytest.mark.parametrize("files", [[], ["README.md", ".gitkeep", "LICENSE", "notes.txt"], ["x.ts"]])
def test_an_empty_directory_or_one_of_docs_is_an_empty_render(files: list[str]) -> None:
    options = DirectorySource(exclude="*.ts")  # what the patterns leave out was left out on purpose
    refuse_unrendered("p", options, files)


def test_jsonnet_output_may_be_an_object_a_list_or_nested_lists() -> None:
    as_list = {"apiVersion": "v1", "kind": "List", "items": [CM]}
    assert jsonnet_manifests(CM, file="a.jsonnet") == [CM]
    assert jsonnet_manifests([CM, [as_list, [CM]]], file="a.jsonnet") == [CM, CM, CM]
    with pytest.raises(RenderError, match=r"^a.jsonnet: output, item 1: expected a mapping"):
        jsonnet_manifests([CM, "x"], file="a.jsonnet")


def app(source: Mapping[str, Any]) -> Application:
    return parse_application({
        "apiVersion": API_VERSION, "kind": APPLICATION_KIND,
        "metadata": {"name": "web", "namespace": "driftwarden-system"},
        "spec": {"source": {"repoURL": "https://git.example/j", **source}, "destination": {"namespace": "p"}},
    })  # fmt: skip


@pytest.fixture
async def tree(git_repo: Callable[..., GitRepo], tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    origin = git_repo(JSONNET)
    repo = await fetch(origin.url, cache_dir=tmp_path / "cache")
    sha = await repo.resolve("main")
    async with repo.exported(sha) as root:
        yield root, sha


async def test_jsonnet_with_tlas_ext_vars_and_libraries(tree: tuple[Path, str]) -> None:
    root, sha = tree
    result = await render(app({"path": "jsonnet/app", "directory": JSONNET_OPTIONS}), root=root,
                          revision=sha, tools=RenderTools())  # fmt: skip
    assert result.source_type == "directory"
    assert result.files == (
        "jsonnet/app/a-plain.yaml",
        "jsonnet/app/main.jsonnet",
        "jsonnet/app/service.jsonnet",
    )
    assert [(m["kind"], m["metadata"]["name"]) for m in result.manifests] == [
        ("ConfigMap", "plain"), ("ConfigMap", "web-settings"), ("Deployment", "web"), ("Service", "web"),
    ]  # fmt: skip
    assert result.manifests[1]["data"] == {"color": "blue", "env": "prod", "tier": "3"}
    deployment = result.manifests[2]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"


async def test_jsonnet_errors_name_repository_files(tree: tuple[Path, str]) -> None:
    root, sha = tree
    with pytest.raises(RenderError, match=r"^jsonnet evaluation of jsonnet/app failed") as err:
        await render(app({"path": "jsonnet/app"}), root=root, revision=sha, tools=RenderTools())
    assert "jsonnet/app/" in str(err.value) and str(root) not in str(err.value)


@pytest.mark.parametrize(
    ("file", "why"), [("absolute", "absolute imports"), ("up", "outside the repository")]
)
async def test_jsonnet_cannot_read_files_outside_the_repository(
    tree: tuple[Path, str], file: str, why: str
) -> None:
    root, sha = tree
    source = {"path": "jsonnet/evil", "directory": {"include": f"{file}.jsonnet"}}
    with pytest.raises(RenderError, match=why):
        await render(app(source), root=root, revision=sha, tools=RenderTools())


async def test_unrendered_sources_are_refused_and_empty_ones_are_empty(tree: tuple[Path, str]) -> None:
    root, sha = tree
    with pytest.raises(UnsupportedSourceError, match=r"path plugin renders nothing: .*app.cue, main.ts"):
        await render(app({"path": "plugin"}), root=root, revision=sha, tools=RenderTools())
    with pytest.raises(UnsupportedSourceError, match="only jsonnet libraries"):
        await render(app({"path": "jsonnet/libonly"}), root=root, revision=sha, tools=RenderTools())
    empty = await render(app({"path": "docs-only"}), root=root, revision=sha, tools=RenderTools())
    assert (empty.manifests, empty.files) == ((), ())


async def test_a_runaway_jsonnet_evaluation_is_stopped_by_the_timeout(
    git_repo: Callable[..., GitRepo], tmp_path: Path
) -> None:
    """Evaluation runs in a child process so that it can be stopped (a thread could not be)."""
    slow = "std.length(std.foldl(function(a, b) a + 'x', std.range(1, 200000), ''))\n"
    origin = git_repo({"slow/loop.jsonnet": slow})
    repo = await fetch(origin.url, cache_dir=tmp_path / "cache")
    sha = await repo.resolve("main")
    async with repo.exported(sha) as root:
        with pytest.raises(RenderError, match=r"^jsonnet evaluation of slow did not finish within 1s$"):
            await render(app({"path": "slow"}), root=root, revision=sha, tools=RenderTools(timeout=1.0))
