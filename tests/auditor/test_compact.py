"""What the auditor keeps per object, kept small (issue 17): packed documents come back equal, fingerprints
follow content, the dry-run cache answers from packed results, a heal's per-object locks go when unused,
and a pass's concurrent steps are cancelled together when one fails."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.compact import fingerprint, pack, unpack
from auditor.diff.compare import DryRunCache, _all
from auditor.heal.healer import KeyedLocks
from auditor.ledger import Ledger
from driftwarden.objectref import ResourceKey
from tests.support.auditor import parsed_application

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
DOCUMENTS = st.dictionaries(st.text(), JSON_VALUES, max_size=5)


@given(DOCUMENTS)
@settings(max_examples=300, deadline=None)
def test_a_packed_document_comes_back_equal(document: dict[str, Any]) -> None:
    packed = pack(document)
    assert unpack(packed) == document
    assert fingerprint(document) == fingerprint(unpack(packed))


@pytest.mark.parametrize(
    "document",
    [
        {"spec": {"ratio": math.nan}},  # JSON has no NaN: orjson would write null
        {"spec": {"ratio": math.inf}},
        {"spec": {"big": 2**70}},
        {"spec": {1: "a key that is no string"}},
        {"data": {"k": "\ud800"}},  # a lone surrogate
    ],
)
def test_what_json_cannot_carry_exactly_is_kept_as_it_is(document: dict[str, Any]) -> None:
    assert pack(document) is document
    assert unpack(pack(document)) is document


def test_a_small_object_packs_into_a_fraction_of_its_dicts() -> None:
    meta = {"name": "cm-00001", "namespace": "bench-01", "labels": {"driftwarden.io/app": "bench-01"}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"value": "git", "index": "1"}}
    packed = pack(cm)
    assert isinstance(packed, bytes) and len(packed) < 200


def test_a_fingerprint_follows_content_not_key_order() -> None:
    a = {"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "data": {"k": "v"}}
    b = {"data": {"k": "v"}, "metadata": {"labels": {"y": "2", "x": "1"}, "name": "a"}}
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint({**a, "data": {"k": "w"}})
    assert fingerprint({"n": 1}) != fingerprint({"n": "1"})
    assert len(fingerprint(a)) == 16
    assert fingerprint({"big": 2**70}) != fingerprint({"big": 2**70 + 1})  # the standard library's JSON


def _cm(value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "web"},
            "data": {"value": value}}  # fmt: skip


def test_the_dry_run_cache_answers_an_equal_result_until_git_or_the_live_object_changes() -> None:
    cache, manifest = DryRunCache(), _cm("git")
    live = {**_cm("git"), "metadata": {**_cm("git")["metadata"], "resourceVersion": "5", "managedFields": []}}
    answer = {**live, "status": {}}
    cache.put(manifest, live, answer)
    got = cache.get(manifest, {**live, "metadata": {**live["metadata"], "resourceVersion": "9"}})
    assert got == answer and got is not answer and cache.hits == 1  # status or version alone: a hit
    assert cache.get(_cm("other"), live) is None  # Git changed
    assert cache.get(manifest, _cm("edited")) is None  # the live object changed
    assert cache.get(manifest, None) is None


def test_the_ledger_hands_out_a_copy_of_what_git_wants() -> None:
    ledger = Ledger()
    ledger.want(parsed_application("web"), [_cm("git")])
    wanted = ledger.desired(ResourceKey("", "ConfigMap", "web", "a"))
    assert wanted is not None
    first = wanted.manifest
    first["data"]["value"] = "changed by a caller"
    assert wanted.manifest == _cm("git")


async def test_a_lock_per_object_is_kept_only_while_it_is_held_or_awaited() -> None:
    locks, key, order = KeyedLocks(), ResourceKey("", "ConfigMap", "web", "a"), []

    async def check(name: str, hold: float) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    await asyncio.gather(check("first", 0.05), check("second", 0))
    assert order == ["first in", "first out", "second in", "second out"]  # one at a time
    assert len(locks) == 0
    with pytest.raises(RuntimeError):
        async with locks.hold(key):
            raise RuntimeError("a failed check")
    assert len(locks) == 0


async def test_when_one_step_of_a_pass_fails_the_others_are_cancelled() -> None:
    finished: list[str] = []

    async def slow() -> str:
        await asyncio.sleep(5)
        finished.append("slow")
        return "slow"

    async def failing() -> str:
        await asyncio.sleep(0.01)
        raise TimeoutError("the API server did not answer")

    tasks_before = len(asyncio.all_tasks())
    with pytest.raises(TimeoutError):
        await _all([slow(), failing(), slow()])
    assert len(asyncio.all_tasks()) == tasks_before  # nothing left running on its own
    assert finished == []
    assert await _all([asyncio.sleep(0, "a"), asyncio.sleep(0, "b")]) == ["a", "b"]
