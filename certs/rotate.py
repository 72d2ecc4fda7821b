"""The certificate rotator: read what is stored, take the plan's next step, repeat until done.

Orchestration of ``certs``: ``reconcile`` is one run (``driftwarden certs rotate``, the CronJob), ``watch``
repeats it until stopped (``driftwarden certs rotate --watch``). Every step is re-planned from a fresh read,
so two rotators racing lose nothing (the loser's write gets a 409 and it re-plans) and a crash resumes on the
next run. Key generation runs in a thread, never on the event loop. It must not decide what to renew when
(``certs.plan`` does) nor build Kubernetes requests (``certs.store`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from certs.pki import issue, new_ca
from certs.plan import (
    Done,
    IssueServing,
    NewCA,
    Publish,
    PublishMark,
    Wait,
    active_ca,
    desired_bundle,
    next_action,
    retire,
)
from certs.policy import Policy, ServingNames
from certs.store import CertStore, Snapshot
from driftwarden.cancellation import stop_if_cancelled
from driftwarden.errors import KubeError, TemporaryError

log = logging.getLogger("driftwarden.certs")

CA_COMMON_NAME = "driftwarden-webhook-ca"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class RotateSettings:
    names: ServingNames
    policy: Policy = field(default_factory=Policy)
    max_wait: dt.timedelta = dt.timedelta(minutes=10)
    """A single run sleeps for CA propagation up to this long; a longer wait is left to the next run."""
    interval: dt.timedelta = dt.timedelta(hours=1)
    """``watch`` re-reads at least this often, so a deleted Secret or a reset caBundle is repaired."""
    max_steps: int = 12


@dataclass(frozen=True)
class Report:
    """What one run did, and what is next."""

    steps: tuple[str, ...]
    next_due: dt.datetime | None = None
    """Set when everything is current: when the next renewal falls due."""
    waiting_until: dt.datetime | None = None
    """Set when a serving certificate waits for a new CA to propagate past ``max_wait``."""


async def _step(store: CertStore, snap: Snapshot, action: NewCA | Publish | IssueServing, *,
                settings: RotateSettings, clock: Callable[[], dt.datetime]) -> str:  # fmt: skip
    stored, policy, now = snap.stored, settings.policy, clock()
    if isinstance(action, NewCA):
        ca = await asyncio.to_thread(new_ca, CA_COMMON_NAME, now=now, validity=policy.ca_validity)
        await store.write_ca(snap, ca=ca, retired=retire(stored, now=now), mark=None)
        return f"new CA ({action.reason})"
    active, _ = active_ca(stored)
    assert stored.ca is not None and active is not None  # the plan only publishes or issues with a CA
    if isinstance(action, Publish):
        written = await store.inject(snap, bundle=action.bundle)
        if stored.serving is not None and stored.serving_bundle != action.bundle:
            await store.write_serving(snap, serving=stored.serving, bundle=action.bundle)
        # The propagation clock starts once every target holds the bundle, i.e. now, after the writes.
        mark = PublishMark(active.fingerprint, clock()) if action.reset_mark else stored.mark
        await store.write_ca(snap, ca=stored.ca, retired=action.retired, mark=mark)
        where = ", ".join(written) or "no webhook configuration changed"
        return f"published CA bundle of {action.bundle.count(b'BEGIN CERTIFICATE')} CA(s) ({where})"
    request = settings.names.request(validity=policy.serving_validity)
    serving = await asyncio.to_thread(issue, request, ca=stored.ca, now=now)
    bundle, _ = desired_bundle(
        active, retired=stored.retired, now=now
    )  # what Publish made current before this
    await store.write_serving(snap, serving=serving, bundle=bundle)
    return f"new serving certificate ({action.reason})"


async def reconcile(
    store: CertStore, settings: RotateSettings, *, clock: Callable[[], dt.datetime] = utcnow
) -> Report:
    """One run: step until the plan is ``Done`` or must wait longer than ``settings.max_wait``."""
    steps: list[str] = []
    for _ in range(settings.max_steps):
        snap = await store.read()
        now = clock()
        action = next_action(snap.stored, now=now, policy=settings.policy, names=settings.names)
        if isinstance(action, Done):
            return Report(tuple(steps), next_due=action.next_due)
        if isinstance(action, Wait):
            delay = (action.until - now).total_seconds()
            if action.until - now > settings.max_wait:
                return Report(tuple(steps), waiting_until=action.until)
            log.info("waiting %.0fs: %s", delay, action.reason)
            await asyncio.sleep(max(delay, 0.0))
            continue
        try:
            done = await _step(store, snap, action, settings=settings, clock=clock)
        except KubeError as exc:
            if exc.status != 409:
                raise
            log.info("someone else changed the certificates meanwhile; planning again")
            continue
        log.info("%s", done)
        steps.append(done)
    raise TemporaryError(f"certificates did not settle within {settings.max_steps} steps: {steps}")


async def watch(
    store: CertStore,
    settings: RotateSettings,
    *,
    stop: asyncio.Event,
    clock: Callable[[], dt.datetime] = utcnow,
    on_report: Callable[[Report], None] | None = None,
) -> None:
    """Reconcile until ``stop`` is set, sleeping until the next renewal or ``settings.interval``.

    Waits for propagation happen here, not inside ``reconcile``, so ``stop`` always ends the loop promptly.
    A failing run is logged and retried after a short pause; it never ends the loop.
    """
    once = replace(settings, max_wait=dt.timedelta(0))
    while not stop.is_set():
        delay = settings.interval
        try:
            report = await reconcile(store, once, clock=clock)
        except (KubeError, TemporaryError) as exc:
            log.warning("certificate rotation failed, trying again shortly: %s", exc)
            delay = min(settings.interval, dt.timedelta(seconds=30))
        else:
            if on_report is not None:
                on_report(report)
            upcoming = report.next_due or report.waiting_until
            if upcoming is not None:
                delay = max(min(delay, upcoming - clock()), dt.timedelta(0))
        stop_if_cancelled()  # a cancellation a library swallowed during the run still ends the loop
        with contextlib.suppress(TimeoutError):
            # asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancellation.
            async with asyncio.timeout(delay.total_seconds()):
                await stop.wait()
