"""The webhook configurations' builders (pure): which requests reach which endpoint.

The real API server evaluating these conditions is tests/webhook/test_webhook_calls_cluster.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from driftwarden import contract
from webhook.admission.profiles import get_profile
from webhook.registration import (
    Endpoint,
    mutating_configuration,
    selection_for,
    stamp_conditions,
    validating_configuration,
)

ENDPOINT = Endpoint(ca_bundle=b"ca", url="https://127.0.0.1:8443")


def _conditions(hook: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["expression"] for c in hook.get("matchConditions", [])}


def _hooks(**selected: Any) -> dict[str, dict[str, Any]]:
    gitops = [contract.auditor_identity()]
    selection = selection_for(get_profile("driftwarden"), skip_users=gitops, **selected)
    hooks = validating_configuration(endpoint=ENDPOINT, selection=selection)["webhooks"]
    hooks += mutating_configuration(endpoint=ENDPOINT, selection=selection)["webhooks"]
    return {hook["name"]: hook for hook in hooks}


def test_in_enforce_mode_only_the_mutating_objects_hook_skips_what_it_cannot_patch() -> None:
    hooks = _hooks()
    assert "may-stamp" in _conditions(hooks["objects.flag.driftwarden.io"])
    for name in ("objects.guard.driftwarden.io", "scale.guard.driftwarden.io"):
        assert "may-stamp" not in _conditions(hooks[name])
        assert "not-gitops-identity" in _conditions(hooks[name])
    expression = _conditions(hooks["objects.flag.driftwarden.io"])["may-stamp"]
    for annotation in (contract.ANNOTATION_GUARD, contract.ANNOTATION_GUARD_ALLOW, contract.ANNOTATION_DRIFT):
        assert f"'{annotation}'" in expression
    assert expression.startswith("request.operation == 'CREATE' || (request.operation == 'UPDATE' && ")


@pytest.mark.parametrize("mode", ["warn", "off"])
def test_any_other_default_mode_sends_every_request_to_mutate(mode: str) -> None:
    hooks = _hooks(default_mode=mode)
    assert "may-stamp" not in _conditions(hooks["objects.flag.driftwarden.io"])


def test_break_glass_users_and_groups_reach_mutate() -> None:
    hooks = _hooks(breakglass_users=["o'brien"], breakglass_groups=["sre", "oncall"])
    expression = _conditions(hooks["objects.flag.driftwarden.io"])["may-stamp"]
    assert "request.userInfo.username in ['o\\'brien']" in expression  # quoted for CEL
    assert "request.userInfo.groups.exists(g, g in ['oncall', 'sre'])" in expression


def test_no_break_glass_means_no_user_terms() -> None:
    (condition,) = stamp_conditions(selection_for(get_profile("argocd"), skip_users=[]))
    assert "userInfo" not in condition["expression"]
