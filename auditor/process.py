"""The auditor's composition root: one ``driftwarden auditor run`` process, put together and run.

From frozen settings (``ProcessSettings``, built by the CLI from flags) to a running process: tracing and
metering providers, the API client, the notifier, the plain-HTTP ``/metrics`` server, one
``AuditorClients`` bundle, and ``serve``: the ``AuditorLoop`` (a fresh ``Ledger`` shared by a new
``Reconciler`` and ``Healer`` each term) — always, or only while this replica holds the Lease — next to
the Git push webhook, until SIGINT or SIGTERM. A replica that loses the Lease cancels its loop and stands
for election again; with election on, every write goes through a ``Fence`` the elector keeps open only
while the Lease is ours by the local clock (auditor.leadership.fence), so a replica frozen past its lease
writes nothing when it wakes. Everything started here is stopped here, in reverse order.

It must not parse flags, read the environment (the CLI passes an environment snapshot for the telemetry
exporters' OTEL_* settings) or print: the exit code is its answer, the log its account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from kubernetes_asyncio import client
from opentelemetry import trace

from auditor.clients import TRACER_NAME, AuditorClients
from auditor.heal.healer import Healer
from auditor.leadership.elector import LeaderElector
from auditor.leadership.fence import Fence
from auditor.leadership.lease import ElectionSettings
from auditor.ledger import Ledger
from auditor.loop import AuditorLoop
from auditor.notify import Notifier, NotifierSettings
from auditor.push.server import PushServer, PushServerSettings, make_push_app
from auditor.reconcile import Reconciler
from auditor.settings import AuditorSettings
from driftwarden import eventloop
from driftwarden.kube.client import api_client
from driftwarden.settings import EVENT_LOOPS, KubeAccess
from driftwarden.signals import stop_on_signals
from driftwarden.telemetry.metrics import Instruments, metrics_server
from driftwarden.telemetry.setup import Metering, meter_provider, tracer_provider

log = logging.getLogger("driftwarden.auditor")

SERVICE_NAME = "driftwarden-auditor"


@dataclass(frozen=True)
class ServeOptions:
    """What runs besides the loop: leader election, the push webhook, notifications (None: off)."""

    namespace: str | None
    """Only Applications in this namespace; None for all namespaces."""
    election: ElectionSettings | None = None
    push: PushServerSettings | None = None
    notify: NotifierSettings | None = None


@dataclass(frozen=True)
class ProcessSettings:
    """Everything ``run`` needs, checked before anything starts."""

    auditor: AuditorSettings
    serve: ServeOptions
    kube: KubeAccess
    """The credentials, resolved by ``driftwarden.settings.kube_access`` (kubectl's order)."""
    metrics_port: int = 8081
    """The plain-HTTP ``/metrics`` server's port; 0 for none."""
    console_traces: bool = False


def run(settings: ProcessSettings, env: Mapping[str, str], *, event_loop: str = EVENT_LOOPS[0]) -> int:
    """The whole process, blocking until SIGINT or SIGTERM: 0 when asked to stop, 1 when it failed.

    ``event_loop`` names the loop the CLI chose (driftwarden.eventloop: uvloop or asyncio's).
    """
    tracing = tracer_provider(SERVICE_NAME, env=env, console=settings.console_traces)
    metering = meter_provider(SERVICE_NAME, env=env)
    try:
        main = _until_signalled(settings, tracing.get_tracer(TRACER_NAME), metering)
        return eventloop.run(main, loop=event_loop)
    finally:
        metering.shutdown()  # flushes what the last moments measured and traced
        tracing.shutdown()


async def _until_signalled(settings: ProcessSettings, tracer: trace.Tracer, metering: Metering) -> int:
    with stop_on_signals() as stop:
        return await main(settings, tracer=tracer, metering=metering, stop=stop)


async def main(
    settings: ProcessSettings, *, tracer: trace.Tracer, metering: Metering, stop: asyncio.Event
) -> int:
    """Connect, start the notifier and ``/metrics``, and ``serve`` until ``stop`` is set."""
    options = settings.serve
    async with (
        await api_client(settings.kube, tracer=tracer) as api,
        # The Lease's own client (its own connection pool): a pass's hundreds of requests queue in the
        # other one, and a renewal waiting behind them would lose the Lease under load.
        await api_client(settings.kube, tracer=tracer) as lease_api,
        notifications(options.notify) as notifier,
        metrics_server(metering.scrape, port=settings.metrics_port) as metrics,
    ):
        instruments = Instruments.from_meter(metering.provider.get_meter(TRACER_NAME))
        clients = AuditorClients.build(
            api, settings=settings.auditor, tracer=tracer, instruments=instruments, notifier=notifier,
            fence=Fence() if options.election is not None else None,
        )  # fmt: skip
        if metrics is not None:
            log.info("serving Prometheus metrics on %s/metrics", metrics.url)
        log.info(
            "auditor starting (namespace %s, poll every %ss, leader election %s, push webhook %s, "
            "notifications %s)", options.namespace or "*", settings.auditor.poll_interval,
            "on" if options.election else "off", "on" if options.push else "off", "on" if notifier else "off",
        )  # fmt: skip
        code = await serve(clients, options, stop=stop, lease_api=lease_api)
        log.info("auditor stopped")
    return code


@contextlib.asynccontextmanager
async def notifications(settings: NotifierSettings | None) -> AsyncIterator[Notifier | None]:
    """A running ``Notifier`` (None when notifications are off), flushed and stopped on exit."""
    if settings is None:
        yield None
        return
    async with Notifier(settings) as notifier:
        yield notifier


def auditor_loop(clients: AuditorClients, *, namespace: str | None) -> AuditorLoop:
    """One term of the auditor: a fresh ledger shared by a new Reconciler and Healer, run by one loop."""
    ledger = Ledger()
    reconciler, healer = Reconciler(clients, ledger), Healer(clients, ledger)
    return AuditorLoop(clients, reconciler, healer=healer, namespace=namespace)


class _Current:
    """The loop this replica runs right now (None while standing by): what the push webhook refreshes."""

    loop: AuditorLoop | None = None


async def _reconcile(clients: AuditorClients, options: ServeOptions, current: _Current) -> None:
    current.loop = auditor_loop(clients, namespace=options.namespace)
    try:
        await current.loop.run()
    finally:
        current.loop = None


async def _campaign(
    clients: AuditorClients, options: ServeOptions, current: _Current, lease_api: client.ApiClient
) -> None:
    if options.election is None:
        await _reconcile(clients, options, current)
        return
    elector = LeaderElector(lease_api, options.election, fence=clients.fence)
    log.info("standing for election as %s (lease %s/%s)", elector.identity, options.election.namespace,
             options.election.name)  # fmt: skip
    while await elector.run(lambda: _reconcile(clients, options, current)) == "lost":
        log.warning("lost leadership; standing for election again")


async def serve(
    clients: AuditorClients,
    options: ServeOptions,
    *,
    stop: asyncio.Event,
    lease_api: client.ApiClient | None = None,
) -> int:
    """Run until ``stop`` is set (0) or the auditor fails (1); everything started is stopped on return.

    ``lease_api`` is the client leader election uses (``clients.api`` when None)."""
    current = _Current()
    async with contextlib.AsyncExitStack() as stack:
        if options.push is not None:
            app = make_push_app(
                secret=options.push.secret,
                applications=lambda: clients.store.list_applications(options.namespace),
                refresher=lambda: current.loop,
                max_body=options.push.max_body,
            )
            await stack.enter_async_context(PushServer(app, options.push))
        work = asyncio.create_task(
            _campaign(clients, options, current, lease_api or clients.api), name="auditor"
        )
        stopper = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (work, stopper):
            task.cancel()
        await asyncio.wait({work, stopper})
        if not work.cancelled() and work.exception() is not None:
            log.error("the auditor failed", exc_info=work.exception())
            return 1
    return 0
