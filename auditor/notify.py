"""Notifications to a Slack-compatible incoming webhook: sync failed, health degraded, drift healed.

Pure core: ``NotificationEvent`` (which Application, what happened, which objects and field paths — never
field values), ``build_message`` (``{"text": ...}``, optionally with Slack ``blocks``) and
``transition_events`` (the events a new status adds over the previous one). Orchestration: ``Notifier``
keeps a bounded queue and one guarded sender task that POSTs each message with retries (exponential
backoff on connection errors, timeouts, 429 and 5xx; no retry on other 4xx). ``notify`` never waits:
when the queue is full the oldest message is dropped and counted. A failure is logged, never raised into
a sync. The endpoint URL is a credential (Slack's carries a token): it is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from auditor.objects import AppKey
from driftwarden.errors import ConfigError
from driftwarden.objectref import ObjectRef

log = logging.getLogger(__name__)

EventKind = Literal[
    "sync_failed", "health_degraded", "drift_healed", "drift_fight", "breakglass_hold", "hold_ended"
]
TITLES: Mapping[EventKind, str] = {
    "sync_failed": "Sync failed",
    "health_degraded": "Health degraded",
    "drift_healed": "Drift healed",
    "drift_fight": "Healing stopped: a controller keeps changing what Git owns",
    "breakglass_hold": "Break-glass hold",
    "hold_ended": "Break-glass hold ended",
}
MAX_LISTED = 10


@dataclass(frozen=True)
class NotificationEvent:
    """Something a person should hear about; ``fields`` are paths (``spec.replicas``), never values."""

    app: AppKey
    kind: EventKind
    objects: tuple[ObjectRef, ...] = ()
    fields: tuple[str, ...] = ()
    revision: str = ""
    manager: str = ""
    """For ``drift_healed`` and ``drift_fight``: who changed it (the user, and the field manager)."""
    detail: str = ""
    """One more line for people: until when a hold lasts, why it ended."""


def _escape(text: str) -> str:
    """Slack's mrkdwn needs &, < and > escaped (they start links and mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _lines(event: NotificationEvent) -> list[str]:
    lines = []
    if event.objects:
        lines.append(f"objects: {_listed([str(ref) for ref in event.objects])}")
    if event.fields:
        lines.append(f"fields: {_listed(list(event.fields))}")
    if event.manager:
        lines.append(f"changed by: {event.manager}")
    if event.detail:
        lines.append(event.detail)
    return lines


def build_message(event: NotificationEvent, *, blocks: bool = False) -> dict[str, Any]:
    """The JSON body for a Slack-compatible incoming webhook."""
    head = f"{TITLES[event.kind]}: Application {event.app}"
    if event.revision:
        head += f" at revision {event.revision[:12]}"
    lines = _lines(event)
    message: dict[str, Any] = {"text": _escape("\n".join([head, *lines]))}
    if blocks:
        message["blocks"] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{_escape(head)}*"}}]
        if lines:
            elements = [{"type": "mrkdwn", "text": _escape(line)} for line in lines]
            message["blocks"].append({"type": "context", "elements": elements})
    return message


