"""The auditor's Kubernetes adapter for the objects it syncs: SSA (dry-run and real), get, list, delete.

Thin I/O over ``driftwarden.kube.rest`` with a ``RestMapper`` for plurals and scopes. At most
``MAX_IN_FLIGHT`` requests are open at once; every request has a timeout; failures raise
``driftwarden.errors`` (``KubeUnavailableError`` when trying again may help, ``KubeError`` with the API
server's message otherwise). It must not decide anything (what to apply, prune or heal is the pure
core's job, ``auditor.sync.changeset``) and must not log object contents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from kubernetes_asyncio import client

from auditor.kube.discovery import DEFAULT_REQUEST_TIMEOUT, RestMapper
from auditor.kube.restmap import ApiResource
from auditor.leadership.fence import Fence, check_write
from auditor.objects import AppKey, GroupKind, Manifest, is_owned_by
from driftwarden.contract import FIELD_MANAGER, LABEL_APP
from driftwarden.errors import KubeError, KubeUnavailableError, PermanentError
from driftwarden.kube.rest import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, request_json, resource_path
from driftwarden.objectref import ObjectRef

Propagation = Literal["Foreground", "Background", "Orphan"]
CRD_GROUP = "apiextensions.k8s.io"
_POLL_INTERVAL = 0.1
MAX_IN_FLIGHT = 32
"""Requests one Cluster has open at once. A pass over 10,000 objects would otherwise queue them all in the
HTTP client: each waits for a pooled connection inside its own timeout (a slow API server then fails
requests that never left), holds its answer until the whole pass is done, and the pool opens up to 100
TLS connections (with 256 KiB of read buffer each). 32 keep a local API server busy."""


class NamespaceNotFoundError(KubeError):
    """A namespaced object names a namespace that does not exist (create it first, or CreateNamespace)."""

    def __init__(self, ref: ObjectRef, cause: KubeError) -> None:
        super().__init__(
            f"cannot apply {ref}: namespace {ref.namespace!r} does not exist; create it first "
            f"(CreateNamespace=true creates an Application's destination namespace only) — "
            f"API server said: {cause}",
            status=404,
            reason="NamespaceNotFound",
        )
        self.namespace = ref.namespace


class InvalidManifestError(KubeError, PermanentError):
    """The API server cannot make a typed object of the manifest (a field its schema does not declare).

    Server-side apply answers that with a 500 ("failed to create typed patch object"), which is no outage:
    the same manifest fails the same way every time, so it is permanent, not retried as a 5xx would be.
    """


TYPED_PATCH_FAILED = "failed to create typed patch object"


def _condition(crd: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for condition in (crd.get("status") or {}).get("conditions") or ():
        if condition.get("type") == type_:
            return dict(condition)
    return None


def _unnamed_ref(manifest: Manifest) -> ObjectRef:
    meta = manifest.get("metadata") or {}
    filled = {**manifest, "metadata": {**meta, "name": meta.get("name") or meta.get("generateName") or "?"}}
    return ObjectRef.from_manifest(filled)


class Cluster:
    """Objects in the cluster, as the identity of ``api`` (the auditor's service account in production)."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        mapper: RestMapper | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        fence: Fence | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._api = api
        self._timeout = request_timeout
        self._slots = asyncio.Semaphore(max_in_flight)
        self._fence = fence
        """Checked before every write (not dry runs): a replica that lost the Lease writes nothing."""
        self.mapper = mapper or RestMapper(api, request_timeout=request_timeout)

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        check_write(self._fence, method, path, kwargs.get("query"))
        async with self._slots:  # the request's timeout starts once it has a slot, not in the queue
            return await request_json(self._api, method, path, request_timeout=self._timeout, **kwargs)

    def _path(self, resource: ApiResource, *, namespace: str = "", name: str | None = None) -> str:
        return resource_path(
            group=resource.group,
            version=resource.version,
            plural=resource.plural,
            namespace=namespace if resource.namespaced else None,
            name=name,
        )

    async def _located(
        self, manifest: Manifest, *, named: bool = True
    ) -> tuple[ObjectRef, ApiResource, dict[str, Any]]:
        """The manifest's ref, resource and a body fit to send (no namespace on cluster-scoped objects).

        ``named=False``: the manifest may have a ``generateName`` instead of a name (a create).
        """
        ref = ObjectRef.from_manifest(manifest) if named else _unnamed_ref(manifest)
        resource = await self.mapper.resource_of(ref)
        # Only metadata is changed here (and by ``replace``); the rest is shared, as nothing changes it.
        body = {**manifest, "metadata": dict(manifest.get("metadata") or {})}
        if not resource.namespaced:
            body["metadata"].pop("namespace", None)
            ref = ObjectRef(ref.group, ref.version, ref.kind, "", ref.name)
        elif not ref.namespace:
            raise PermanentError(f"{ref} is namespaced but names no namespace (and none was filled in)")
        return ref, resource, body

    async def _apply(
        self, manifest: Manifest, *, field_manager: str, force: bool, dry_run: bool
    ) -> dict[str, Any]:
        ref, resource, body = await self._located(manifest)
        query: dict[str, str | bool] = {"fieldManager": field_manager, "force": force}
        if dry_run:
            query["dryRun"] = "All"
        path = self._path(resource, namespace=ref.namespace, name=ref.name)
        try:
            return await self._request("PATCH", path, query=query, body=body, content_type=APPLY_PATCH)
        except KubeError as exc:
            missing = f'namespaces "{ref.namespace}" not found'
            if exc.status == 404 and resource.namespaced and missing in str(exc):
                raise NamespaceNotFoundError(ref, exc) from exc
            if exc.status == 500 and TYPED_PATCH_FAILED in str(exc):
                raise InvalidManifestError(str(exc), status=exc.status, reason="Invalid") from exc
            raise

    async def dry_run_apply(
        self, manifest: Manifest, *, field_manager: str = FIELD_MANAGER, force: bool = True
    ) -> dict[str, Any]:
        """What server-side apply of ``manifest`` would store (defaults, webhooks' mutations); writes nothing.

        Raises ``NamespaceNotFoundError`` when its namespace does not exist, ``PermanentError`` when a
        namespaced manifest has no namespace, ``UnknownKindError`` when its kind is not served.
        """
        return await self._apply(manifest, field_manager=field_manager, force=force, dry_run=True)

    async def apply(
        self, manifest: Manifest, *, field_manager: str = FIELD_MANAGER, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply ``manifest`` as ``field_manager`` and return the stored object.

        ``force`` takes over fields another manager owns (the auditor heals them); without it a
        conflict raises ``KubeError`` with status 409 naming the other manager.
        """
        return await self._apply(manifest, field_manager=field_manager, force=force, dry_run=False)

    async def create(self, manifest: Manifest) -> dict[str, Any]:
        """Create ``manifest`` (POST; a ``generateName`` is named by the API server) and return it stored."""
        ref, resource, body = await self._located(manifest, named=False)
        return await self._request("POST", self._path(resource, namespace=ref.namespace), body=body)

    async def replace(self, manifest: Manifest, *, resource_version: str) -> dict[str, Any]:
        """Replace the object with ``manifest`` (PUT, as ``kubectl replace``), guarded by
        ``resource_version``: fields the manifest lacks are removed, whoever wrote them."""
        ref, resource, body = await self._located(manifest)
        body["metadata"]["resourceVersion"] = resource_version
        path = self._path(resource, namespace=ref.namespace, name=ref.name)
        return await self._request("PUT", path, query={"fieldManager": FIELD_MANAGER}, body=body)

    async def list_selected(self, group: str, kind: str, *, selector: str) -> list[dict[str, Any]]:
        """Objects of one kind (all namespaces) matching the label ``selector``."""
        resource = await self.mapper.resource_for(group, kind)
        listing = await self._request("GET", self._path(resource), query={"labelSelector": selector})
        items = listing.get("items") or ()
        return [{**item, "apiVersion": resource.api_version, "kind": kind} for item in items]

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        """The live object ``ref`` names (in ``ref.version``), or None when it does not exist.

        ``UnknownKindError`` when the API server does not serve that group/version/kind at all.
        """
        resource = await self.mapper.resource_of(ref)
        try:
            return await self._request("GET", self._path(resource, namespace=ref.namespace, name=ref.name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def list_managed(self, app: AppKey, *, kinds: Iterable[GroupKind]) -> list[dict[str, Any]]:
        """Objects of ``kinds`` (``(group, Kind)``, all namespaces) that ``app`` owns.

        Selects on the ``driftwarden.io/app`` label, then keeps only objects whose tracking-id names
        ``app`` and the object itself (``auditor.objects.is_owned_by``): a copied label is not ownership.
        Objects come in the group's preferred version, with ``apiVersion`` and ``kind`` filled in.
        """
        selector = f"{LABEL_APP}={app.name}"
        owned: list[dict[str, Any]] = []
        for group, kind in sorted(set(kinds)):
            resource = await self.mapper.resource_for(group, kind)
            listing = await self._request("GET", self._path(resource), query={"labelSelector": selector})
            for item in listing.get("items") or ():
                found = {**item, "apiVersion": resource.api_version, "kind": resource.kind}
                if is_owned_by(found, app=app):
                    owned.append(found)
        return owned

    async def collection_path(self, group: str, kind: str) -> str:
        """The all-namespaces path of a kind, for lists and watches."""
        return self._path(await self.mapper.resource_for(group, kind))

    async def json_patch(self, ref: ObjectRef, operations: list[dict[str, Any]]) -> dict[str, Any]:
        """Apply RFC 6902 ``operations`` to ``ref`` (not a server-side apply: no field is taken over)."""
        resource = await self.mapper.resource_of(ref)
        path = self._path(resource, namespace=ref.namespace, name=ref.name)
        return await self._request("PATCH", path, body=operations, content_type=JSON_PATCH)

    async def merge_patch(self, ref: ObjectRef, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply an RFC 7386 merge ``patch`` to ``ref`` (``None`` removes a key, and is idempotent)."""
        resource = await self.mapper.resource_of(ref)
        path = self._path(resource, namespace=ref.namespace, name=ref.name)
        return await self._request("PATCH", path, body=dict(patch), content_type=MERGE_PATCH)

    async def delete(
        self, ref: ObjectRef, *, propagation: Propagation = "Foreground", uid: str | None = None
    ) -> bool:
        """Delete ``ref``; False when it was already gone. ``uid`` guards against a re-created object.

        With ``Foreground`` the object stays (with a deletionTimestamp) until the garbage collector has
        removed its dependents; ``Background`` removes it at once and its dependents afterwards.
        """
        resource = await self.mapper.resource_of(ref)
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        path = self._path(resource, namespace=ref.namespace, name=ref.name)
        try:
            await self._request("DELETE", path, body=body)
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def wait_established(self, crd_name: str, *, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Return once CRD ``crd_name`` is Established and its storage serves lists; refreshes the mapper.

        Right after Established the API server may still answer 429 "storage is (re)initializing" to
        reads of the new kind; this waits that out too. ``KubeError`` when the API server refused the
        CRD's names (NamesAccepted=False); ``KubeUnavailableError`` when it is not ready within
        ``timeout`` seconds (it may not even exist yet).
        """
        path = resource_path(group=CRD_GROUP, version="v1", plural="customresourcedefinitions", name=crd_name)
        state = ["not found"]
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if await self._crd_ready(path, crd_name, state):
                        break
                    await asyncio.sleep(_POLL_INTERVAL)
        except TimeoutError as exc:
            message = f"CRD {crd_name} not Established after {timeout:g}s ({state[0]})"
            raise KubeUnavailableError(message) from exc
        await self.mapper.refresh()

    async def _crd_ready(self, path: str, crd_name: str, state: list[str]) -> bool:
        try:
            crd = await self._request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        names = _condition(crd, "NamesAccepted")
        if names is not None and names.get("status") == "False":
            raise KubeError(
                f"CRD {crd_name} names were not accepted: {names.get('message', '')}",
                reason=str(names.get("reason", "")),
            )
        established = _condition(crd, "Established")
        state[0] = f"Established is {established.get('status') if established else 'not reported yet'}"
        if established is None or established.get("status") != "True":
            return False
        spec = crd.get("spec") or {}
        served = [v["name"] for v in spec.get("versions") or () if v.get("served")]
        plural = (spec.get("names") or {}).get("plural")
        if not served or not plural:
            return True
        probe = resource_path(group=str(spec.get("group", "")), version=served[0], plural=str(plural))
        try:
            await self._request("GET", probe, query={"limit": 1})
        except KubeUnavailableError as exc:
            if exc.status == 429:
                state[0] = "Established, storage still initializing"
                return False
            raise
        except KubeError:
            pass  # e.g. not allowed to list it: Established is all we can know
        return True
