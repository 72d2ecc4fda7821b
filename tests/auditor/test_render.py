"""auditor.source.render: the pure rendering core (detection, parsing, kustomize/helm arguments)."""

from __future__ import annotations

import json

import pytest

from auditor.appsource import DirectorySource, HelmParameter, HelmSource, KustomizeSource, Source
from auditor.source.render import (
    clip_output,
    detect_source_type,
    edit_kustomization,
    helm_sources,
    helm_template_args,
    parse_image,
    parse_manifests,
)
from driftwarden.errors import PermanentError, RenderError

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\n"
URL = "https://git.example/infra.git"


@pytest.mark.parametrize(
    ("source", "names", "expected"),
    [
        (Source(URL), ["deploy.yaml"], "directory"),
        (Source(URL), [], "directory"),
        (Source(URL), ["kustomization.yaml", "a.yaml"], "kustomize"),
        (Source(URL), ["kustomization.yml"], "kustomize"),
        (Source(URL), ["Kustomization"], "kustomize"),
        (Source(URL), ["Chart.yaml", "values.yaml"], "helm"),
        (Source(URL), ["Chart.yaml", "kustomization.yaml"], "kustomize"),
        (Source(URL), ["chart.yaml", "Kustomization.yaml"], "directory"),
        (Source(URL, helm=HelmSource()), ["kustomization.yaml", "Chart.yaml"], "helm"),
        (Source(URL, kustomize=KustomizeSource()), ["Chart.yaml"], "kustomize"),
        (Source(URL, directory=DirectorySource()), ["kustomization.yaml", "Chart.yaml"], "directory"),
    ],
)
def test_detect_source_type_as_argo_cd(source: Source, names: list[str], expected: str) -> None:
    assert detect_source_type(source, names) == expected


def test_multi_document_yaml_skips_empty_documents_and_keeps_order() -> None:
    text = "---\n" + CM % "a" + "---\n---\n# only a comment\n---\n" + CM % "b" + "---\n"
    assert [m["metadata"]["name"] for m in parse_manifests(text, file="x.yaml")] == ["a", "b"]
    assert parse_manifests("", file="empty.yaml") == []
    assert parse_manifests(b"---\n...\n", file="empty.yaml") == []
    assert parse_manifests(b"\xef\xbb\xbf" + (CM % "bom").encode(), file="bom.yaml")[0]["kind"] == "ConfigMap"


def test_values_keep_their_kubernetes_types() -> None:
    text = CM % "c" + "data:\n  day: 2024-01-31\n  when: 2024-01-31T10:00:00Z\n  n: '1'\n"
    (manifest,) = parse_manifests(text, file="c.yaml")
    assert manifest["data"] == {"day": "2024-01-31", "when": "2024-01-31T10:00:00Z", "n": "1"}
    (manifest,) = parse_manifests(
        text.replace("\ndata:", "\nspec:") + "  replicas: 3\n  paused: true\n", file="d.yaml"
    )
    assert manifest["spec"]["replicas"] == 3 and manifest["spec"]["paused"] is True


def test_list_kinds_are_flattened() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: one}}\n"
        "- {apiVersion: v1, kind: Secret, metadata: {name: two}}\n"
        "---\napiVersion: v1\nkind: ConfigMapList\n"
        "items: [{apiVersion: v1, kind: ConfigMap, metadata: {name: x}}]\n"
        "---\n" + CM % "three"
    )
    got = [(m["kind"], m["metadata"]["name"]) for m in parse_manifests(text, file="list.yaml")]
    assert got == [("ConfigMap", "one"), ("Secret", "two"), ("ConfigMap", "x"), ("ConfigMap", "three")]
    with pytest.raises(
        RenderError, match=r"list.yaml: document 1 \(line 1\), item 1: Secret has no metadata"
    ):
        parse_manifests(
            "kind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: a}}\n"
            "- {apiVersion: v1, kind: Secret}\n",
            file="list.yaml",
        )


