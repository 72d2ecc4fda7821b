"""The leader-election decision over a coordination.k8s.io/v1 Lease: client-go's algorithm, as pure code.

Given the Lease as read (or None), this replica's identity, whether it thinks it leads, and the time,
``decide`` says what to do: ``acquire`` (absent, released or expired lease), ``renew`` (we hold it),
``wait`` (another replica holds a live lease) or ``step_down`` (we thought we led, another holds it).
A lease is expired when ``renewTime + leaseDurationSeconds < now``. The record to write is returned too;
the caller writes it with the resourceVersion it read (optimistic concurrency). No I/O, no clock reads,
no logging here: the adapter and the orchestration live in ``auditor.leadership.elector``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from driftwarden.errors import ConfigError

LEASE_NAME = "driftwarden-auditor"
JITTER_FACTOR = 1.2
"""client-go's: a renew deadline must exceed the retry period times this."""

Action = Literal["acquire", "renew", "wait", "step_down"]


@dataclass(frozen=True)
class ElectionSettings:
    """Who we are, which Lease we contend for, and client-go's three durations (seconds)."""

    identity: str
    namespace: str
    name: str = LEASE_NAME
    lease_duration: int = 15
    """How long a holder's lease lasts after its last renewal; what a standby waits after a crash."""
    renew_deadline: float = 10.0
    """How long the leader keeps trying to renew before it steps down; must be below lease_duration."""
    retry_period: float = 2.0
    """Between renewals while leading, and between acquire attempts while standing by."""

    def __post_init__(self) -> None:
        if not self.identity:
            raise ConfigError("leader election needs a non-empty identity")
        if not self.namespace or not self.name:
            raise ConfigError("leader election needs the Lease's namespace and name")
        if self.retry_period <= 0:
            raise ConfigError(f"the retry period must be positive, not {self.retry_period}")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ConfigError(
                f"the renew deadline ({self.renew_deadline}s) must exceed {JITTER_FACTOR} x the retry "
                f"period ({self.retry_period}s)"
            )
        if self.lease_duration <= self.renew_deadline:
            raise ConfigError(
                f"the lease duration ({self.lease_duration}s) must exceed the renew deadline "
                f"({self.renew_deadline}s)"
            )


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec as the election sees it; an empty ``holder`` means released."""

    holder: str = ""
    lease_duration: int = 0
    acquire_time: dt.datetime | None = None
    renew_time: dt.datetime | None = None
    transitions: int = 0

    def expires_at(self) -> dt.datetime | None:
        if self.renew_time is None:
            return None
        return self.renew_time + dt.timedelta(seconds=self.lease_duration)

    def held_at(self, now: dt.datetime) -> bool:
        """True when someone holds the lease and it has not expired at ``now``."""
        expires = self.expires_at()
        return bool(self.holder) and expires is not None and not expires < now


@dataclass(frozen=True)
class Decision:
    action: Action
    record: LeaseRecord
    """What to write for ``acquire``/``renew``; the observed record for ``wait``/``step_down``."""


def micro_time(at: dt.datetime) -> str:
    """``at`` as a Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    if at.tzinfo is None:
        raise ValueError("lease times need a timezone-aware datetime")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_lease(obj: Mapping[str, Any] | None) -> LeaseRecord | None:
    """The record of a Lease object as read from the API; None when there is no Lease."""
    if obj is None:
        return None
    spec = obj.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    holder = spec.get("holderIdentity")
    return LeaseRecord(
        holder=holder if isinstance(holder, str) else "",
        lease_duration=_int(spec.get("leaseDurationSeconds")),
        acquire_time=parse_micro_time(spec.get("acquireTime")),
        renew_time=parse_micro_time(spec.get("renewTime")),
        transitions=_int(spec.get("leaseTransitions")),
    )


def lease_spec(record: LeaseRecord) -> dict[str, Any]:
    """The Lease ``spec`` that stores ``record``."""
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.lease_duration,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time is not None:
        spec["acquireTime"] = micro_time(record.acquire_time)
    if record.renew_time is not None:
        spec["renewTime"] = micro_time(record.renew_time)
    return spec


def lease_object(record: LeaseRecord, *, namespace: str, name: str) -> dict[str, Any]:
    """A whole new Lease carrying ``record``."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": lease_spec(record),
    }


def decide(
    current: LeaseRecord | None, *, identity: str, now: dt.datetime, lease_duration: int, leading: bool
) -> Decision:
    """What ``identity`` should do about ``current`` at ``now`` (client-go's tryAcquireOrRenew)."""
    if current is None:
        return Decision("acquire", LeaseRecord(identity, lease_duration, now, now, 0))
    if current.holder == identity:
        renewed = dataclasses.replace(
            current, lease_duration=lease_duration, renew_time=now, acquire_time=current.acquire_time or now
        )
        return Decision("renew", renewed)
    if current.held_at(now):
        return Decision("step_down" if leading else "wait", current)
    return Decision("acquire", LeaseRecord(identity, lease_duration, now, now, current.transitions + 1))


def released(current: LeaseRecord, *, now: dt.datetime) -> LeaseRecord:
    """The record a leader writes on a graceful stop, so a standby takes over at once (as client-go)."""
    return LeaseRecord("", 1, now, now, current.transitions)
