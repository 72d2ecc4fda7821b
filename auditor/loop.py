"""``driftwarden auditor run``: keep every Application reconciled (orchestration).

A watch on Applications starts one worker per Application, each running passes of the ``Reconciler``.
With a ``Healer`` (built over the same clients and ledger), the healer runs beside the workers: each pass
writes what Git wants into the ledger, and the healer watches those objects and heals them one at a time
as their watch events arrive (auditor.heal). The loop only runs the two; it does not pass anything
between them. A worker runs a pass at once, then whenever
the Application's spec changes (its ``metadata.generation``; our own status writes do not count) and
on the Git poll interval. A temporary failure (API server or Git unreachable) is retried with backoff
(2 s, times 3, up to 5 min, like Argo CD's self-heal); a permanent one waits for the next change or poll.
A sync that left objects failed is tried again per the Application's ``syncPolicy.retry`` (limit,
backoff duration, factor, maxDuration), as Argo CD retries a failed sync operation; without it, at the
next change or poll.
When an Application is being deleted its worker stops, the ledger forgets it (so nothing of it is healed),
and auditor.finalize deletes its objects (the resources finalizer) or, once it is gone without one,
releases them. Every task is guarded: one Application's failure never stops the others, and all are
cancelled on exit.
It must not build its own clients or pass anything between the Reconciler and the Healer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from auditor import finalize
from auditor.clients import AuditorClients
from auditor.heal.healer import Healer
from auditor.objects import AppKey
from auditor.reconcile import PassResult, Reconciler
from driftwarden import contract
from driftwarden.cancellation import stop_if_cancelled
from driftwarden.errors import TemporaryError
from driftwarden.kube.rest import resource_path
from driftwarden.kube.watch import Informer

log = logging.getLogger(__name__)
_TEMPORARY = -1.0
"""What ``_pass`` returns for a temporary failure: retried with the auditor's own backoff."""


def applications_path(namespace: str | None) -> str:
    return resource_path(
        group=contract.GROUP,
        version=contract.VERSION,
        plural=contract.APPLICATION_PLURAL,
        namespace=namespace,
    )


@dataclass
class _Worker:
    key: AppKey
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    generation: int = -1
    task: asyncio.Task[None] | None = None
    passes: int = 0
    sync_retries: int = 0
    """Retries of a failed sync so far (``syncPolicy.retry``); 0 after a sync that did not fail."""


class AuditorLoop:
    """Reconciles the Applications of ``namespace`` (all namespaces when None) until cancelled."""

    def __init__(
        self,
        clients: AuditorClients,
        reconciler: Reconciler,
        *,
        healer: Healer | None = None,
        namespace: str | None = None,
    ) -> None:
        self.clients = clients
        self.reconciler = reconciler
        self.healer = healer
        self.settings = clients.settings
        self.informer = Informer(clients.api, applications_path(namespace))
        self.workers: dict[AppKey, _Worker] = {}
        self.cleanups: dict[AppKey, asyncio.Task[None]] = {}
        """Deletions and releases of the objects of deleted Applications, one task per Application."""

    async def run(self) -> None:
        """Until cancelled, or until the Application watch or the healer fails (then both stop)."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.informer.run(self._on_application), name="applications")
                if self.healer is not None:
                    group.create_task(self.healer.run(), name="heal")
        finally:
            await self.stop_workers()

    async def stop_workers(self) -> None:
        tasks = [w.task for w in self.workers.values() if w.task is not None] + list(self.cleanups.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.workers.clear()
        self.cleanups.clear()

    def refresh(self, key: AppKey) -> bool:
        """Reconcile ``key`` now (a Git push webhook, a CLI request); False when it is not known."""
        worker = self.workers.get(key)
        if worker is None:
            return False
        worker.wake.set()
        return True

    async def _on_application(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = AppKey(str(meta.get("namespace", "")), str(meta.get("name", "")))
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            self._retire(key)
            if kind == "DELETED":  # gone: release what is left (nothing, after the finalizer ran)
                self._clean(key, lambda: finalize.orphan(self.clients, obj), f"releasing objects of {key}")
            elif finalize.finalizer_of(obj):
                self._clean(key, lambda: finalize.finalize(self.clients, obj), f"deleting objects of {key}")
            return
        worker = self.workers.get(key)
        if worker is None:
            worker = self.workers[key] = _Worker(key)
            worker.task = asyncio.create_task(self._work(worker), name=f"reconcile {key}")
        generation = int(meta.get("generation") or 0)
        if generation != worker.generation:
            worker.generation = generation
            worker.wake.set()

    def _retire(self, key: AppKey) -> None:
        """Stop reconciling ``key`` and make the ledger forget it: the heal must not recreate its objects."""
        worker = self.workers.pop(key, None)
        if worker is not None and worker.task is not None:
            worker.task.cancel()
        self.reconciler.ledger.forget(key)

    def _clean(self, key: AppKey, work: Callable[[], Awaitable[Any]], what: str) -> None:
        running = self.cleanups.get(key)
        if running is not None and not running.done():
            return  # one at a time; the running one finishes what it started
        self.cleanups[key] = asyncio.create_task(finalize.guarded(work, what), name=what)

    async def _wait(self, worker: _Worker, seconds: float) -> None:
        # asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancellation (driftwarden.cancellation).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await worker.wake.wait()
        worker.wake.clear()

    async def _work(self, worker: _Worker) -> None:
        delay = self.settings.retry_initial
        while True:
            # The pass reads the Application afresh, so whatever woke the worker (its creation, too) is
            # seen by it; a wake left set would run a second, identical pass right after (issue 16).
            worker.wake.clear()
            after = await self._pass(worker)
            stop_if_cancelled()  # a cancellation a library swallowed during the pass still stops the worker
            if after == _TEMPORARY:
                await self._wait(worker, delay)
                delay = min(delay * 3, self.settings.retry_max)
            else:
                delay = self.settings.retry_initial
                await self._wait(worker, self.settings.poll_interval if after is None else after)
            stop_if_cancelled()

    async def _pass(self, worker: _Worker) -> float | None:
        """One guarded pass: ``_TEMPORARY`` when it failed in a way that trying again soon may fix,
        seconds until a failed sync is retried (``syncPolicy.retry``), else None (wait for the poll)."""
        try:
            obj = await self.clients.store.get_application(worker.key)
            if obj is None:
                return False
            result = await self.reconciler.run(obj)
        except asyncio.CancelledError:
            raise
        except TemporaryError as exc:
            log.warning("reconcile of %s failed, will retry: %s", worker.key, exc)
            return _TEMPORARY
        except Exception:
            log.exception("reconcile of %s failed", worker.key)
            return _TEMPORARY
        worker.passes += 1
        if isinstance(result.error, TemporaryError):
            return _TEMPORARY
        return self._sync_retry(worker, result)

    @staticmethod
    def _sync_retry(worker: _Worker, result: PassResult) -> float | None:
        retry = result.comparison.app.sync_policy.retry if result.comparison is not None else None
        if result.outcome is None or not result.outcome.failed or retry is None:
            worker.sync_retries = 0
            return None
        delay = retry.delay(worker.sync_retries)
        if delay is None:
            log.warning("sync of %s failed; no retries left (limit %d)", worker.key, retry.limit)
            worker.sync_retries = 0
            return None
        worker.sync_retries += 1
        log.info("sync of %s failed; retry %d in %.1fs", worker.key, worker.sync_retries, delay)
        return delay
