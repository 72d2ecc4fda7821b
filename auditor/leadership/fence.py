"""Fencing: a replica writes only while it still holds the Lease by its own clock (pure state, no I/O).

Leader election alone does not stop an old leader from writing: a replica frozen (SIGSTOP, a long GC
pause, a suspended VM) past its lease wakes up still believing it leads, while a standby has taken the
Lease and writes too. Its renewal loop notices only at its next renewal, and every write it had in
flight would land first. So every write batch of the auditor (apply, delete, status and spec patches,
finalizers, Events) asks the ``Fence`` first, and the fence answers from the local monotonic clock alone,
without a request: the Lease is ours until ``lease duration - margin`` after the moment we read it for the
last successful acquire or renewal (the record we wrote carries a renewTime no later than that moment, and
a standby waits a whole lease duration after renewTime before it takes over). The monotonic clock keeps
running while a process is stopped, so a replica resumed after its lease ran out finds the fence closed
before it sends anything, and ``LeaseLostError`` ends the pass; the elector's own renewal then steps down.

The margin covers what the local clock cannot see: the time between the check and the request reaching
the API server, and clock skew between replicas. The elector opens and closes the fence; the adapters
(``auditor.kube``) check it. It must not read the Lease or the wall clock itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from driftwarden.errors import LeaseLostError

DEFAULT_MARGIN = 0.2
"""Share of the lease duration kept back from the end of the lease (at least 1 s, see ``Fence.grant``)."""


class Fence:
    """Open while this replica holds the Lease by its own clock; ``check`` raises once it is not."""

    def __init__(
        self, *, margin: float = DEFAULT_MARGIN, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if not 0 <= margin < 1:
            raise ValueError(f"the fence margin is a share of the lease duration in [0, 1), not {margin}")
        self.margin = margin
        self._monotonic = monotonic
        self._until = -math.inf
        self.refused = 0
        """Writes refused so far: a replica that lost its lease while it had work in flight."""

    def grant(self, *, read_at: float, lease_duration: float) -> None:
        """We hold the Lease as of ``read_at`` (monotonic, taken before the acquire or renewal began)."""
        keep_back = max(1.0, self.margin * lease_duration) if lease_duration > 1.0 else 0.0
        self._until = max(self._until, read_at + lease_duration - keep_back)

    def close(self) -> None:
        """Leadership ended (lost, released or stopping): no write passes until the next ``grant``."""
        self._until = -math.inf

    def remaining(self) -> float:
        """Seconds the fence stays open without another renewal; negative when closed."""
        return self._until - self._monotonic()

    @property
    def open(self) -> bool:
        return self.remaining() > 0

    def check(self, what: str) -> None:
        """Raise ``LeaseLostError`` unless the Lease is still ours; ``what`` names the refused write."""
        if not self.open:
            self.refused += 1
            raise LeaseLostError(f"not writing ({what}): this replica no longer holds the leader Lease")


def check_write(fence: Fence | None, method: str, path: str, query: Mapping[str, Any] | None) -> None:
    """The adapters' one call before a request: writes (not reads, not dry runs) need an open fence."""
    if fence is None or method in {"GET", "HEAD"} or (query or {}).get("dryRun"):
        return
    fence.check(f"{method} {path}")
