"""Leader election between auditor replicas: only the leader reconciles (adapter + orchestration).

``LeaseStore`` is the thin adapter: GET, CREATE and PUT (with the resourceVersion read, so two
candidates never both win) of one coordination.k8s.io/v1 Lease, raising ``driftwarden.errors``.
``LeaderElector.run`` is client-go's loop over the pure decision in ``auditor.leadership.lease``: try to
acquire every retry period (jittered) until it holds the Lease, start the leading work as a task, renew
every retry period, and when a renewal has not succeeded within the renew deadline, or another replica
holds the Lease, cancel the work and return. Cancelling ``run`` stops gracefully: the work is cancelled
and the Lease released (holder cleared) so a standby takes over at once, unless ``release_on_cancel`` is
off. Only identities and times are logged; the Lease carries nothing secret.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from kubernetes_asyncio import client

from auditor.leadership.fence import Fence
from auditor.leadership.lease import (
    JITTER_FACTOR,
    ElectionSettings,
    LeaseRecord,
    decide,
    lease_object,
    lease_spec,
    parse_lease,
    released,
)
from driftwarden.errors import KubeError
from driftwarden.kube.rest import request_json, resource_path

log = logging.getLogger(__name__)

Ending = Literal["lost", "finished"]
"""Why ``run`` returned: leadership was lost, or the leading work ended on its own."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LeaseStore:
    """One Lease, as the identity of ``api``."""

    def __init__(self, api: client.ApiClient, *, namespace: str, name: str, request_timeout: float) -> None:
        self._api = api
        self.namespace, self.name = namespace, name
        self._timeout = request_timeout

    def _path(self, *, named: bool = True) -> str:
        return resource_path(
            group="coordination.k8s.io", version="v1", plural="leases",
            namespace=self.namespace, name=self.name if named else None,
        )  # fmt: skip

    async def get(self) -> dict[str, Any] | None:
        """The Lease, or None when it does not exist."""
        try:
            return await request_json(self._api, "GET", self._path(), request_timeout=self._timeout)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def create(self, record: LeaseRecord) -> dict[str, Any]:
        """Create the Lease; a 409 ``KubeError`` when another candidate created it first."""
        body = lease_object(record, namespace=self.namespace, name=self.name)
        return await request_json(
            self._api, "POST", self._path(named=False), body=body, request_timeout=self._timeout
        )

    async def replace(self, current: dict[str, Any], record: LeaseRecord) -> dict[str, Any]:
        """PUT ``record`` over ``current``; a 409 ``KubeError`` when the Lease changed since it was read."""
        body = {**current, "spec": {**(current.get("spec") or {}), **lease_spec(record)}}
        return await request_json(self._api, "PUT", self._path(), body=body, request_timeout=self._timeout)


class _LeadershipLost(Exception):
    """Another replica holds a live lease while we believed we led."""


