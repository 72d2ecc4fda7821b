"""Profiles (webhook.admission.profiles) and decision settings (webhook.admission.settings)."""

from __future__ import annotations

from typing import Any

import pytest

from driftwarden import contract
from driftwarden.errors import ConfigError
from driftwarden.objectref import ResourceKey
from webhook.admission.profiles import (
    ARGOCD,
    DRIFTWARDEN,
    FLUX,
    Ownership,
    get_profile,
    ownership,
    parse_tracking,
    protected_paths,
)
from webhook.admission.settings import DecisionSettings, make_settings, parse_mode

WEB = ResourceKey("apps", "Deployment", "production", "web")


def test_profiles_by_name() -> None:
    assert get_profile("driftwarden") is DRIFTWARDEN
    assert get_profile("argocd").managers == {"argocd-controller", "argocd-application-controller"}
    assert get_profile("flux").default_identities == {
        "system:serviceaccount:flux-system:kustomize-controller",
        "system:serviceaccount:flux-system:helm-controller",
    }
    assert DRIFTWARDEN.default_identities == {contract.auditor_identity()}


def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown GitOps profile 'rancher'.*argocd, driftwarden, flux"):
        get_profile("rancher")


def meta(annotations: dict[str, Any] | None = None, labels: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"annotations": annotations or {}, "labels": labels or {}}


@pytest.mark.parametrize(
    ("metadata", "ref", "expected"),
    [
        pytest.param(
            meta({contract.ANNOTATION_TRACKING_ID: "ds/web-app:apps/Deployment:production/web"}),
            WEB,
            Ownership("ds/web-app", "annotation driftwarden.io/tracking-id"),
            id="self-referencing",
        ),
        pytest.param(
            meta({contract.ANNOTATION_TRACKING_ID: "ds/web-app:apps/Deployment:production/web"}),
            ResourceKey("apps", "ReplicaSet", "production", "web-6d4cf56db6"),
            None,
            id="copied-to-replicaset",
        ),
        pytest.param(
            meta({contract.ANNOTATION_TRACKING_ID: "ds/web-app:apps/Deployment:staging/web"}),
            WEB,
            None,
            id="other-namespace",
        ),
        pytest.param(meta({contract.ANNOTATION_TRACKING_ID: "garbage"}), WEB, None, id="malformed"),
        pytest.param(meta({contract.ANNOTATION_TRACKING_ID: 5}), WEB, None, id="not-a-string"),
        pytest.param(
            meta(labels={contract.LABEL_APP: "web-app"}), WEB, None, id="label-alone-is-not-ownership"
        ),
        pytest.param(
            meta({contract.ANNOTATION_TRACKING_ID: "ds/ns:/Namespace:/production"}),
            ResourceKey("", "Namespace", "", "production"),
            Ownership("ds/ns", "annotation driftwarden.io/tracking-id"),
            id="cluster-scoped",
        ),
        pytest.param("not metadata", WEB, None, id="garbage-metadata"),
    ],
)
def test_driftwarden_ownership(metadata: Any, ref: ResourceKey, expected: Ownership | None) -> None:
    assert ownership(DRIFTWARDEN, metadata, ref=ref) == expected


def test_argocd_tracking() -> None:
    ref = parse_tracking(ARGOCD, "apps_web-app:apps/Deployment:production/web")
    assert ref is not None and (ref.app, ref.kind, ref.name) == ("apps_web-app", "Deployment", "web")
    assert parse_tracking(ARGOCD, "web-app:Deployment:production/web") is None
    assert parse_tracking(ARGOCD, "a:b:c:d") is None
    annotations = {"argocd.argoproj.io/tracking-id": "web-app:apps/Deployment:production/web"}
    assert ownership(ARGOCD, meta(annotations), ref=WEB) == Ownership(
        "web-app", "annotation argocd.argoproj.io/tracking-id"
    )
    assert ownership(DRIFTWARDEN, meta(annotations), ref=WEB) is None


