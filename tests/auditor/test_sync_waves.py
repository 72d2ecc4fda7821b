"""The phase/wave planner and the hook rules: pure, no cluster (auditor.sync.waves, auditor.sync.hooks)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.application import Automated, SyncPolicy
from auditor.health import Health
from auditor.objects import AppKey
from auditor.sync.changeset import build_changeset
from auditor.sync.hooks import (
    HOOK_ANNOTATION,
    HOOK_LABEL,
    Hook,
    delete_policies,
    deleted_after,
    hook_phase,
    hook_types,
    is_hook,
    split_render,
    wave_of,
)
from auditor.sync.waves import PHASES, manifests_digest, plan_sync, resource_waves
from driftwarden.errors import RenderError
from driftwarden.objectref import ObjectRef

APP = AppKey("dw", "web")
POLICY = SyncPolicy(Automated(prune=True))


def manifest(
    kind: str, name: str, *, api: str = "v1", generate: bool = False, wave: int | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"generateName" if generate else "name": name, "namespace": "prod"}
    if wave is not None:
        meta["annotations"] = {"argocd.argoproj.io/sync-wave": str(wave)}
    return {"apiVersion": api, "kind": kind, "metadata": meta}


def annotated(kind: str, name: str, annotations: dict[str, str], **kw: Any) -> dict[str, Any]:
    out = manifest(kind, name, **kw)
    out["metadata"]["annotations"] = annotations
    return out


def split(*manifests: dict[str, Any]) -> Any:
    return split_render(manifests, app=APP, namespace="prod", cluster_scoped=lambda g, k: k == "Namespace")


# --- hooks -------------------------------------------------------------------------------------------


def test_argo_hook_types_and_defaults() -> None:
    job = annotated("Job", "migrate", {"argocd.argoproj.io/hook": "PreSync, PostSync"}, api="batch/v1")
    assert hook_types(job) == ("PreSync", "PostSync")
    assert delete_policies(job) == ("BeforeHookCreation",)  # Argo CD's default
    assert wave_of(job) == 0
    assert hook_types(manifest("ConfigMap", "plain")) == ()


@pytest.mark.parametrize(
    ("helm", "expected"),
    [
        ("pre-install", ("PreSync",)),
        ("pre-upgrade", ("PreSync",)),
        ("pre-install,pre-upgrade", ("PreSync",)),
        ("post-install,post-upgrade", ("PostSync",)),
        ("pre-install,post-install", ("PreSync", "PostSync")),
        ("test", ("Skip",)),
        ("test-success", ("Skip",)),
        ("pre-delete", ("Skip",)),
        ("crd-install", ()),
    ],
)
def test_helm_hooks_are_mapped_as_argo_cd_maps_them(helm: str, expected: tuple[str, ...]) -> None:
    assert hook_types(annotated("Job", "x", {"helm.sh/hook": helm})) == expected


def test_helm_delete_policies_and_weight() -> None:
    job = annotated(
        "Job", "x",
        {"helm.sh/hook": "pre-install", "helm.sh/hook-weight": "-3",
         "helm.sh/hook-delete-policy": "hook-succeeded,before-hook-creation"},
    )  # fmt: skip
    assert delete_policies(job) == ("HookSucceeded", "BeforeHookCreation")
    assert wave_of(job) == -3
    failed = annotated(
        "Job", "y", {"helm.sh/hook": "post-install", "helm.sh/hook-delete-policy": "hook-failed"}
    )
    assert delete_policies(failed) == ("HookFailed",)


def test_argo_annotations_win_over_helm() -> None:
    both = annotated(
        "Job", "x",
        {"helm.sh/hook": "post-install", "argocd.argoproj.io/hook": "Sync", "helm.sh/hook-weight": "5",
         "argocd.argoproj.io/sync-wave": "2", "helm.sh/hook-delete-policy": "hook-failed",
         "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"},
    )  # fmt: skip
    assert (hook_types(both), wave_of(both), delete_policies(both)) == (("Sync",), 2, ("HookSucceeded",))


@pytest.mark.parametrize(
    ("annotations", "error"),
    [
        ({"argocd.argoproj.io/hook": "PreDeploy"}, "PreDeploy is not a hook type"),
        ({"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/hook-delete-policy": "Never"}, "Never"),
        ({"argocd.argoproj.io/sync-wave": "soon"}, "sync-wave must be an integer"),
    ],
)
def test_malformed_hook_annotations_fail_the_render_by_name(annotations: dict[str, str], error: str) -> None:
    with pytest.raises(RenderError, match=error):
        split(annotated("Job", "bad", annotations))


def test_split_keeps_hooks_out_of_the_resources_and_stamps_them_apart() -> None:
    deploy = manifest("Deployment", "web", api="apps/v1")
    job = annotated("Job", "migrate-", {"argocd.argoproj.io/hook": "PreSync"}, api="batch/v1", generate=True)
    job["metadata"].pop("namespace")
    skipped = annotated("Pod", "smoke", {"helm.sh/hook": "test"})
    out = split(deploy, job, skipped)
    assert out.resources == (deploy,)
    assert [h.ref.name for h in out.hooks] == ["migrate-"]
    hook = out.hooks[0]
    assert hook.generated and hook.ref.namespace == "prod"
    meta = hook.manifest["metadata"]
    assert meta["labels"] == {HOOK_LABEL: "web"}
    assert meta["annotations"][HOOK_ANNOTATION] == "dw/web:batch/Job:prod/migrate-"
    assert "driftwarden.io/tracking-id" not in meta["annotations"]  # never compared, healed or pruned
    assert "driftwarden.io/app" not in meta["labels"]
    assert out.skipped == (ObjectRef("", "v1", "Pod", "prod", "smoke"),)


def test_generate_name_is_for_hooks_only() -> None:
    with pytest.raises(RenderError, match="generateName is accepted for hooks only"):
        split(manifest("ConfigMap", "cfg-", generate=True))


def test_hook_phase_and_delete_policies() -> None:
    hook = Hook(ObjectRef("batch", "v1", "Job", "prod", "x"), {}, ("Sync",), 0, ("HookSucceeded",))
    assert hook_phase(Health("Healthy")) == "Succeeded"
    assert hook_phase(Health("Degraded", "BackoffLimitExceeded")) == "Failed"
    assert hook_phase(Health("Progressing")) == "Running"
    assert deleted_after(hook, "Succeeded") and not deleted_after(hook, "Failed")
    failed_policy = Hook(hook.ref, {}, ("Sync",), 0, ("HookFailed",))
    assert deleted_after(failed_policy, "Failed") and not deleted_after(failed_policy, "Succeeded")
    keep = Hook(hook.ref, {}, ("Sync",), 0, ("BeforeHookCreation",))
    assert not deleted_after(keep, "Succeeded") and not deleted_after(keep, "Failed")


# --- the planner -------------------------------------------------------------------------------------


def _changeset(*manifests: dict[str, Any]) -> Any:
    refs = [ObjectRef.from_manifest(m) for m in manifests]
    return build_changeset(refs, [], app=APP, policy=POLICY)


def test_without_hooks_or_waves_the_plan_is_one_sync_step() -> None:
    cs = _changeset(manifest("ConfigMap", "a"), manifest("Service", "b"))
    plan = plan_sync(cs, waves={})
    assert len(plan.steps) == 1
    assert plan.steps[0].phase == "Sync" and [a.ref.name for a in plan.steps[0].actions] == ["a", "b"]
    assert plan_sync(_changeset(), waves={}).steps[0].phase == "Sync"  # an empty render still syncs (prunes)


def test_phases_then_waves_then_kind_order() -> None:
    deploy = manifest("Deployment", "web", api="apps/v1", wave=1)
    config = manifest("ConfigMap", "cfg", wave=-1)
    service = manifest("Service", "svc")
    pre = annotated("Job", "pre", {"argocd.argoproj.io/hook": "PreSync"}, api="batch/v1")
    post = annotated(
        "Job", "post", {"argocd.argoproj.io/hook": "PostSync", "argocd.argoproj.io/sync-wave": "-5"}
    )
    sync_hook = annotated(
        "Pod", "during", {"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "1"}
    )
    fail = annotated("Job", "cleanup", {"argocd.argoproj.io/hook": "SyncFail"}, api="batch/v1")
    hooks = split(pre, post, sync_hook, fail).hooks
    plan = plan_sync(
        _changeset(deploy, config, service), waves=resource_waves([deploy, config, service]), hooks=hooks
    )
    shape = [
        (s.phase, s.wave, [a.ref.name for a in s.actions], [h.ref.name for h in s.hooks]) for s in plan.steps
    ]
    assert shape == [
        ("PreSync", 0, [], ["pre"]),
        ("Sync", -1, ["cfg"], []),
        ("Sync", 0, ["svc"], []),
        ("Sync", 1, ["web"], ["during"]),
        ("PostSync", -5, [], ["post"]),
    ]
    assert [(s.phase, [h.ref.name for h in s.hooks]) for s in plan.sync_fail] == [("SyncFail", ["cleanup"])]


def test_the_digest_changes_with_the_revision_and_the_render() -> None:
    cfg = manifest("ConfigMap", "a")
    assert manifests_digest("r1", [cfg]) == manifests_digest("r1", [dict(cfg)])
    assert manifests_digest("r1", [cfg]) != manifests_digest("r2", [cfg])
    assert manifests_digest("r1", [cfg]) != manifests_digest("r1", [manifest("ConfigMap", "b")])


_KINDS = st.sampled_from(["ConfigMap", "Service", "Secret", "Pod", "Widget"])
_WAVES = st.integers(min_value=-3, max_value=3)
_HOOKS = st.lists(
    st.sampled_from(["PreSync", "Sync", "PostSync", "SyncFail"]), min_size=1, max_size=2, unique=True
)


@settings(max_examples=150, deadline=None)
@given(
    resources=st.lists(st.tuples(_KINDS, _WAVES), max_size=8),
    hooks=st.lists(st.tuples(_HOOKS, _WAVES), max_size=5),
)
def test_every_action_and_hook_is_planned_once_in_phase_then_wave_order(
    resources: list[tuple[str, int]], hooks: list[tuple[list[str], int]]
) -> None:
    desired = [manifest(kind, f"r{i}", wave=w) for i, (kind, w) in enumerate(resources)]
    hook_objs = [
        annotated(
            "Job",
            f"h{i}",
            {"argocd.argoproj.io/hook": ",".join(types), "argocd.argoproj.io/sync-wave": str(w)},
        )
        for i, (types, w) in enumerate(hooks)
    ]
    plan = plan_sync(_changeset(*desired), waves=resource_waves(desired), hooks=split(*hook_objs).hooks)
    # Steps are ordered by phase, then wave, each (phase, wave) once.
    order = [(PHASES.index(s.phase), s.wave) for s in plan.steps]  # type: ignore[arg-type]
    assert order == sorted(set(order))
    # Each resource action exactly once, in the Sync phase, in its own wave.
    planned = [(a.ref.name, s.wave) for s in plan.steps for a in s.actions if s.phase == "Sync"]
    assert sorted(planned) == sorted((f"r{i}", w) for i, (_, w) in enumerate(resources))
    assert all(not s.actions for s in plan.steps if s.phase != "Sync")
    # Each hook once per type, in the step of that phase and its wave; SyncFail ones only in sync_fail.
    for i, (types, w) in enumerate(hooks):
        where = [
            (s.phase, s.wave)
            for s in (*plan.steps, *plan.sync_fail)
            for h in s.hooks
            if h.ref.name == f"h{i}"
        ]
        assert sorted(where) == sorted((t, w) for t in types)
    assert all(s.phase == "SyncFail" for s in plan.sync_fail)


_ANNOTATIONS = st.dictionaries(
    st.sampled_from(["argocd.argoproj.io/hook", "helm.sh/hook"]),
    st.lists(
        st.sampled_from(["PreSync", "Sync", "PostSync", "SyncFail", "Skip", "pre-install", "post-upgrade",
                         "test", "crd-install", "pre-delete"]),
        min_size=1, max_size=3,
    ).map(",".join),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(_ANNOTATIONS, max_size=6))
def test_every_rendered_object_is_a_resource_a_hook_or_skipped_exactly_once(
    annotations: list[dict[str, str]],
) -> None:
    manifests = [annotated("Job", f"o{i}", a, api="batch/v1") for i, a in enumerate(annotations)]
    try:
        out = split(*manifests)
    except RenderError as exc:  # only an Argo CD value that is no hook type (a Helm name written there)
        assert "is not a hook type" in str(exc)
        return
    names = [m["metadata"]["name"] for m in out.resources] + [h.ref.name for h in out.hooks]
    names += [ref.name for ref in out.skipped]
    assert sorted(names) == sorted(f"o{i}" for i in range(len(manifests)))
    for hook in out.hooks:
        assert hook.types and "Skip" not in hook.types
        assert hook.manifest["metadata"]["labels"][HOOK_LABEL] == "web"
    assert all(not is_hook(m) for m in out.resources)
