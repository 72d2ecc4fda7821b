"""Per-object failures: a refused object is skipped with its reason; the namespace hint says what is wrong."""

from __future__ import annotations

from typing import Any

from auditor.application import Automated, SyncPolicy
from auditor.diff.failures import failed_diff, failure_reason, namespace_hint, skip_failed
from auditor.objects import AppKey
from auditor.status import result_for
from auditor.sync.changeset import build_changeset
from driftwarden.errors import KubeError
from driftwarden.objectref import ObjectRef

APP = AppKey("dw", "web")


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "prod"}}


def test_a_refused_object_is_skipped_with_its_reason_and_the_others_are_applied() -> None:
    good, bad = cm("good"), cm("bad")
    reason = failure_reason(
        KubeError('PATCH ...: 422 Invalid: ConfigMap "bad" is invalid: field is immutable')
    )
    diffs = [failed_diff(good, None), failed_diff(bad, bad)]
    assert [d.action for d in diffs] == ["create", "update"]
    plan = build_changeset(
        [ObjectRef.from_manifest(good), ObjectRef.from_manifest(bad)], [bad], app=APP, diffs=diffs,
        policy=SyncPolicy(Automated(prune=True)),
    )  # fmt: skip
    planned = skip_failed(plan, {ObjectRef.from_manifest(bad).key: reason})
    by_name = {a.ref.name: a for a in planned.actions}
    assert by_name["good"].type == "create"
    assert by_name["bad"].type == "skip" and by_name["bad"].reason == reason
    result = result_for(by_name["bad"])
    assert result is not None and result.status == "SyncFailed"
    assert result.message.startswith("dry run failed: ") and result.message.endswith("field is immutable")
    assert skip_failed(plan, {}) is plan


def test_the_namespace_hint_names_what_is_actually_wrong() -> None:
    # The destination itself, without CreateNamespace: that option is the fix.
    assert "set syncOptions CreateNamespace=true" in namespace_hint("prod", destination="prod",
                                                                     create_namespace=False)  # fmt: skip
    # Another namespace with CreateNamespace=true set: the option cannot help, and the hint says why.
    other = namespace_hint("other", destination="prod", create_namespace=True)
    assert "set syncOptions CreateNamespace=true" not in other
    assert "creates only the destination namespace 'prod'" in other and "Namespace 'other' to Git" in other
    # Another namespace without it: not the destination, so the option would not help either.
    plain = namespace_hint("other", destination="prod", create_namespace=False)
    assert "CreateNamespace" not in plain and "not the destination 'prod'" in plain
