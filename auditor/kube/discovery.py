"""The auditor's REST mapper: reads API discovery (``/api``, ``/apis``) and caches the resource table.

Kubernetes adapter. ``resource_for`` answers which plural and scope serve a group/version/kind; a miss
refreshes the table (at most once per ``min_refresh_interval``, so a manifest naming a bogus kind cannot
make every lookup re-read discovery) and then raises ``UnknownKindError``. After applying a CRD, call
``refresh()`` (``Cluster.wait_established`` does) so its kinds are known at once. It must not decide
what an unknown kind means: orchestration treats it as temporary right after applying CRDs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client

from auditor.kube.restmap import (
    ApiResource,
    DiscoveredGroup,
    ResourceTable,
    build_table,
    parse_core_versions,
    parse_group_list,
)
from auditor.objects import WELL_KNOWN_CLUSTER_SCOPED
from driftwarden.errors import KubeError, KubeUnavailableError
from driftwarden.kube.rest import request_json
from driftwarden.objectref import ObjectRef

DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_MIN_REFRESH_INTERVAL = 5.0
_CONCURRENCY = 8


class UnknownKindError(KubeError):
    """No served resource has this group/version/kind (yet: a CRD may have just been applied)."""

    def __init__(self, group: str, version: str | None, kind: str) -> None:
        api_version = (f"{group}/{version}" if group else version) if version else (group or "core")
        super().__init__(
            f"the API server serves no kind {kind} in {api_version} (is its CRD installed and Established?)",
            status=404,
            reason="UnknownKind",
        )
        self.group, self.version, self.kind = group, version, kind


class RestMapper:
    """Group/version/kind → ``ApiResource``, from the API server's discovery, cached until refreshed."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        min_refresh_interval: float = DEFAULT_MIN_REFRESH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._timeout = request_timeout
        self._min_interval = min_refresh_interval
        self._clock = clock
        self._table: ResourceTable | None = None
        self._refreshed_at = float("-inf")
        self._generation = 0
        self._lock = asyncio.Lock()

    @property
    def table(self) -> ResourceTable | None:
        """The cached table, or None before the first refresh."""
        return self._table

    async def refresh(self) -> ResourceTable:
        """Read discovery again; concurrent callers share one refresh."""
        generation = self._generation
        async with self._lock:
            if self._table is not None and self._generation != generation:
                return self._table  # another caller refreshed while we waited for the lock
            table = await self._discover()
            self._table, self._refreshed_at = table, self._clock()
            self._generation += 1
            return table

    async def resource_for(self, group: str, kind: str, *, version: str | None = None) -> ApiResource:
        """The resource serving ``kind`` (in ``version``, or the preferred one); refreshes once on a miss.

        Raises ``UnknownKindError`` when discovery has no such kind, ``KubeUnavailableError`` when
        discovery of that group failed (an aggregated API that is down) or the server is unreachable.
        """
        table = self._table if self._table is not None else await self.refresh()
        found = table.find(group, kind, version=version)
        if found is None and self._clock() - self._refreshed_at >= self._min_interval:
            table = await self.refresh()
            found = table.find(group, kind, version=version)
        if found is not None:
            return found
        failure = table.failure_for(group, version)
        if failure is not None:
            raise KubeUnavailableError(f"discovery of {kind} in group {group or 'core'!r} failed: {failure}")
        raise UnknownKindError(group, version, kind)

    async def resource_of(self, ref: ObjectRef) -> ApiResource:
        """The resource serving the object ``ref`` names, in ``ref``'s own version."""
        return await self.resource_for(ref.group, ref.kind, version=ref.version)

    def is_cluster_scoped(self, group: str, kind: str) -> bool:
        """From the cached table (call ``refresh`` first); falls back to the well-known built-in kinds.

        Synchronous, so it can be passed to ``auditor.objects.fill_namespace`` as ``cluster_scoped``.
        """
        known = self._table.is_cluster_scoped(group, kind) if self._table is not None else None
        return known if known is not None else (group, kind) in WELL_KNOWN_CLUSTER_SCOPED

    async def _get(self, path: str) -> dict[str, Any]:
        return await request_json(self._api, "GET", path, request_timeout=self._timeout)

    async def _discover(self) -> ResourceTable:
        core_doc, groups_doc = await asyncio.gather(self._get("/api"), self._get("/apis"))
        try:
            groups = [parse_core_versions(core_doc), *parse_group_list(groups_doc)]
        except (ValueError, AttributeError, TypeError) as exc:
            raise KubeError(f"API discovery answered with an unexpected document: {exc}") from exc
        lists: dict[str, dict[str, Any]] = {}
        failed: dict[str, str] = {}
        limit = asyncio.Semaphore(_CONCURRENCY)

        async def fetch(group: DiscoveredGroup, version: str) -> None:
            group_version = f"{group.name}/{version}" if group.name else version
            path = f"/apis/{group_version}" if group.name else f"/api/{version}"
            async with limit:
                try:
                    lists[group_version] = await self._get(path)
                except KubeError as exc:
                    if exc.status is None:
                        raise  # the server itself is unreachable or timed out: no partial table
                    failed[group_version] = str(exc)  # e.g. an aggregated API answering 503

        await asyncio.gather(*(fetch(group, version) for group in groups for version in group.versions))
        return build_table(groups, lists, failed=failed)
