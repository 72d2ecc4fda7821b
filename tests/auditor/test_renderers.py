"""auditor.source.renderers end to end: a real Git repository, fetched and exported, rendered by kubectl
and helm."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from auditor.application import Application, parse_application
from auditor.source.git import fetch
from auditor.source.renderers import RenderTools, render
from driftwarden.contract import API_VERSION, APPLICATION_KIND
from driftwarden.errors import PermanentError, RenderError
from driftwarden.settings import control_plane_bin_dir, environment, helm_bin_dir
from tests.support.gitrepo import GitRepo
from tests.support.seed import SEED

REPO_ROOT = Path(__file__).resolve().parents[2]
URL = "https://git.example/infra.git"
MakeRepo = Callable[..., GitRepo]


@pytest.fixture(scope="module")
def tools() -> RenderTools:
    env = environment()
    return RenderTools(kubectl=control_plane_bin_dir(env) / "kubectl", helm=helm_bin_dir(env) / "helm")


@pytest.fixture
async def seed(git_repo: MakeRepo, tmp_path: Path) -> tuple[Path, str]:
    """The seed repository fetched through the Git adapter and its main commit exported: (root, sha)."""
    origin = git_repo(SEED, name="seed")
    (origin.path / "apps/web-app/uncommitted.yaml").write_text("this: is not in the commit\n")
    repo = await fetch(origin.url, cache_dir=tmp_path / "cache")
    sha = await repo.resolve("main")
    return await repo.export(sha, dest=tmp_path / "export"), sha


def app(source: Mapping[str, Any], *, name: str = "web-app", namespace: str = "production") -> Application:
    return parse_application(
        {
            "apiVersion": API_VERSION,
            "kind": APPLICATION_KIND,
            "metadata": {"name": name, "namespace": "driftwarden-system"},
            "spec": {"source": {"repoURL": URL, **source}, "destination": {"namespace": namespace}},
        }
    )


def names(manifests: tuple[dict[str, Any], ...]) -> list[tuple[str, str]]:
    return [(m["kind"], m["metadata"]["name"]) for m in manifests]


async def test_plain_directories(seed: tuple[Path, str], tools: RenderTools) -> None:
    root, sha = seed
    web = await render(app({"path": "apps/web-app"}), root=root, revision=sha, tools=tools)
    assert web.source_type == "directory"
    assert web.files == ("apps/web-app/configmap.yml", "apps/web-app/deployment.yaml")
    assert names(web.manifests) == [
        ("ConfigMap", "web-config"),
        ("Deployment", "web-app"),
        ("Service", "web-app"),
    ]
    assert web.manifests[1]["spec"]["replicas"] == 2
    api = await render(app({"path": "apps/api"}), root=root, revision=sha, tools=tools)
    assert names(api.manifests) == [("Deployment", "api"), ("Service", "api")]
    assert api.files == ("apps/api/deployment.yaml", "apps/api/service.json")


async def test_recursion_only_when_asked(seed: tuple[Path, str], tools: RenderTools) -> None:
    root, sha = seed
    flat = await render(app({"path": "apps/database"}), root=root, revision=sha, tools=tools)
    assert names(flat.manifests) == [("StatefulSet", "postgres")]
    source = {"path": "apps/database", "directory": {"recurse": True}}
    deep = await render(app(source), root=root, revision=sha, tools=tools)
    assert deep.files == (
        "apps/database/extra/deeper/pvc.yaml",
        "apps/database/extra/list.yaml",
        "apps/database/statefulset.yaml",
    )
    assert names(deep.manifests) == [
        ("PersistentVolumeClaim", "data"),
        ("Secret", "db-a"),
        ("Secret", "db-b"),
        ("StatefulSet", "postgres"),
    ]


async def test_empty_render_is_a_result_and_a_missing_path_is_an_error(
    seed: tuple[Path, str], tools: RenderTools
) -> None:
    root, sha = seed
    empty = await render(app({"path": "apps/empty"}), root=root, revision=sha, tools=tools)
    assert (empty.manifests, empty.files, empty.source_type) == ((), (), "directory")
    for path in ("apps/x", "apps/web-app/nope"):
        with pytest.raises(RenderError) as err:
            await render(app({"path": path}), root=root, revision=sha, tools=tools)
        assert str(err.value) == f"path {path} does not exist at revision {sha}"
        assert isinstance(err.value, PermanentError)
    with pytest.raises(RenderError, match=r"path README.md at revision [0-9a-f]{40} is a file"):
        await render(app({"path": "README.md"}), root=root, revision=sha, tools=tools)


@pytest.mark.parametrize(
    "case",
    [
        ("development", "dev-", 1, "nginx:dev"),
        ("staging", "staging-", 2, "nginx:1.25.0-rc1"),
        ("production", "prod-", 5, "nginx:1.25.3"),
    ],
)
async def test_kustomize_overlays(
    seed: tuple[Path, str], tools: RenderTools, case: tuple[str, str, int, str]
) -> None:
    root, sha = seed
    overlay, prefix, replicas, image = case
    result = await render(app({"path": f"overlays/{overlay}"}), root=root, revision=sha, tools=tools)
    assert result.source_type == "kustomize"
    kfile = "kustomization.yml" if overlay == "production" else "kustomization.yaml"
    assert result.files == (f"overlays/{overlay}/{kfile}",)
    assert names(result.manifests) == [
        ("Service", f"{prefix}guestbook"),
        ("Deployment", f"{prefix}guestbook"),
    ]
    deployment = result.manifests[1]
    assert deployment["spec"]["replicas"] == replicas
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image


async def test_kustomize_options_from_the_application(seed: tuple[Path, str], tools: RenderTools) -> None:
    root, sha = seed
    options = {"namePrefix": "team-", "nameSuffix": "-v2", "images": ["nginx=registry.local:5000/nginx:9.9"]}
    result = await render(
        app({"path": "overlays/production", "kustomize": options}), root=root, revision=sha, tools=tools
    )
    # The Application's prefix replaces the kustomization's own "prod-", as Argo CD's `kustomize edit set
    # nameprefix` does (it used to be added on top: "team-prod-guestbook-v2").
    assert names(result.manifests) == [
        ("Service", "team-guestbook-v2"),
        ("Deployment", "team-guestbook-v2"),
    ]
    deployment = result.manifests[1]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local:5000/nginx:9.9"
    assert deployment["spec"]["replicas"] == 5
    assert not list(root.rglob("*driftwarden*")), "the overlay must not be written into the exported tree"
    assert "namePrefix: prod-" in (root / "overlays/production/kustomization.yml").read_text(), "put back"


async def test_kustomize_failure_names_repository_paths(
    git_repo: MakeRepo, tools: RenderTools, tmp_path: Path
) -> None:
    origin = git_repo({"k/kustomization.yaml": "resources: [missing.yaml]\n"})
    repo = await fetch(origin.url, cache_dir=tmp_path / "cache")
    sha = await repo.resolve("HEAD")
    async with repo.exported(sha, scratch_dir=tmp_path) as root:
        with pytest.raises(RenderError) as err:
            await render(app({"path": "k"}), root=root, revision=sha, tools=tools)
        no_kubectl = RenderTools(kubectl=tmp_path / "nope" / "kubectl")
        with pytest.raises(RenderError, match=r"no kustomize or kubectl binary .*make control-plane"):
            await render(app({"path": "k"}), root=root, revision=sha, tools=no_kubectl)
    text = str(err.value)
    assert text.startswith("kustomize build of k failed (exit status 1): ")
    assert "k/missing.yaml" in text and str(tmp_path) not in text and "/tmp/" not in text


async def test_helm_chart_with_values_files_inline_values_and_parameters(
    seed: tuple[Path, str], tools: RenderTools
) -> None:
    root, sha = seed
    default = await render(app({"path": "charts/guestbook"}), root=root, revision=sha, tools=tools)
    assert default.source_type == "helm"
    assert names(default.manifests) == [("Service", "web-app-svc"), ("Deployment", "web-app-guestbook")]
    assert default.files == (
        "charts/guestbook/templates/deployment.yaml",
        "charts/guestbook/templates/service.yaml",
    )
    deployment = default.manifests[1]
    assert deployment["metadata"]["namespace"] == "production"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.0"

    helm = {
        "releaseName": "gb",
        "valueFiles": ["values-prod.yaml"],
        "values": "image:\n  tag: '2.0'\ngreeting: from inline values\n",
        "parameters": [{"name": "replicaCount", "value": "4"}, {"name": "greeting", "value": "a,b"}],
    }
    result = await render(
        app({"path": "charts/guestbook", "helm": helm}, namespace="staging"),
        root=root,
        revision=sha,
        tools=tools,
    )
    deployment = result.manifests[1]
    assert deployment["metadata"] == {"name": "gb-guestbook", "namespace": "staging"}
    assert deployment["spec"]["replicas"] == 4  # the parameter beats values-prod.yaml's 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:2.0"
    assert container["env"] == [{"name": "GREETING", "value": "a,b"}]


async def test_helm_errors(seed: tuple[Path, str], tools: RenderTools, tmp_path: Path) -> None:
    root, sha = seed
    missing = app({"path": "charts/guestbook", "helm": {"valueFiles": ["values-nope.yaml"]}})
    with pytest.raises(
        RenderError,
        match=f"value file 'values-nope.yaml' does not exist in charts/guestbook at revision {sha}",
    ):
        await render(missing, root=root, revision=sha, tools=tools)
    outside = app({"path": "charts/guestbook", "helm": {"valueFiles": ["../../../../etc/hostname"]}})
    with pytest.raises(RenderError, match="outside the repository"):
        await render(outside, root=root, revision=sha, tools=tools)
    bad = app({"path": "charts/guestbook", "helm": {"values": "image: [not, a, map]\n"}})
    with pytest.raises(
        RenderError, match=r"^helm template of charts/guestbook failed \(exit status 1\): Error: "
    ) as err:
        await render(bad, root=root, revision=sha, tools=tools)
    assert str(root) not in str(err.value)
    no_helm = RenderTools(kubectl=tools.kubectl, helm=tmp_path / "bin" / "helm")
    with pytest.raises(RenderError, match=r"helm is missing \(.*/bin/helm\).*make helm.*tools/build-helm.sh"):
        await render(app({"path": "charts/guestbook"}), root=root, revision=sha, tools=no_helm)
    with pytest.raises(RenderError, match="no helm binary configured"):
        await render(app({"path": "charts/guestbook"}), root=root, revision=sha, tools=RenderTools())


async def test_explicit_source_type_overrides_detection(seed: tuple[Path, str], tools: RenderTools) -> None:
    root, sha = seed
    detected = await render(app({"path": "both"}), root=root, revision=sha, tools=tools)
    assert (detected.source_type, names(detected.manifests)) == (
        "kustomize",
        [("ConfigMap", "from-kustomize")],
    )
    helm = await render(app({"path": "both", "helm": {}}), root=root, revision=sha, tools=tools)
    assert (helm.source_type, names(helm.manifests)) == ("helm", [("ConfigMap", "from-helm")])
    with pytest.raises(
        RenderError, match=r"^both/Chart.yaml: document 1 \(line 1\): not a Kubernetes object: kind"
    ):
        await render(app({"path": "both", "directory": {}}), root=root, revision=sha, tools=tools)
    forced = app({"path": "apps/web-app", "kustomize": {"namePrefix": "x-"}})
    with pytest.raises(RenderError, match="kustomize build of apps/web-app failed") as err:
        await render(forced, root=root, revision=sha, tools=tools)
    assert "unable to find one of 'kustomization.yaml'" in str(err.value)
    assert "'apps/web-app'" in str(err.value) and "pytest-of" not in str(err.value)


async def test_malformed_yaml_in_git_names_file_and_line(
    git_repo: MakeRepo, tools: RenderTools, tmp_path: Path
) -> None:
    origin = git_repo(
        {"apps/broken/ok.yaml": SEED["apps/api/deployment.yaml"], "apps/broken/z.yaml": "a: 1\nb: [\n"}
    )
    repo = await fetch(origin.url, cache_dir=tmp_path / "cache")
    sha = await repo.resolve("main")
    async with repo.exported(sha) as root:
        with pytest.raises(RenderError, match=r"^apps/broken/z.yaml:3: invalid YAML: "):
            await render(app({"path": "apps/broken"}), root=root, revision=sha, tools=tools)


def test_build_helm_script_agrees_with_settings_and_needs_go(tmp_path: Path) -> None:
    script = REPO_ROOT / "tools" / "build-helm.sh"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DRIFTWARDEN_CACHE": str(tmp_path / "cache")}
    printed = subprocess.run([script, "--print-dir"], env=env, capture_output=True, text=True, check=True)
    assert Path(printed.stdout.strip()) == helm_bin_dir(env)
    assert helm_bin_dir({"DRIFTWARDEN_HELM_BIN_DIR": "/opt/helm"}) == Path("/opt/helm")
    assert shutil.which("go", path=env["PATH"]) is None, "this check needs a PATH without go"
    failed = subprocess.run([script], env=env, capture_output=True, text=True, check=False)
    assert failed.returncode == 2
    assert "the Go toolchain" in failed.stderr and "is needed to build helm" in failed.stderr
    assert not (tmp_path / "cache").exists()