def _ref(entry: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef(*(str(entry.get(k) or "") for k in ("group", "version", "kind", "namespace", "name")))


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    found = [c for c in status.get("conditions") or [] if isinstance(c, Mapping) and c.get("type") == kind]
    return found[0] if found else None


def transition_events(
    app: AppKey, previous: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[NotificationEvent, ...]:
    """The ``sync_failed`` / ``health_degraded`` events that the status ``current`` adds over ``previous``.

    A SyncFailed condition that is new (or has a new lastTransitionTime) is a sync failure; a health that
    becomes Degraded is a degradation. A status that stays failed or degraded adds nothing.
    """
    events = []
    revision = str((current.get("sync") or {}).get("revision") or "")
    failed, before = _condition(current, "SyncFailed"), _condition(previous, "SyncFailed")
    if failed is not None and (
        before is None or before.get("lastTransitionTime") != failed.get("lastTransitionTime")
    ):
        results = ((current.get("operationState") or {}).get("syncResult") or {}).get("resources") or []
        refs = tuple(_ref(r) for r in results if isinstance(r, Mapping) and r.get("status") == "SyncFailed")
        events.append(NotificationEvent(app, "sync_failed", refs, revision=revision))
    health = str((current.get("health") or {}).get("status") or "")
    was = str((previous.get("health") or {}).get("status") or "")
    if health == "Degraded" and was != "Degraded":
        entries = [r for r in current.get("resources") or [] if isinstance(r, Mapping)]
        refs = tuple(_ref(r) for r in entries if (r.get("health") or {}).get("status") == "Degraded")
        events.append(NotificationEvent(app, "health_degraded", refs, revision=revision))
    return tuple(events)


@dataclass(frozen=True)
class NotifierSettings:
    """Where notifications go and how hard to try; ``url`` is a credential and stays out of reprs."""

    url: str = field(repr=False)
    queue_size: int = 100
    max_attempts: int = 5
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    timeout: float = 10.0
    blocks: bool = False

    def __post_init__(self) -> None:
        if urlsplit(self.url).scheme not in ("http", "https") or not urlsplit(self.url).hostname:
            raise ConfigError("the notification URL must be an http:// or https:// URL")
        if self.queue_size < 1 or self.max_attempts < 1:
            raise ConfigError("the notification queue size and attempts must be at least 1")
        if not 0 < self.backoff_initial <= self.backoff_max or self.timeout <= 0:
            raise ConfigError("notification backoff needs 0 < initial <= max and a positive timeout")


Outcome = Literal["sent", "retry", "failed"]


class Notifier:
    """``async with Notifier(settings) as notifier: notifier.notify(event)``; sends in the background."""

    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self._queue: asyncio.Queue[tuple[NotificationEvent, dict[str, Any]]] = asyncio.Queue(
            settings.queue_size
        )
        self._session: aiohttp.ClientSession | None = None
        self._sender: asyncio.Task[None] | None = None
        self._closed = False
        self.sent = self.failed = self.dropped = self.attempts = 0

    def notify(self, event: NotificationEvent) -> None:
        """Queue ``event``; never waits. A full queue drops its oldest message (counted in ``dropped``)."""
        if self._closed:
            self.dropped += 1
            return
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("notification queue full: %d notifications dropped so far", self.dropped)
        self._queue.put_nowait((event, build_message(event, blocks=self.settings.blocks)))

    async def __aenter__(self) -> Notifier:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.timeout))
        self._sender = asyncio.create_task(self._send_forever(), name="notification sender")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self, *, flush_timeout: float = 5.0) -> None:
        """Give queued messages up to ``flush_timeout`` seconds, then stop the sender."""
        self._closed = True
        if self._sender is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), flush_timeout)
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send_forever(self) -> None:
        while True:
            event, message = await self._queue.get()
            try:
                await self._deliver(event, message)
            except asyncio.CancelledError:
                raise
            except Exception:  # the sender must outlive any one message
                log.exception("notification %s for %s failed", event.kind, event.app)
            finally:
                self._queue.task_done()

    async def _deliver(self, event: NotificationEvent, message: dict[str, Any]) -> None:
        delay = self.settings.backoff_initial
        for attempt in range(1, self.settings.max_attempts + 1):
            outcome, why, wait = await self._post(message)
            if outcome == "sent":
                self.sent += 1
                return
            if outcome == "failed" or attempt == self.settings.max_attempts:
                self.failed += 1
                log.warning("notification %s for %s not delivered after %d attempt(s): %s",
                            event.kind, event.app, attempt, why)  # fmt: skip
                return
            log.info("notification %s for %s: %s; retrying in %.1fs", event.kind, event.app, why, delay)
            await asyncio.sleep(max(delay, min(wait, self.settings.backoff_max)))
            delay = min(delay * 2, self.settings.backoff_max)

    async def _post(self, message: dict[str, Any]) -> tuple[Outcome, str, float]:
        """One POST: the outcome, why (never the URL), and a Retry-After the endpoint asked for."""
        assert self._session is not None, "use the Notifier as an async context manager"
        self.attempts += 1
        try:
            async with self._session.post(self.settings.url, json=message) as response:
                await response.read()
                if response.status < 300:
                    return "sent", "", 0.0
                why = f"the endpoint answered HTTP {response.status}"
                if response.status == 429 or response.status >= 500:
                    return "retry", why, _retry_after(response.headers.get("Retry-After"))
                return "failed", why, 0.0
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return "retry", f"the endpoint is unreachable ({type(exc).__name__})", 0.0


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
