"""Pure REST mapping: which API resource (plural, scope, verbs) serves a group, version and kind.

Built from the API server's discovery documents (``APIVersions`` of ``/api``, ``APIGroupList`` of
``/apis`` and one ``APIResourceList`` per group version) passed in as plain dicts; the discovery
adapter (``auditor.kube.discovery``) fetches them. This module must not do I/O, log, or read a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ApiResource:
    """One top-level resource of the API: ``deployments`` of ``apps/v1`` serves kind Deployment."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version


@dataclass(frozen=True)
class DiscoveredGroup:
    """One API group: the versions it serves, preferred first."""

    name: str
    versions: tuple[str, ...]

    @property
    def preferred(self) -> str:
        return self.versions[0]


def split_group_version(group_version: str) -> tuple[str, str]:
    """``"apps/v1"`` → ``("apps", "v1")``; ``"v1"`` (the core group) → ``("", "v1")``."""
    group, _, version = group_version.rpartition("/")
    return group, version


def parse_core_versions(doc: Mapping[str, Any]) -> DiscoveredGroup:
    """The core group from the ``APIVersions`` document of ``/api``."""
    versions = tuple(str(v) for v in doc.get("versions") or ())
    if not versions:
        raise ValueError("/api lists no versions")
    return DiscoveredGroup("", versions)


def parse_group_list(doc: Mapping[str, Any]) -> tuple[DiscoveredGroup, ...]:
    """The named groups of the ``APIGroupList`` document of ``/apis``, preferred version first."""
    groups = []
    for item in doc.get("groups") or ():
        name = str(item.get("name", ""))
        versions = [str(v.get("version", "")) for v in item.get("versions") or ()]
        preferred = str((item.get("preferredVersion") or {}).get("version", ""))
        ordered = ([preferred] if preferred in versions else []) + [v for v in versions if v != preferred]
        if name and ordered:
            groups.append(DiscoveredGroup(name, tuple(ordered)))
    return tuple(groups)


def parse_resource_list(doc: Mapping[str, Any]) -> tuple[ApiResource, ...]:
    """The top-level resources of an ``APIResourceList``; subresources (``pods/status``) are skipped."""
    group, version = split_group_version(str(doc.get("groupVersion", "")))
    found = []
    for item in doc.get("resources") or ():
        name, kind = str(item.get("name", "")), str(item.get("kind", ""))
        if not name or not kind or "/" in name:
            continue
        verbs = frozenset(str(v) for v in item.get("verbs") or ())
        found.append(ApiResource(group, version, kind, name, bool(item.get("namespaced")), verbs))
    return tuple(found)


@dataclass(frozen=True)
class ResourceTable:
    """Every resource the API server serves, and the group versions whose discovery failed."""

    groups: Mapping[str, DiscoveredGroup] = field(default_factory=dict)
    resources: Mapping[tuple[str, str, str], ApiResource] = field(default_factory=dict)
    """(group, version, kind) → resource; the first resource listed for a kind wins."""
    failed: Mapping[str, str] = field(default_factory=dict)
    """group version → why its ``APIResourceList`` could not be read."""

    def find(self, group: str, kind: str, *, version: str | None = None) -> ApiResource | None:
        """The resource for ``kind`` in ``version``, or in the group's preferred version when None.

        Without a version, the first served version that has the kind is used, preferred first, so a
        kind that exists only in a non-preferred version is still found.
        """
        if version is not None:
            return self.resources.get((group, version, kind))
        known = self.groups.get(group)
        for candidate in known.versions if known else ():
            found = self.resources.get((group, candidate, kind))
            if found is not None:
                return found
        return None

    def failure_for(self, group: str, version: str | None = None) -> str | None:
        """Why discovery of ``group`` (in ``version``, or any of its versions) failed, if it did."""
        known = self.groups.get(group)
        versions = [version] if version is not None else list(known.versions if known else ())
        for candidate in versions:
            reason = self.failed.get(f"{group}/{candidate}" if group else candidate)
            if reason is not None:
                return reason
        return None

    def is_cluster_scoped(self, group: str, kind: str) -> bool | None:
        """True for cluster-scoped kinds, False for namespaced ones, None when the kind is unknown."""
        found = self.find(group, kind)
        return None if found is None else not found.namespaced

    def group_versions(self) -> tuple[str, ...]:
        """Every served group version, core first, e.g. ``("v1", "apps/v1", ...)``."""
        out: list[str] = []
        for group in self.groups.values():
            out.extend(f"{group.name}/{v}" if group.name else v for v in group.versions)
        return tuple(out)


def build_table(
    groups: Iterable[DiscoveredGroup],
    resource_lists: Mapping[str, Mapping[str, Any]],
    *,
    failed: Mapping[str, str] | None = None,
) -> ResourceTable:
    """A table from the discovered groups and the ``APIResourceList`` of each group version."""
    by_name = {g.name: g for g in groups}
    resources: dict[tuple[str, str, str], ApiResource] = {}
    for doc in resource_lists.values():
        for resource in parse_resource_list(doc):
            resources.setdefault((resource.group, resource.version, resource.kind), resource)
    return ResourceTable(by_name, resources, dict(failed or {}))
