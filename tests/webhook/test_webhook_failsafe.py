"""When the rules fail on a review (webhook.admission.failsafe, webhook.app): a managed object's change is
denied whatever the mode, an unmanaged one is allowed visibly, and the server never answers 500."""

from __future__ import annotations

import dataclasses
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.sdk.trace import TracerProvider

import webhook.app
from tests.support.guard import serving_pair
from tests.webhook.conftest import BREAKGLASS_GROUP, BREAKGLASS_USER
from tests.webhook.reviews import AUDITOR, admission_review, changed, deployment, request
from webhook.admission.decision import Decision, decide
from webhook.admission.failsafe import contain, looks_managed
from webhook.admission.response import build_response
from webhook.admission.settings import DecisionSettings, make_settings
from webhook.server import ServerSettings, WebhookServer

GUARD = "driftwarden.io/guard"


def _guarded(mode: str) -> dict[str, Any]:
    return changed(deployment(), lambda o: o["metadata"]["annotations"].update({GUARD: mode}))


def failed(settings: DecisionSettings) -> Decision:
    """What decide answers when its rules fail: a visible allow (made to fail through broken settings)."""
    broken = dataclasses.replace(settings)
    object.__setattr__(broken, "profile", None)
    decision = decide(request(old=deployment(), new=deployment()), broken)
    assert decision.reason == "internal-error"
    return decision


def _unmanaged() -> dict[str, Any]:
    def strip(obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        meta["annotations"] = {"deployment.kubernetes.io/revision": "1"}
        meta["labels"] = {"app": "web"}
        meta["managedFields"] = [e for e in meta["managedFields"] if e["manager"] != "driftwarden"]

    return changed(deployment(), strip)


@pytest.mark.parametrize("mode", ["enforce", "warn", "off"])
def test_a_managed_change_the_rules_failed_on_is_denied_whatever_the_mode(
    settings: DecisionSettings, mode: str
) -> None:
    old = _guarded(mode)
    review = request(old=old, new=changed(old, lambda o: o["spec"].update(replicas=9)))
    denied = contain(review, settings, failed(settings))
    assert (denied.allowed, denied.reason, denied.violation, denied.mode) == (
        False, "internal-error", True, "enforce",
    )  # fmt: skip
    assert "Deployment production/web looks managed by Git" in denied.message
    assert "could not be evaluated" in denied.message
    assert denied.audit_annotations == {"decision": "denied", "reason": "internal-error"}
    response = build_response("uid", denied)["response"]
    assert (response["allowed"], response["status"]["code"]) == (False, 403)


@pytest.mark.parametrize(
    "evidence",
    [
        lambda o: o["metadata"]["labels"].update({"driftwarden.io/app": "x"}),
        lambda o: o["metadata"]["annotations"].update({"driftwarden.io/tracking-id": "garbage"}),
        lambda o: o["metadata"]["annotations"].update({"driftwarden.io/guard": "off"}),
        lambda o: o["metadata"]["managedFields"].append({"manager": "driftwarden", "fieldsV1": 7}),
    ],
)
def test_any_sign_of_management_on_either_object_is_enough(settings: DecisionSettings, evidence: Any) -> None:
    plain = _unmanaged()
    assert not looks_managed(plain, settings.profile)
    marked = changed(plain, evidence)
    assert looks_managed(marked, settings.profile)
    for old, new in ((marked, plain), (plain, marked)):
        assert contain(request(old=old, new=new), settings, failed(settings)).allowed is False
    created = request(operation="CREATE", old=None, new=marked)
    assert contain(created, settings, failed(settings)).allowed is False


def test_an_unmanaged_object_stays_writable_visibly(settings: DecisionSettings) -> None:
    plain = _unmanaged()
    scaled = changed(plain, lambda o: o["spec"].update(replicas=9))
    allowed = contain(request(old=plain, new=scaled), settings, failed(settings))
    assert (allowed.allowed, allowed.reason) == (True, "internal-error")
    assert allowed.warnings == ("driftwarden could not evaluate this request and allowed it",)
    assert allowed.audit_annotations == {"decision": "error", "reason": "internal-error"}
    garbage = contain(request(old=["not", "an", "object"], new="nor this"), settings, failed(settings))
    assert (garbage.allowed, garbage.reason) == (True, "internal-error")


def test_the_gitops_identity_and_break_glass_pass_as_they_do_whatever_the_change(
    settings: DecisionSettings,
) -> None:
    old = deployment()
    new = changed(old, lambda o: o["spec"].update(replicas=9))
    by_gitops = request(old=old, new=new, user=AUDITOR)
    assert contain(by_gitops, settings, failed(settings)).reason == "gitops-identity"
    for user, groups in ((BREAKGLASS_USER, ()), ("jane", (BREAKGLASS_GROUP,))):
        glass = contain(request(old=old, new=new, user=user, groups=groups), settings, failed(settings))
        assert (glass.allowed, glass.reason, glass.violation) == (True, "breakglass", True)
        assert glass.audit_annotations == {"decision": "breakglass", "reason": "internal-error"}
        assert all(len(w) < 120 for w in glass.warnings)


def test_unreadable_settings_are_a_configuration_bug_and_stay_visible(settings: DecisionSettings) -> None:
    broken = dataclasses.replace(settings)
    object.__setattr__(broken, "profile", None)
    decision = contain(request(old=deployment(), new=deployment()), broken, failed(settings))
    assert (decision.allowed, decision.reason) == (True, "internal-error")
    assert decision.warnings == ("driftwarden could not evaluate this request and allowed it",)


def test_a_hostile_name_cannot_break_the_denial(settings: DecisionSettings) -> None:
    name = "\ud800\x00\u202e" + "n" * 5000
    denied = contain(request(old=deployment(), new=deployment(), name=name), settings, failed(settings))
    assert denied.allowed is False
    body = json.dumps(build_response("uid", denied))
    assert len(json.loads(body)["response"]["status"]["message"].encode()) <= 1000


def test_the_issues_surrogate_in_a_changed_path_never_opens_the_guard(settings: DecisionSettings) -> None:
    # Issue 13, item 7: a Git-owned container named with a lone surrogate, then its image changed, made
    # decide fail and allow. The decoder now refuses such a body with a 400; a review built in memory
    # still gets a closed answer, from decide itself or from the failsafe.
    lone = "\ud800"

    def plant(obj: dict[str, Any]) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["name"] = lone
        owned = obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
        owned["f:containers"][f'k:{{"name":"{lone}"}}'] = owned["f:containers"].pop('k:{"name":"web"}')

    old = changed(deployment(), plant)
    new = changed(old, lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="evil"))
    review = request(old=old, new=new)
    decision = decide(review, settings)
    if decision.reason == "internal-error":
        decision = contain(review, settings, failed(settings))
    assert decision.allowed is False


