"""Kubernetes Events from the auditor (``events.k8s.io/v1``), with repeats counted as an event series.

Kubernetes adapter: ``kubectl describe`` and ``kubectl get events`` show what the auditor did to an
object or an Application. The same event again (same object, type, reason, action and message) bumps
``series.count`` on the first one instead of creating another, as client-go's recorder does.

Messages must never contain Secret values: callers pass field paths and object names only (the diff
core masks Secret data; messages are built from paths, never from values). This module cannot tell a
secret from any other text, so it trusts its callers on this; it must not log messages either.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from kubernetes_asyncio import client

from auditor.kube.discovery import DEFAULT_REQUEST_TIMEOUT
from auditor.leadership.fence import Fence, check_write
from driftwarden.bounded import shorten_bytes
from driftwarden.errors import KubeError
from driftwarden.kube.rest import MERGE_PATCH, request_json, resource_path
from driftwarden.objectref import ObjectRef

EventType = Literal["Normal", "Warning"]
COMPONENT = "driftwarden-auditor"
NOTE_LIMIT = 1024
"""The API server's limit for ``note``, in bytes."""
FIELD_LIMIT = 128
"""The API server's limit for reason, action and reportingInstance."""
_SERIES_MEMORY = 1024
_NOT_NAME = re.compile(r"[^a-z0-9.-]+")


def _micro_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def regarding_of(involved: ObjectRef | Mapping[str, Any]) -> dict[str, str]:
    """The event's ``regarding`` reference from an ObjectRef or a whole object (which adds uid)."""
    meta: Mapping[str, Any] = {}
    if isinstance(involved, ObjectRef):
        ref = involved
    else:
        ref = ObjectRef.from_manifest(involved)
        meta = involved.get("metadata") or {}
    out = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name}
    if ref.namespace:
        out["namespace"] = ref.namespace
    for key in ("uid", "resourceVersion"):
        if meta.get(key):
            out[key] = str(meta[key])
    return out


class EventRecorder:
    """Records Events as the identity of ``api``; ``instance`` names this replica (pod or host name)."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        instance: str | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fence: Fence | None = None,
    ) -> None:
        self._api = api
        self._fence = fence
        self._instance = shorten_bytes(instance or socket.gethostname(), FIELD_LIMIT)
        self._timeout = request_timeout
        self._clock = clock
        self._series: OrderedDict[tuple[str, ...], tuple[str, str, int]] = OrderedDict()
        self._lock = asyncio.Lock()

    async def record_event(
        self,
        involved: ObjectRef | Mapping[str, Any],
        *,
        reason: str,
        message: str,
        type: EventType = "Normal",
        action: str | None = None,
        component: str = COMPONENT,
    ) -> dict[str, Any]:
        """Record an event about ``involved`` and return the stored Event (its ``series`` on repeats).

        ``reason`` is a short CamelCase word (``Synced``, ``DriftHealed``); ``action`` what the auditor
        did (defaults to ``reason``); ``message`` is cut to 1 KiB. Never put Secret values in it. Events
        of cluster-scoped objects go to the ``default`` namespace, as kubectl expects.
        """
        if type not in ("Normal", "Warning"):
            raise ValueError(f"event type must be Normal or Warning, got {type!r}")
        regarding = regarding_of(involved)
        namespace = regarding.get("namespace", "default")
        note = shorten_bytes(message, NOTE_LIMIT)
        act = shorten_bytes(action or reason, FIELD_LIMIT)
        who = tuple(regarding.get(k, "") for k in ("apiVersion", "kind", "namespace", "name", "uid"))
        key = (*who, type, reason, act, note, component)
        async with self._lock:
            seen = self._series.get(key)
            if seen is not None:
                event = await self._bump(*seen)
                if event is not None:
                    self._series.move_to_end(key)
                    self._series[key] = (seen[0], seen[1], seen[2] + 1)
                    return event
            body = {
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": {"name": self._event_name(regarding["name"]), "namespace": namespace},
                "eventTime": _micro_time(self._clock()),
                "reportingController": component,
                "reportingInstance": self._instance,
                "action": act,
                "reason": shorten_bytes(reason, FIELD_LIMIT),
                "regarding": regarding,
                "note": note,
                "type": type,
            }
            path = resource_path(group="events.k8s.io", version="v1", plural="events", namespace=namespace)
            event = await self._request("POST", path, body=body)
            self._series[key] = (namespace, str(event["metadata"]["name"]), 1)
            while len(self._series) > _SERIES_MEMORY:
                self._series.popitem(last=False)
            return event

    async def _bump(self, namespace: str, name: str, count: int) -> dict[str, Any] | None:
        """Count one more occurrence on Event ``namespace/name``; None when it has expired meanwhile."""
        path = resource_path(
            group="events.k8s.io", version="v1", plural="events", namespace=namespace, name=name
        )
        series = {"count": count + 1, "lastObservedTime": _micro_time(self._clock())}
        try:
            return await self._request("PATCH", path, body={"series": series}, content_type=MERGE_PATCH)
        except KubeError as exc:
            if exc.status == 404:  # Events expire (an hour by default): start a new one
                return None
            raise

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        check_write(self._fence, method, path, kwargs.get("query"))
        return await request_json(self._api, method, path, request_timeout=self._timeout, **kwargs)

    def _event_name(self, object_name: str) -> str:
        base = _NOT_NAME.sub("-", object_name.lower()).strip(".-")[:200] or "object"
        return f"{base}.{time.time_ns():x}"
