"""List-then-watch of any Kubernetes collection, resumed after a dropped connection, relisted after 410 Gone.

Thin adapter over the API server's watch protocol (``?watch=true``, one JSON event per line) using the
same authenticated ``ApiClient`` as every other call; lists come in pages (``limit``/``continue``), so a
large collection is never decoded all at once. It delivers events to a handler and knows nothing
about what they mean. Connection failures are retried with backoff, from the last resourceVersion seen,
so an edit made while disconnected is delivered once the API server is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from driftwarden.errors import KubeError, KubeUnavailableError
from driftwarden.kube.rest import request_json

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Called with ``ADDED``/``MODIFIED``/``DELETED`` (``ADDED`` also for every item of a relist)."""


class ResourceExpiredError(KubeError):
    """The resourceVersion we resumed from is too old (410 Gone): relist."""


def _item_kind(list_kind: str) -> str:
    return list_kind[: -len("List")] if list_kind.endswith("List") else list_kind


async def _stream(
    api: client.ApiClient, path: str, query: Mapping[str, str], *, read_timeout: float
) -> AsyncIterator[dict[str, Any]]:
    try:
        resp = await api.call_api(
            path, "GET", query_params=list(query.items()), header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"], _preload_content=False, _request_timeout=read_timeout,
        )  # fmt: skip
    except ApiException as exc:
        if exc.status == 410:
            raise ResourceExpiredError(f"watch {path}: resource version expired", status=410) from exc
        raise KubeUnavailableError(f"watch {path}: {exc.status} {exc.reason}", status=exc.status) from exc
    async with resp:
        async for line in resp.content:
            if line.strip():
                yield json.loads(line)


class Informer:
    """Lists ``path`` (with ``label_selector``), then watches it for as long as ``run`` is not cancelled."""

    def __init__(
        self,
        api: client.ApiClient,
        path: str,
        *,
        label_selector: str = "",
        watch_timeout: int = 300,
        retry_max: float = 5.0,
        page_size: int = 500,
    ) -> None:
        self.api, self.path = api, path
        self.label_selector = label_selector
        self.watch_timeout = watch_timeout
        self.retry_max = retry_max
        self.page_size = page_size
        """Objects per page of a list (client-go's reflector lists 500 at a time)."""
        self.resource_version = ""
        self.relists = 0

    def _query(self, **extra: str) -> dict[str, str]:
        query = {"labelSelector": self.label_selector} if self.label_selector else {}
        return {**query, **extra}

    async def _relist(self, handler: Handler) -> None:
        # In pages, as client-go's reflector lists: only one page of objects is decoded and alive at a
        # time while the handler runs, however many the collection holds. Every page comes from the first
        # one's snapshot, so the watch resumes from its resourceVersion; an expired continue token is a
        # 410 (ResourceExpiredError), and ``run`` lists again from the start.
        version, token = "", ""
        while True:
            query = self._query(limit=str(self.page_size), **({"continue": token} if token else {}))
            try:
                listed = await request_json(self.api, "GET", self.path, query=query, request_timeout=30)
            except KubeError as exc:
                if exc.status == 410:
                    expired = f"list {self.path}: continue token expired"
                    raise ResourceExpiredError(expired, status=410) from exc
                raise
            kind, api_version = _item_kind(str(listed.get("kind", ""))), str(listed.get("apiVersion", ""))
            meta = listed.get("metadata") or {}
            version = version or str(meta.get("resourceVersion", ""))
            token = str(meta.get("continue") or "")
            items = listed.pop("items", None) or []
            items.reverse()
            while items:  # each item is let go once handled
                item = items.pop()
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", api_version)
                await handler("ADDED", item)
            if not token:
                break
        self.resource_version = version
        self.relists += 1

    async def _watch(self, handler: Handler) -> None:
        query = self._query(
            watch="true", allowWatchBookmarks="true", resourceVersion=self.resource_version,
            timeoutSeconds=str(self.watch_timeout),
        )  # fmt: skip
        async for event in _stream(self.api, self.path, query, read_timeout=self.watch_timeout + 30):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise ResourceExpiredError(f"watch {self.path}: {obj.get('message')}", status=410)
                raise KubeUnavailableError(f"watch {self.path}: {obj.get('message')}", status=obj.get("code"))
            self.resource_version = str(
                (obj.get("metadata") or {}).get("resourceVersion", self.resource_version)
            )
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                await handler(str(kind), obj)

    async def run(self, handler: Handler) -> None:
        """Deliver events to ``handler`` until cancelled; never returns on its own."""
        delay = 0.1
        while True:
            try:
                if not self.resource_version:
                    await self._relist(handler)
                await self._watch(handler)
                delay = 0.1  # the server closed a healthy watch (timeoutSeconds): resume at once
            except ResourceExpiredError:
                # Etcd compacted past where we were (or a restarted API server's cache starts later).
                log.info("watch of %s: resource version %s expired (410 Gone); relisting", self.path,
                         self.resource_version)  # fmt: skip
                self.resource_version = ""
            except (KubeUnavailableError, aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                log.debug(
                    "watch of %s interrupted (%s); resuming from %s", self.path, exc, self.resource_version
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
