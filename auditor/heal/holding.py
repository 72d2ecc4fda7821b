"""The heal's side of break-glass holds: begin one on a break-glass edit, leave held objects alone, end
expired or released holds (then the heal goes on and heals).

The webhook marks an edit it let through by break-glass (its flags, or the Application's
``spec.guard.allow``) with ``breakglass`` in the drift stamp. Instead of reverting it, the heal puts the
object on hold (auditor.holdkeeping) and arms a timer for the hold's end, so an expired hold is healed
without waiting for a watch event or a poll. Orchestration; what holds is decided by auditor.holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from auditor.clients import AuditorClients
from auditor.diff.objectdiff import ObjectDiff
from auditor.holdkeeping import begin_hold, current_holds, end_hold
from auditor.holds import ended, marked
from auditor.ledger import Desired, Ledger
from driftwarden.contract import DriftStamp
from driftwarden.objectref import ObjectRef, ResourceKey

log = logging.getLogger(__name__)
TIMER_SLACK = 0.2
"""Seconds past a hold's end before its timer re-checks the object (clocks tick in whole seconds)."""


class Holds:
    """Break-glass holds as the heal sees them; ``recheck(ref)`` re-judges an object when a hold ends."""

    def __init__(
        self, clients: AuditorClients, ledger: Ledger, recheck: Callable[[ObjectRef], Awaitable[None]]
    ) -> None:
        self.clients = clients
        self.ledger = ledger
        self.recheck = recheck
        self._held: set[ResourceKey] = set()
        self._timers: dict[ResourceKey, asyncio.Task[None]] = {}

    async def leave_alone(
        self,
        ref: ObjectRef,
        desired: Desired,
        live: Mapping[str, Any] | None,
        stamp: DriftStamp | None,
        diff: ObjectDiff,
    ) -> bool:
        """True when the heal must leave ``ref`` alone now: a break-glass edit (a hold begins) or a hold
        that still holds. A hold that ended is ended here, and False lets the heal go on."""
        breakglass = stamp is not None and stamp.breakglass
        if not (breakglass or ref.key in self._held or marked(live)):
            return False  # the usual case, decided without a request
        app = desired.app
        if breakglass and stamp is not None and live is not None:
            fields = diff.changed_paths or stamp.fields
            begun = await begin_hold(self.clients, self.ledger, app, ref, user=stamp.user, fields=fields,
                                     manifest=desired.manifest)  # fmt: skip
            self._arm(ref, begun.until.timestamp())
            return True
        hold = (await current_holds(self.clients, app.key)).get(ref.key)
        if hold is None:  # no hold in the status: an annotation alone holds nothing
            self._held.discard(ref.key)
            return False
        reason = ended(hold, now=self.clients.clock(), live=live, manifest=desired.manifest)
        if not reason:
            self._arm(ref, hold.until.timestamp())
            return True
        self._disarm(ref.key)
        await end_hold(self.clients, self.ledger, app.key, hold, reason=reason, unmark=marked(live))
        return False

    def _arm(self, ref: ObjectRef, until: float) -> None:
        self._held.add(ref.key)
        self._disarm(ref.key, forget=False)
        delay = max(until - self.clients.clock().timestamp(), 0.0) + TIMER_SLACK
        self._timers[ref.key] = asyncio.create_task(self._expire(ref, delay), name=f"hold {ref}")

    def _disarm(self, key: ResourceKey, *, forget: bool = True) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        if forget:
            self._held.discard(key)

    async def _expire(self, ref: ObjectRef, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await self.recheck(ref)
        except Exception:
            log.exception("ending the hold of %s failed", ref)

    async def stop(self) -> None:
        timers = list(self._timers.values())
        for task in timers:
            task.cancel()
        for task in timers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._timers.clear()
