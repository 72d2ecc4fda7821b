"""Which objects are written with Replace/Force, and what an immutable field's refusal says (no cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.application import SyncPolicy
from auditor.sync.replace import APPLY, WriteMode, immutable, refused_write, write_mode
from driftwarden.errors import KubeError
from driftwarden.objectref import ObjectRef

JOB = ObjectRef("batch", "v1", "Job", "prod", "report")
IMMUTABLE = KubeError(
    'Job.batch "report" is invalid: spec.template: Invalid value: core.PodTemplateSpec{}: field is immutable',
    status=422,
    reason="Invalid",
)


def job(options: str = "", key: str = "argocd.argoproj.io/sync-options") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "report", "namespace": "prod"}
    if options:
        meta["annotations"] = {key: options}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta}


@pytest.mark.parametrize(
    ("app_options", "manifest", "expected"),
    [
        ((), job(), APPLY),
        (("Replace=true",), job(), WriteMode(replace=True)),
        (("Force=true", "Replace=true"), job(), WriteMode(replace=True, force=True)),
        ((), job("Force=true"), WriteMode(force=True)),
        ((), job("Replace=true, Force=true", key="driftwarden.io/sync-options"), WriteMode(True, True)),
        (("Replace=true",), job("Replace=false"), APPLY),  # the object's own option wins
        (("Force=TRUE",), job(), WriteMode(force=True)),
    ],
)
def test_the_objects_option_wins_over_the_applications(
    app_options: tuple[str, ...], manifest: dict[str, Any], expected: WriteMode
) -> None:
    assert write_mode(manifest, SyncPolicy(None, app_options)) == expected


def test_an_immutable_refusal_names_the_way_out_first() -> None:
    assert immutable(IMMUTABLE)
    plain = str(refused_write(JOB, IMMUTABLE, APPLY))
    assert plain.startswith(f"{JOB}: a field that cannot change (immutable) differs from Git")
    assert "add the sync option Replace=true,Force=true" in plain and plain.endswith("field is immutable")
    assert "add the sync option Force=true " in str(refused_write(JOB, IMMUTABLE, WriteMode(replace=True)))
    other = KubeError('Job.batch "report" is invalid: spec.parallelism: must be >= 0', status=422)
    assert not immutable(other) and refused_write(JOB, other, APPLY) is other
    assert not WriteMode().tolerates_invalid and WriteMode(force=True).tolerates_invalid
