"""Parsing Application objects into frozen dataclasses: defaults, Argo CD parity and clear errors."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from auditor.application import DEFAULT_SERVER, Application, IgnoreDifference, parse_application
from auditor.appsource import DirectorySource, HelmParameter, JsonnetSource, JsonnetVar
from auditor.objects import AppKey
from driftwarden.errors import PermanentError

DESIGN_EXAMPLE: dict[str, Any] = {
    "apiVersion": "driftwarden.io/v1alpha1",
    "kind": "Application",
    "metadata": {"name": "web-app", "namespace": "driftwarden-system"},
    "spec": {
        "source": {
            "repoURL": "https://git.example.com/infra.git",
            "targetRevision": "main",
            "path": "apps/web-app",
        },
        "destination": {"namespace": "production"},
        "syncPolicy": {
            "automated": {"prune": True, "selfHeal": True, "allowEmpty": False},
            "syncOptions": ["CreateNamespace=true"],
        },
        "guard": {"mode": "enforce", "allow": {"users": [], "groups": ["sre-breakglass"]}},
        "ignoreDifferences": [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}],
    },
}


def minimal(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "app", "namespace": "ns"},
        "spec": {"source": {"repoURL": "https://git.example.com/r.git"}, **spec},
    }


def test_design_example_parses() -> None:
    app = parse_application(DESIGN_EXAMPLE)
    assert app.key == AppKey("driftwarden-system", "web-app")
    assert app.source.repo_url == "https://git.example.com/infra.git"
    assert app.source.target_revision == "main"
    assert app.source.path == "apps/web-app"
    assert app.destination.namespace == "production"
    assert app.destination.server == DEFAULT_SERVER
    assert app.sync_policy.auto_prune
    assert app.sync_policy.automated is not None and app.sync_policy.automated.self_heal
    assert not app.sync_policy.allow_empty
    assert app.sync_policy.create_namespace
    assert not app.sync_policy.prune_last
    assert app.guard.mode == "enforce"
    assert app.guard.allow_groups == ("sre-breakglass",)
    assert app.ignore_differences == (
        IgnoreDifference(kind="Deployment", group="apps", json_pointers=("/spec/replicas",)),
    )


def test_defaults() -> None:
    app = parse_application(minimal())
    assert app.source.target_revision == "HEAD"
    assert app.source.path == "."
    assert app.source.directory is None and app.source.helm is None and app.source.kustomize is None
    assert app.guard.mode == "enforce"
    assert app.sync_policy.automated is None
    assert not app.sync_policy.auto_prune and not app.sync_policy.allow_empty
    assert app.destination.namespace == ""
    assert app.ignore_differences == ()


def test_prune_ratio_is_off_unless_set() -> None:
    auto = parse_application(minimal(syncPolicy={"automated": {"prune": True}})).sync_policy.automated
    assert auto is not None and auto.prune_ratio == 1.0
    half = parse_application(minimal(syncPolicy={"automated": {"prune": True, "pruneRatio": 0.5}}))
    assert half.sync_policy.automated is not None and half.sync_policy.automated.prune_ratio == 0.5


def test_result_is_frozen_and_input_untouched() -> None:
    raw = copy.deepcopy(DESIGN_EXAMPLE)
    app = parse_application(raw)
    assert raw == DESIGN_EXAMPLE
    with pytest.raises(dataclasses.FrozenInstanceError):
        app.name = "other"  # type: ignore[misc]


def test_argo_cd_only_fields_are_tolerated() -> None:
    app = parse_application(minimal(project="default", revisionHistoryLimit=3))
    assert isinstance(app, Application)


def test_helm_and_directory_sources() -> None:
    helm = parse_application(
        minimal(
            source={
                "repoURL": "r",
                "path": "charts/web",
                "helm": {
                    "valueFiles": ["values-prod.yaml"],
                    "values": "replicas: 3\n",
                    "parameters": [{"name": "image.tag", "value": "v2"}, {"name": "debug", "value": True}],
                    "releaseName": "web",
                },
            }
        )
    )
    assert helm.source.helm is not None
    assert helm.source.helm.value_files == ("values-prod.yaml",)
    assert helm.source.helm.parameters == (HelmParameter("image.tag", "v2"), HelmParameter("debug", "true"))
    assert helm.source.helm.release_name == "web"
    directory = parse_application(minimal(source={"repoURL": "r", "directory": {"recurse": True}}))
    assert directory.source.directory is not None and directory.source.directory.recurse


def test_jsonnet_directory_and_chart_sources() -> None:
    jsonnet = {
        "extVars": [{"name": "env", "value": "prod"}, {"name": "replicas", "value": "2", "code": True}],
        "tlas": [{"name": "image", "value": "nginx:1.27"}],
        "libs": ["vendor", "lib/k"],
    }
    source = {"repoURL": "r", "directory": {"recurse": True, "include": "*.jsonnet", "jsonnet": jsonnet}}
    directory = parse_application(minimal(source=source)).source.directory
    assert directory == DirectorySource(
        recurse=True,
        include="*.jsonnet",
        jsonnet=JsonnetSource(
            ext_vars=(JsonnetVar("env", "prod"), JsonnetVar("replicas", "2", code=True)),
            tlas=(JsonnetVar("image", "nginx:1.27"),),
            libs=("vendor", "lib/k"),
        ),
    )
    chart = parse_application(
        minimal(source={"repoURL": "https://charts.example", "chart": "nginx", "targetRevision": "1.2.3"})
    ).source
    assert (chart.chart, chart.target_revision, chart.helm) == ("nginx", "1.2.3", None)


def test_sync_options() -> None:
    app = parse_application(
        minimal(syncPolicy={"syncOptions": ["PruneLast=true", "FailOnSharedResource=true", "Foo=bar"]})
    )
    assert app.sync_policy.prune_last
    assert app.sync_policy.fail_on_shared_resource
    assert not app.sync_policy.create_namespace
    assert app.sync_policy.option("Foo") == "bar"
    assert app.sync_policy.option("Missing") is None


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"metadata": {"name": "a", "namespace": "n"}, "spec": {}}, "spec.source"),
        (minimal(source={"path": "x"}), "spec.source.repoURL"),
        (minimal(source="https://x"), "spec.source"),
        (minimal(source={"repoURL": "r", "path": "../etc"}), "spec.source.path"),
        (minimal(source={"repoURL": "r", "path": "/abs"}), "spec.source.path"),
        (minimal(source={"repoURL": "r", "chart": "nginx", "kustomize": {}}), "spec.source.chart"),
        (minimal(source={"repoURL": "r", "plugin": {"name": "cdk8s"}}), "spec.source.plugin"),
        (
            minimal(source={"repoURL": "r", "directory": {"jsonnet": {"tlas": [{"value": "1"}]}}}),
            "tlas[0].name",
        ),
        (minimal(source={"repoURL": "r", "directory": {"jsonnet": {"libs": ["../x"]}}}), "jsonnet.libs[0]"),
        (minimal(source={"repoURL": "r", "helm": {}, "kustomize": {}}), "spec.source"),
        (minimal(source={"repoURL": "r", "directory": {"recurse": "yes"}}), "spec.source.directory.recurse"),
        (minimal(source={"repoURL": "r", "helm": {"valueFiles": "v.yaml"}}), "spec.source.helm.valueFiles"),
        (minimal(sources=[]), "spec.sources"),
        (minimal(destination={"namespace": "Bad_NS"}), "spec.destination.namespace"),
        (minimal(syncPolicy={"automated": {"prune": "true"}}), "spec.syncPolicy.automated.prune"),
        (minimal(syncPolicy={"automated": {"pruneRatio": 1.5}}), "spec.syncPolicy.automated.pruneRatio"),
        (minimal(syncPolicy={"automated": {"pruneRatio": "50%"}}), "spec.syncPolicy.automated.pruneRatio"),
        (minimal(syncPolicy={"syncOptions": ["CreateNamespace"]}), "spec.syncPolicy.syncOptions[0]"),
        (minimal(guard={"mode": "block"}), "spec.guard.mode"),
        (minimal(guard={"allow": {"users": "alice"}}), "spec.guard.allow.users"),
        (minimal(ignoreDifferences={"kind": "X"}), "spec.ignoreDifferences"),
        (minimal(ignoreDifferences=[{"group": "apps"}]), "spec.ignoreDifferences[0].kind"),
        (
            minimal(ignoreDifferences=[{"kind": "D", "jsonPointers": ["/ok", "spec/replicas"]}]),
            "spec.ignoreDifferences[0].jsonPointers[1]",
        ),
        (minimal(ignoreDifferences=[{"kind": "D", "jsonPointers": ["/a~2b"]}]), "jsonPointers[0]"),
        (minimal(ignoreDifferences=[{"kind": "D", "jqPathExpressions": [".x |||"]}]), "jqPathExpressions[0]"),
        ({"spec": minimal()["spec"]}, "metadata"),
        ({"metadata": {"namespace": "n"}, "spec": minimal()["spec"]}, "metadata.name"),
        ({**minimal(), "apiVersion": "argoproj.io/v1alpha1"}, "driftwarden.io/v1alpha1"),
    ],
)
def test_invalid_specs_name_the_field(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(
        PermanentError, match=field.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
    ):
        parse_application(obj)


@pytest.mark.parametrize(
    ("rule", "ref", "expected"),
    [
        (IgnoreDifference(kind="Deployment", group="apps"), ("apps", "Deployment", "prod", "web"), True),
        (IgnoreDifference(kind="Deployment", group="apps"), ("", "Deployment", "prod", "web"), False),
        (IgnoreDifference(kind="Deployment", group="apps"), ("apps", "StatefulSet", "prod", "web"), False),
        (IgnoreDifference(kind="ConfigMap"), ("", "ConfigMap", "prod", "c"), True),
        (IgnoreDifference(kind="*", group="*"), ("batch", "Job", "x", "y"), True),
        (IgnoreDifference(kind="Secret", name="s"), ("", "Secret", "prod", "s"), True),
        (IgnoreDifference(kind="Secret", name="s"), ("", "Secret", "prod", "t"), False),
        (IgnoreDifference(kind="Secret", namespace="dev"), ("", "Secret", "prod", "s"), False),
    ],
)
def test_ignore_rule_matching(rule: IgnoreDifference, ref: tuple[str, str, str, str], expected: bool) -> None:
    group, kind, namespace, name = ref
    assert rule.matches(group=group, kind=kind, namespace=namespace, name=name) is expected
