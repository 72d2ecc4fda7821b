"""The auditor's collaborators in one frozen bundle, made once where the process is put together.

``AuditorClients`` holds every client and setting the reconcile pass, the heal and the loop use: the API
client, the cluster adapter, the Application store, the Event recorder, the tracer, the metric
instruments, the notifier, the settings and the clocks. The composition root (``auditor.process``, or a
test, or a one-shot CLI command) builds it with ``AuditorClients.build`` and hands the same bundle to each
part at construction, so no part reaches through another for its clients. Frozen: a part cannot swap a
collaborator out from under the others.

It must not start anything, open connections of its own or read settings: it only wires up what it is given.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes_asyncio import client
from opentelemetry import trace

from auditor.kube.applications import ApplicationStore
from auditor.kube.cluster import Cluster
from auditor.kube.events import EventRecorder
from auditor.leadership.fence import Fence
from auditor.notify import Notifier
from auditor.settings import AuditorSettings
from driftwarden.telemetry.metrics import Instruments

TRACER_NAME = "driftwarden.auditor"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class AuditorClients:
    """What every part of the auditor talks to; shared, never copied per part."""

    api: client.ApiClient
    """For watches, repository credentials and the Lease; everything else goes through the adapters."""
    cluster: Cluster
    store: ApplicationStore
    events: EventRecorder
    settings: AuditorSettings
    tracer: trace.Tracer
    instruments: Instruments
    notifier: Notifier | None = None
    fence: Fence | None = None
    """Open while this replica holds the leader Lease (None: no election, always open)."""
    clock: Callable[[], dt.datetime] = utcnow
    """Wall time, for status timestamps and drift records."""
    monotonic: Callable[[], float] = time.monotonic
    """For heal latencies and backoff."""

    @classmethod
    def build(
        cls,
        api: client.ApiClient,
        *,
        settings: AuditorSettings,
        tracer: trace.Tracer | None = None,
        instruments: Instruments | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        fence: Fence | None = None,
    ) -> AuditorClients:
        """The adapters over ``api``; no tracer or instruments means the global tracer and no metrics.

        With ``fence`` (leader election on), every write of the adapters needs the Lease held.
        """
        return cls(
            api=api,
            cluster=Cluster(api, fence=fence),
            store=ApplicationStore(api, fence=fence),
            events=EventRecorder(api, fence=fence),
            settings=settings,
            tracer=tracer or trace.get_tracer(TRACER_NAME),
            instruments=instruments or Instruments.noop(),
            notifier=notifier,
            fence=fence,
            clock=clock,
        )