def test_json_files_are_one_document() -> None:
    item = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}
    obj = json.dumps({"apiVersion": "v1", "kind": "List", "items": [item]}, indent=2)
    assert parse_manifests(obj, file="apps/x/objects.json")[0]["metadata"]["name"] == "j"
    assert parse_manifests("  \n", file="blank.json") == []
    with pytest.raises(RenderError, match=r"^apps/x/bad.json:3: invalid JSON"):
        parse_manifests('{\n "a": 1,\n }', file="apps/x/bad.json")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (CM % "a" + "data:\n  key: [unclosed\n", 6),
        ("apiVersion: v1\nkind: ConfigMap\n  metadata: bad indent\n", 3),
        (CM % "a" + "---\n" + CM % "b" + "data: {a: 1\n", 9),
        (CM % "a" + "data:\n  a: 'unterminated\n", 6),
        ("a: 1\nb: @reserved\n", 2),
    ],
)
def test_malformed_yaml_names_file_and_line(text: str, line: int) -> None:
    with pytest.raises(RenderError) as err:
        parse_manifests(text, file="apps/web-app/deploy.yaml")
    assert str(err.value).startswith(f"apps/web-app/deploy.yaml:{line}: invalid YAML: ")
    if "{a: 1" in text:
        assert "while parsing a flow mapping (from line 8): expected ',' or '}'" in str(err.value)
    assert isinstance(err.value, PermanentError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", r"x.yaml: document 1 \(line 1\): expected a mapping .*got list"),
        (CM % "a" + "---\njust a string\n", r"x.yaml: document 2 \(line 5\): expected a mapping .*got str"),
        (
            "kind: ConfigMap\nmetadata: {name: a}\n",
            r"document 1 \(line 1\): not a Kubernetes object: apiVersion",
        ),
        ("apiVersion: v1\nmetadata: {name: a}\n", r"document 1 \(line 1\): not a Kubernetes object: kind"),
        (
            CM % "a" + "---\n---\napiVersion: v1\nkind: Service\n",
            r"document 3 \(line 6\): Service has no metadata.name",
        ),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: ''}\n", r"Pod has no metadata.name"),
    ],
)
def test_documents_that_are_not_objects_name_file_and_document(text: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        parse_manifests(text, file="x.yaml")


def test_non_utf8_file() -> None:
    with pytest.raises(RenderError, match=r"^bin.yaml: not UTF-8 text \(byte 0\)"):
        parse_manifests(b"\xff\xfe\x00", file="bin.yaml")


@pytest.mark.parametrize(
    ("spec", "image"),
    [
        ("nginx:1.25", {"name": "nginx", "newTag": "1.25"}),
        (
            "nginx=registry.local:5000/web/nginx:1.25",
            {"name": "nginx", "newName": "registry.local:5000/web/nginx", "newTag": "1.25"},
        ),
        ("nginx=registry.local:5000/nginx", {"name": "nginx", "newName": "registry.local:5000/nginx"}),
        ("nginx@sha256:abc", {"name": "nginx", "digest": "sha256:abc"}),
        (
            "ghcr.io/org/app=ghcr.io/org/app2:v2@sha256:def",
            {
                "name": "ghcr.io/org/app",
                "newName": "ghcr.io/org/app2",
                "newTag": "v2",
                "digest": "sha256:def",
            },
        ),
    ],
)
def test_parse_image_like_kustomize_edit_set_image(spec: str, image: dict[str, str]) -> None:
    assert parse_image(spec) == image


@pytest.mark.parametrize("spec", ["", "=nginx", "nginx=", ":1.0"])
def test_parse_image_rejects_nonsense(spec: str) -> None:
    with pytest.raises(RenderError, match=r"kustomize\.images"):
        parse_image(spec)


def test_edit_kustomization_replaces_prefix_and_suffix_and_sets_images_by_name() -> None:
    """As Argo CD's ``kustomize edit set nameprefix|namesuffix|image`` in the source directory: an image
    argument replaces the entry of its name whole, ``*`` keeps a field, and the list is sorted by name."""
    own = {
        "resources": ["../app"],
        "namePrefix": "own-",
        "images": [{"name": "redis", "newName": "r"}, {"name": "nginx", "newName": "m/nginx", "newTag": "1"}],
    }
    assert edit_kustomization(own, KustomizeSource()) == own
    edited = edit_kustomization(own, KustomizeSource("pre-", "-suf", ("nginx:2", "busybox=b/box@sha256:b")))
    assert edited == {
        "resources": ["../app"],
        "namePrefix": "pre-",
        "images": [
            {"name": "busybox", "newName": "b/box", "digest": "sha256:b"},
            {"name": "nginx", "newTag": "2"},
            {"name": "redis", "newName": "r"},
        ],
        "nameSuffix": "-suf",
    }
    assert own["namePrefix"] == "own-", "the parsed kustomization is not changed"
    kept = edit_kustomization(own, KustomizeSource(images=("nginx=*:3", "redis=cache/redis:*")))
    assert kept["images"] == [
        {"name": "nginx", "newName": "m/nginx", "newTag": "3"},
        {"name": "redis", "newName": "cache/redis"},
    ]


def test_helm_template_args_follow_argo_cd_order_and_escaping() -> None:
    params = (
        HelmParameter("image.tag", "1.2,3"),
        HelmParameter("list", "{a,b}"),
        HelmParameter("already", r"x\,y"),
        HelmParameter("port", "8080", force_string=True),
    )
    args = helm_template_args(
        "web",
        chart_dir="/c",
        namespace="prod",
        value_files=("/c/values-prod.yaml",),
        values_file="/s/values.yaml",
        parameters=params,
        kube_version="1.35.4",
    )
    assert args == [
        "template", "web", "/c", "--include-crds", "--namespace", "prod", "--kube-version", "1.35.4",
        "--values", "/c/values-prod.yaml", "--values", "/s/values.yaml",
        "--set", r"image.tag=1.2\,3", "--set", "list={a,b}", "--set", r"already=x\,y",
        "--set-string", "port=8080",
    ]  # fmt: skip
    assert helm_template_args("r", chart_dir="/c") == ["template", "r", "/c", "--include-crds"]


def test_helm_sources_map_templates_to_repository_paths() -> None:
    out = (
        "---\n# Source: web/templates/svc.yaml\nx: 1\n---\n# Source: web/charts/db/templates/db.yaml\n"
        "---\n# Source: web/templates/svc.yaml\n"
    )
    assert helm_sources(out, chart_name="web", app_path="charts/web") == (
        "charts/web/charts/db/templates/db.yaml",
        "charts/web/templates/svc.yaml",
    )
    assert helm_sources(out, chart_name="web", app_path=".") == (
        "charts/db/templates/db.yaml",
        "templates/svc.yaml",
    )
    assert helm_sources("", chart_name="web", app_path="x") == ()


def test_clip_output_redacts_paths_and_keeps_the_tail() -> None:
    assert (
        clip_output("  error: /tmp/x/apps/a missing \n", replace={"/tmp/x/": "", "/tmp/x": "."})
        == "error: apps/a missing"
    )
    long = "a" * 5000 + "Error: the real reason"
    clipped = clip_output(long)
    assert clipped.endswith("Error: the real reason") and len(clipped) < 2100 and "clipped" in clipped
    assert clip_output("") == "(no output)"


def test_a_generate_name_is_accepted_by_the_parser_for_the_hook_split_to_judge() -> None:
    """Hooks are written with ``generateName`` (issue 16); only a hook may keep it (auditor/sync/hooks.py)."""
    text = "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: migrate-}\n"
    (job,) = parse_manifests(text, file="x.yaml")
    assert job["metadata"] == {"generateName": "migrate-"}
    with pytest.raises(RenderError, match=r"Job has no metadata\.name"):
        parse_manifests("apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: ''}\n", file="x.yaml")


def test_libyaml_and_the_pure_python_parser_read_manifests_alike() -> None:
    """The fast path (libyaml, when PyYAML has it) gives the same documents, labels and lines as the
    pure-Python parser it stands in for; timestamps stay strings in both."""
    from auditor.source import render

    assert render._FastLoader is not None, "PyYAML without libyaml: the fast path is never taken"
    text = (
        "# leading comment\n---\n" + CM % "a" + "data:\n  day: 2024-01-31\n  on: yes\n  n: 0x1f\n  f: 1e3\n"
        "---\n---\n" + CM % "b" + "data: {list: [1, '2', ~, 3.5], anchor: &x {k: v}, alias: *x}\n"
        "---\napiVersion: v1\nkind: List\nitems:\n- " + (CM % "c").replace("\n", "\n  ") + "\n"
    )
    fast = list(render._yaml_documents(text, file="f.yaml"))
    slow = list(render._slow_documents(text, file="f.yaml"))
    assert fast == slow and [label for label, _ in fast] == [
        "document 1 (line 3)", "document 2 (line 12)", "document 3 (line 13)", "document 4 (line 18)",
    ]  # fmt: skip
    assert fast[0][1]["data"]["day"] == "2024-01-31"
