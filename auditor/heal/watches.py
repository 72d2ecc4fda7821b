"""One watch per kind some Application wants: started when the kind first appears, stopped when none wants it.

Orchestration for the heal. The set of kinds comes from the ledger (what the last passes want); each kind
gets one guarded task running ``open_watch`` (resolve the kind, list, then watch). A kind the API server
does not serve (a CRD not installed yet, or a typo in Git) is tried again with exponential back-off,
doubling from ``initial`` up to ``cap``, and said in one log line, not with a traceback on every try. A
watch that fails otherwise is logged once per streak of failures, with its traceback, and retried the
same way. Every task ends when its kind is no longer
wanted (the last Application that needed it was deleted or dropped it) and when ``run`` ends.
It must not heal or decide anything: ``open_watch`` delivers the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable

from auditor.kube.discovery import UnknownKindError
from auditor.ledger import Ledger
from auditor.objects import GroupKind
from driftwarden.cancellation import stop_if_cancelled

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 300.0
"""Seconds between tries for a kind that is not served: from 1 s, doubling, up to 5 min."""

OpenWatch = Callable[[str, str], Awaitable[None]]


def backoff(failures: int, *, initial: float = BACKOFF_INITIAL, cap: float = BACKOFF_MAX) -> float:
    """Seconds to wait after the ``failures``-th failure in a row (1-based): ``initial`` doubling, capped."""
    return min(cap, initial * 2.0 ** max(0, min(failures - 1, 64)))


class KindWatches:
    """The watch tasks by kind; ``tasks`` is what runs now."""

    def __init__(
        self,
        ledger: Ledger,
        open_watch: OpenWatch,
        *,
        initial: float = BACKOFF_INITIAL,
        cap: float = BACKOFF_MAX,
    ) -> None:
        self.ledger = ledger
        self.open_watch = open_watch
        self.initial, self.cap = initial, cap
        self.tasks: dict[GroupKind, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Follow the kinds the ledger wants until cancelled; every watch ends with it."""
        try:
            while True:
                wanted = await self.ledger.kinds_changed(self.tasks.keys())
                for group, kind in sorted(wanted - self.tasks.keys()):
                    # A fresh context: the watch outlives the pass that wanted the kind, and its heals
                    # must be root spans of their own traces, not children of that pass's span.
                    self.tasks[(group, kind)] = asyncio.create_task(
                        self._watch(group, kind), name=f"watch {group}/{kind}", context=contextvars.Context()
                    )
                for gone in sorted(self.tasks.keys() - wanted):
                    await self._cancel([self.tasks.pop(gone)])
                    log.info("stopped watching %s: no Application wants it any more", _name(*gone))
        finally:
            await self.stop()

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        await self._cancel(tasks)

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self, group: str, kind: str) -> None:
        failures, clock = 0, asyncio.get_running_loop().time
        while True:
            started = clock()
            try:
                await self.open_watch(group, kind)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # guarded: one kind's failure never stops the other watches
                if clock() - started > self.cap:
                    failures = 0  # it watched for a good while: a new streak of failures
                failures += 1
                if failures == 1 and isinstance(exc, UnknownKindError):
                    log.warning(
                        "cannot watch %s: %s; trying again with back-off up to %gs",
                        _name(group, kind), exc, self.cap,
                    )  # fmt: skip
                elif failures == 1:
                    log.exception("watch of %s failed; retrying with back-off", _name(group, kind))
            else:
                failures = 0  # it ended on its own after working: start again at once
                stop_if_cancelled()  # ended because a library swallowed our cancellation: stop
                continue
            stop_if_cancelled()
            await asyncio.sleep(backoff(failures, initial=self.initial, cap=self.cap))


def _name(group: str, kind: str) -> str:
    return f"{kind}.{group}" if group else kind