class LeaderElector:
    """Campaigns for the Lease of ``settings`` and runs work only while holding it."""

    def __init__(
        self,
        api: client.ApiClient,
        settings: ElectionSettings,
        *,
        release_on_cancel: bool = True,
        clock: Callable[[], dt.datetime] = _utcnow,
        fence: Fence | None = None,
    ) -> None:
        self.settings = settings
        self.store = LeaseStore(
            api, namespace=settings.namespace, name=settings.name, request_timeout=settings.renew_deadline
        )
        self.release_on_cancel = release_on_cancel
        self.clock = clock
        self.fence = fence
        """Opened by every successful acquire or renewal, closed when leadership ends (fencing)."""
        self.leading = False
        self.observed_holder = ""

    @property
    def identity(self) -> str:
        return self.settings.identity

    async def run(
        self,
        on_started_leading: Callable[[], Coroutine[Any, Any, None]],
        on_stopped_leading: Callable[[], None] | None = None,
    ) -> Ending:
        """Wait to lead, run ``on_started_leading()`` as a task while leading, then step down.

        Returns "lost" when leadership was lost (the work was cancelled) and "finished" when the work
        ended on its own (the Lease is then released); an exception of the work is re-raised after
        stepping down. ``on_stopped_leading`` is called whenever leadership ends, however it ends.
        """
        await self._acquire()
        work = asyncio.create_task(on_started_leading(), name=f"leading as {self.identity}")
        renewer = asyncio.create_task(self._keep_renewing(), name="lease renewal")
        lost, cancelled = False, False
        try:
            await asyncio.wait({work, renewer}, return_when=asyncio.FIRST_COMPLETED)
            lost = renewer.done()
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            if self.fence is not None:
                self.fence.close()  # before anything else: the work may still be finishing a write
            await self._stop(work, renewer)
            self.leading = False
            if not lost and (self.release_on_cancel or not cancelled):
                await self._release()
            log.info("stopped leading (%s)", "lease lost" if lost else "stopping")
            if on_stopped_leading is not None:
                on_stopped_leading()
        if lost:
            failure = renewer.exception()
            if failure is not None:
                raise failure
            return "lost"
        exc = None if work.cancelled() else work.exception()
        if exc is not None:
            raise exc
        return "finished"

    async def _stop(self, *tasks: asyncio.Task[None]) -> None:
        """Cancel ``tasks`` and wait for them; their outcome is read afterwards, not raised here."""
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)

    async def _acquire(self) -> None:
        while True:
            if await self._try(leading=False):
                break
            await asyncio.sleep(self.settings.retry_period * (1 + (JITTER_FACTOR - 1) * random.random()))
        self.leading = True
        log.info("started leading as %s (lease %s/%s)", self.identity, self.settings.namespace,
                 self.settings.name)  # fmt: skip

    async def _keep_renewing(self) -> None:
        """Renew every retry period; return once a renewal has failed for the renew deadline or lost."""
        loop = asyncio.get_running_loop()
        last_success = loop.time()
        while True:
            await asyncio.sleep(self.settings.retry_period)
            try:
                async with asyncio.timeout_at(last_success + self.settings.renew_deadline):
                    while True:
                        if await self._try(leading=True):
                            break
                        await asyncio.sleep(self.settings.retry_period)
            except TimeoutError:
                log.warning("no lease renewal for %ss; stepping down", self.settings.renew_deadline)
                return
            except _LeadershipLost:
                log.warning("the lease is held by %s; stepping down", self.observed_holder)
                return
            last_success = loop.time()

    async def _try(self, *, leading: bool) -> bool:
        """One tryAcquireOrRenew; True when we hold the lease afterwards."""
        read_at = time.monotonic()  # the renewTime we write is no earlier than this
        try:
            current = await self.store.get()
            decision = decide(
                parse_lease(current), identity=self.identity, now=self.clock(),
                lease_duration=self.settings.lease_duration, leading=leading,
            )  # fmt: skip
            if decision.action == "step_down":
                self.observed_holder = decision.record.holder
                raise _LeadershipLost(decision.record.holder)
            if decision.action == "wait":
                if decision.record.holder != self.observed_holder:
                    log.info("lease held by %s; standing by", decision.record.holder)
                self.observed_holder = decision.record.holder
                return False
            if current is None:
                await self.store.create(decision.record)
            else:
                await self.store.replace(current, decision.record)
        except KubeError as exc:
            log.log(logging.DEBUG if exc.status == 409 else logging.WARNING,
                    "lease %s/%s not %s: %s", self.settings.namespace, self.settings.name,
                    "renewed" if leading else "acquired", exc)  # fmt: skip
            return False
        self.observed_holder = self.identity
        if self.fence is not None:
            self.fence.grant(read_at=read_at, lease_duration=self.settings.lease_duration)
        return True

    async def _release(self) -> None:
        """Clear the holder if it is still us, so that a standby need not wait for the lease to expire."""
        try:
            async with asyncio.timeout(self.settings.renew_deadline):
                current = await self.store.get()
                record = parse_lease(current)
                if current is None or record is None or record.holder != self.identity:
                    return
                await self.store.replace(current, released(record, now=self.clock()))
        except (KubeError, TimeoutError) as exc:
            log.warning("could not release the lease (it will expire): %s", exc)
            return
        log.info("released the lease %s/%s", self.settings.namespace, self.settings.name)