def test_flux_labels_prove_ownership() -> None:
    kustomize = {
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    assert ownership(FLUX, meta(labels=kustomize), ref=WEB) == Ownership(
        "flux-system/apps", "label kustomize.toolkit.fluxcd.io/name"
    )
    helm = {"helm.toolkit.fluxcd.io/name": "podinfo"}
    assert ownership(FLUX, meta(labels=helm), ref=WEB) == Ownership(
        "podinfo", "label helm.toolkit.fluxcd.io/name"
    )
    assert ownership(FLUX, meta(labels={"kustomize.toolkit.fluxcd.io/name": ""}), ref=WEB) is None


def test_match_kind_false_checks_only_namespace_and_name() -> None:
    annotations = {contract.ANNOTATION_TRACKING_ID: "ds/web-app:apps/Deployment:production/web"}
    scale = ResourceKey("", "", "production", "web")
    assert ownership(DRIFTWARDEN, meta(annotations), ref=scale) is None
    assert ownership(DRIFTWARDEN, meta(annotations), ref=scale, match_kind=False) is not None


def test_protected_paths() -> None:
    assert protected_paths(DRIFTWARDEN) == (
        ("f:metadata", "f:annotations", "f:driftwarden.io/tracking-id"),
        ("f:metadata", "f:labels", "f:driftwarden.io/app"),
        ("f:metadata", "f:annotations", "f:driftwarden.io/guard"),
        ("f:metadata", "f:annotations", "f:driftwarden.io/guard-allow"),
    )
    assert ("f:metadata", "f:labels", "f:kustomize.toolkit.fluxcd.io/name") in protected_paths(FLUX)


def test_make_settings_defaults() -> None:
    settings = make_settings()
    assert settings.profile is DRIFTWARDEN
    assert settings.gitops_identities == {contract.auditor_identity()}
    assert (settings.default_mode, settings.strict) == ("enforce", False)
    custom = make_settings(profile="flux", gitops_identities=["me"], default_mode=" Warn ", strict=True)
    assert (custom.profile, custom.gitops_identities, custom.default_mode, custom.strict) == (
        FLUX,
        {"me"},
        "warn",
        True,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"profile": "nope"}, "unknown GitOps profile", id="profile"),
        pytest.param({"default_mode": "audit"}, "default guard mode 'audit'", id="mode"),
        pytest.param({"gitops_identities": []}, "at least one gitops identity", id="no-identity"),
        pytest.param(
            {"gitops_identities": "system:serviceaccount:a:b"}, "single string", id="string-not-list"
        ),
        pytest.param({"breakglass_users": [""]}, "break-glass user ''", id="empty-user"),
        pytest.param({"breakglass_users": [" bob"]}, "surrounding spaces", id="spaces"),
        pytest.param({"breakglass_groups": ["system:authenticated"]}, "switch the guard off", id="everyone"),
        pytest.param({"breakglass_groups": ["system:masters"]}, "switch the guard off", id="masters"),
        pytest.param(
            {"gitops_identities": ["bob"], "breakglass_users": ["bob"]},
            "both GitOps identity and break-glass",
            id="overlap",
        ),
    ],
)
def test_invalid_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(**kwargs)


def test_settings_validate_when_built_directly() -> None:
    with pytest.raises(ConfigError, match="frozenset"):
        DecisionSettings(profile=DRIFTWARDEN, gitops_identities=["a"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="default guard mode"):
        DecisionSettings(profile=DRIFTWARDEN, gitops_identities=frozenset({"a"}), default_mode="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="strict"):
        DecisionSettings(profile=DRIFTWARDEN, gitops_identities=frozenset({"a"}), strict=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Profile"):
        DecisionSettings(profile="driftwarden", gitops_identities=frozenset({"a"}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "mode"), [("enforce", "enforce"), (" OFF", "off"), ("warning", None), (None, None), (3, None)]
)
def test_parse_mode(value: object, mode: str | None) -> None:
    assert parse_mode(value) == mode