@pytest.fixture
async def webhook_url(tmp_path: Path) -> AsyncIterator[tuple[str, aiohttp.ClientSession, Any]]:
    ca, cert, key = serving_pair(tmp_path)
    app = webhook.app.make_app(make_settings(), tracer=TracerProvider().get_tracer("test"))
    trust = ssl.create_default_context(cadata=ca.cert_pem.decode())
    async with (
        WebhookServer(app, ServerSettings(cert, key, host="127.0.0.1", port=0)) as server,
        aiohttp.ClientSession() as session,
    ):
        yield f"https://127.0.0.1:{server.port}", session, trust


async def _review(target: tuple[str, aiohttp.ClientSession, Any], path: str, body: Any) -> tuple[int, Any]:
    url, session, trust = target
    headers = {"Content-Type": "application/json"}
    async with session.post(url + path, data=json.dumps(body), headers=headers, ssl=trust) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
async def test_the_server_answers_an_internal_error_with_the_failsafe(
    webhook_url: Any, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    visible_allow = failed(make_settings())

    def failing(*_args: Any, **_kwargs: Any) -> Decision:
        return visible_allow

    monkeypatch.setattr(webhook.app, "decide", failing)
    old = _guarded("warn")
    status, body = await _review(webhook_url, path, admission_review(old=old, new=old))
    assert (status, body["response"]["allowed"]) == (200, False)
    assert "could not be evaluated" in body["response"]["status"]["message"]
    status, body = await _review(webhook_url, path, admission_review(old=_unmanaged(), new=_unmanaged()))
    assert (status, body["response"]["allowed"]) == (200, True)
    assert body["response"]["warnings"] == ["driftwarden could not evaluate this request and allowed it"]


async def test_an_exception_while_answering_is_never_a_500_and_is_logged_once(
    webhook_url: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def exploding(*_args: Any, **_kwargs: Any) -> Any:
        raise RecursionError("a bug this input reached")

    monkeypatch.setattr(webhook.app, "drift_patch", exploding)
    old = _guarded("warn")
    new = changed(old, lambda o: o["spec"].update(replicas=9))
    with caplog.at_level(logging.WARNING, logger="webhook.app"):
        for _ in range(20):
            status, body = await _review(webhook_url, "/mutate", admission_review(old=old, new=new))
            assert (status, body["response"]["allowed"]) == (200, False)
    logged = [r for r in caplog.records if r.name == "webhook.app"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None and "answered by the failsafe" in logged[0].getMessage()
