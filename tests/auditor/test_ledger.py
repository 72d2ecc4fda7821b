"""The ledger the reconcile pass and the heal share: what Git wants, our own writes, paused fights."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from auditor.ledger import Ledger, digest
from driftwarden.objectref import ObjectRef, ResourceKey
from tests.support.auditor import parsed_application

_app = parsed_application


def _cm(name: str, color: str = "blue", *, namespace: str = "web") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"color": color}}  # fmt: skip


DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "web"}}


def test_a_pass_replaces_what_its_application_wanted_and_leaves_the_others_alone() -> None:
    ledger, web, api = Ledger(), _app("web"), _app("api")
    ledger.want(web, [_cm("a"), DEPLOYMENT])
    ledger.want(api, [_cm("b", namespace="api")])
    ledger.want(web, [_cm("a", "red")])
    wanted = ledger.desired(ResourceKey("", "ConfigMap", "web", "a"))
    assert wanted is not None and wanted.app == web and wanted.manifest["data"] == {"color": "red"}
    assert wanted.digest == digest(_cm("a", "red")) != digest(_cm("a"))
    assert ledger.desired(ResourceKey("apps", "Deployment", "web", "web")) is None  # left Git
    assert ledger.desired(ResourceKey("", "ConfigMap", "api", "b")) is not None
    assert ledger.kinds() == {("", "ConfigMap")}


def test_our_own_writes_are_known_by_their_resource_version() -> None:
    ledger, ref = Ledger(), ObjectRef.from_manifest(_cm("a"))
    assert not ledger.is_own(ref.key, "7")
    ledger.own_write(ref, {"metadata": {"resourceVersion": "7"}})
    assert ledger.is_own(ref.key, "7") and not ledger.is_own(ref.key, "8") and not ledger.is_own(ref.key, "")
    ledger.own_write(ref, {"metadata": {}})  # a response without a version changes nothing
    assert ledger.is_own(ref.key, "7")


def test_a_paused_fight_holds_until_git_changes_the_object() -> None:
    ledger, web, ref = Ledger(), _app("web"), ObjectRef.from_manifest(_cm("a"))
    ledger.want(web, [_cm("a")])
    assert ledger.paused(ref) == ""
    ledger.pause(ref.key, manager="fake-hpa", fields=["/data/color"], digest=digest(_cm("a")))
    reason = ledger.paused(ref)
    assert "'fake-hpa'" in reason and "/data/color" in reason and "DriftFight" in reason
    ledger.want(web, [_cm("a")])  # the next pass at the same commit: still paused
    assert ledger.paused(ref) == reason
    ledger.want(web, [_cm("a", "green")])  # Git changed the object: sync it again
    assert ledger.paused(ref) == ""


def test_a_pause_ends_when_the_object_leaves_git() -> None:
    ledger, web, ref = Ledger(), _app("web"), ObjectRef.from_manifest(_cm("a"))
    ledger.want(web, [_cm("a")])
    ledger.pause(ref.key, manager="m", fields=[], digest=digest(_cm("a")))
    ledger.want(web, [])
    assert ledger.paused(ref) == ""


async def test_new_kinds_waits_for_a_pass_that_wants_a_kind_not_yet_known() -> None:
    ledger, web = Ledger(), _app("web")
    ledger.want(web, [_cm("a")])
    assert await ledger.new_kinds(set()) == [("", "ConfigMap")]
    waiting = asyncio.create_task(ledger.new_kinds({("", "ConfigMap")}))
    await asyncio.sleep(0.01)
    ledger.want(web, [_cm("a"), _cm("b")])  # no new kind: it keeps waiting
    await asyncio.sleep(0.01)
    assert not waiting.done()
    ledger.want(web, [_cm("a"), DEPLOYMENT])
    assert await asyncio.wait_for(waiting, timeout=1) == [("apps", "Deployment")]


@pytest.mark.parametrize("manifest", [_cm("a"), DEPLOYMENT])
def test_the_digest_is_stable_across_key_order(manifest: dict[str, Any]) -> None:
    assert digest(dict(reversed(list(manifest.items())))) == digest(manifest)


async def test_kinds_changed_says_when_a_kind_is_wanted_and_when_no_one_wants_it_any_more() -> None:
    ledger = Ledger()
    app = _app("web")
    ledger.want(app, [_cm("a")])
    assert await ledger.kinds_changed(set()) == {("", "ConfigMap")}
    waiting = asyncio.create_task(ledger.kinds_changed({("", "ConfigMap")}))
    await asyncio.sleep(0)
    assert not waiting.done()
    ledger.forget(app.key)
    assert await asyncio.wait_for(waiting, 1) == set()
