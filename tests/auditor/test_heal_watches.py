"""Watches by kind: an unserved kind backs off and is logged once; a kind no one wants stops being watched."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import pytest

from auditor.heal.watches import KindWatches, backoff
from auditor.kube.discovery import UnknownKindError
from auditor.ledger import Ledger
from tests.support.auditor import parsed_application
from tests.support.waiting import eventually

_app = parsed_application


WIDGET: dict[str, Any] = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w", "namespace": "a"},
}


async def _true(value: bool) -> bool:
    return value


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, initial=1, cap=30) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff(10_000, initial=1, cap=300) == 300


async def test_an_unserved_kind_backs_off_logs_once_and_stops_when_no_application_wants_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tries: list[float] = []
    loop = asyncio.get_running_loop()

    async def open_watch(group: str, kind: str) -> None:
        tries.append(loop.time())
        raise UnknownKindError(group, "v1", kind)

    ledger, app = Ledger(), _app("a")
    watches = KindWatches(ledger, open_watch, initial=0.02, cap=0.16)
    ledger.want(app, [WIDGET])
    caplog.set_level(logging.DEBUG, logger="auditor.heal.watches")
    running = asyncio.create_task(watches.run())
    try:
        await eventually(lambda: _true(len(tries) >= 7), seconds=5, every=0.01)
        gaps = [b - a for a, b in itertools.pairwise(tries)]
        assert gaps[0] >= 0.02 and gaps[2] >= 0.08 and gaps[4] >= 0.16  # doubling, then the cap
        assert max(gaps) < 0.16 * 3  # capped
        lines = [r for r in caplog.records if "Widget" in r.getMessage()]
        assert len(lines) == 1 and lines[0].levelno == logging.WARNING and lines[0].exc_info is None
        assert "serves no kind Widget" in lines[0].getMessage()
        assert ("example.com", "Widget") in watches.tasks

        ledger.forget(app.key)  # the Application that wanted it is deleted
        await eventually(lambda: _true(not watches.tasks), seconds=5, every=0.01)
        count = len(tries)
        await asyncio.sleep(0.4)
        assert len(tries) == count  # no more tries
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert watches.tasks == {}


async def test_another_failure_is_logged_once_per_streak_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tries = 0

    async def open_watch(group: str, kind: str) -> None:
        nonlocal tries
        tries += 1
        raise RuntimeError("boom")

    ledger = Ledger()
    watches = KindWatches(ledger, open_watch, initial=0.01, cap=0.02)
    ledger.want(_app("a"), [WIDGET])
    running = asyncio.create_task(watches.run())
    try:
        await eventually(lambda: _true(tries >= 5), seconds=5, every=0.01)
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    failed = [r for r in caplog.records if "watch of Widget.example.com failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is not None
