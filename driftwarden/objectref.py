"""One identity for Kubernetes objects, shared by the webhook and the auditor.

``ResourceKey`` (group, kind, namespace, name) is what tracking ids, prune decisions and admission checks
compare; ``ObjectRef`` adds the version, for requests. Pure: plain data in, frozen values out; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from driftwarden.errors import PermanentError

__all__ = ["ObjectRef", "ResourceKey"]


class ResourceKey(NamedTuple):
    """An object's identity without its version: what tracking ids and prune decisions compare."""

    group: str
    kind: str
    namespace: str
    name: str


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Which object a manifest is; ``group`` is "" for the core group, ``namespace`` "" if cluster-scoped."""

    group: str
    version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> ObjectRef:
        """The reference of ``manifest``; PermanentError when apiVersion, kind or metadata.name is missing."""
        api_version = manifest.get("apiVersion")
        kind = manifest.get("kind")
        meta = manifest.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        if not isinstance(api_version, str) or not api_version:
            raise PermanentError(f"manifest has no apiVersion (kind {kind!r}, name {name!r})")
        if not isinstance(kind, str) or not kind:
            raise PermanentError(f"manifest {api_version} has no kind (name {name!r})")
        if not isinstance(name, str) or not name:
            raise PermanentError(f"{api_version} {kind} has no metadata.name")
        group, _, version = api_version.rpartition("/")
        namespace = meta.get("namespace") if isinstance(meta, Mapping) else None
        return cls(group, version, kind, namespace if isinstance(namespace, str) else "", name)

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.group, self.kind, self.namespace, self.name)

    @property
    def group_kind(self) -> str:
        """``apps/Deployment``, or just ``ConfigMap`` for the core group (the metrics' ``kind`` label)."""
        return f"{self.group}/{self.kind}" if self.group else self.kind

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        group_kind = f"{self.kind}.{self.group}" if self.group else self.kind
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{group_kind} {where}"
