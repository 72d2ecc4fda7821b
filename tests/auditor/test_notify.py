"""Notifications: the messages (pure), the status transitions that raise them, and the Notifier delivering
to a real aiohttp server on 127.0.0.1 — retries on 5xx, none on 4xx, and ``notify`` never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from auditor.notify import (
    NotificationEvent,
    Notifier,
    NotifierSettings,
    build_message,
    transition_events,
)
from auditor.objects import AppKey
from cli.auditorrun import options_from
from cli.main import build_parser
from devtools.controlplane.plane import free_port
from driftwarden.errors import ConfigError
from driftwarden.objectref import ObjectRef
from tests.support.waiting import eventually

APP = AppKey("driftwarden-system", "web-app")
DEPLOY = ObjectRef("apps", "v1", "Deployment", "prod", "web")
CONFIG = ObjectRef("", "v1", "ConfigMap", "prod", "web-config")
SECRET_PATH = "/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"


def test_messages_name_the_app_objects_fields_and_manager_but_no_values() -> None:
    healed = NotificationEvent(
        APP, "drift_healed", (DEPLOY,), ("spec.replicas",), "0123456789abcdef", "kubectl-edit"
    )
    assert build_message(healed) == {
        "text": "Drift healed: Application driftwarden-system/web-app at revision 0123456789ab\n"
        "objects: Deployment.apps prod/web\nfields: spec.replicas\nchanged by: kubectl-edit"
    }
    failed = build_message(NotificationEvent(APP, "sync_failed", (CONFIG, DEPLOY)))
    assert failed["text"].startswith("Sync failed: Application driftwarden-system/web-app\n")
    assert "objects: ConfigMap prod/web-config, Deployment.apps prod/web" in failed["text"]
    assert build_message(NotificationEvent(APP, "health_degraded")) == {
        "text": "Health degraded: Application driftwarden-system/web-app"
    }


def test_long_lists_are_cut_and_slack_markup_is_escaped() -> None:
    many = tuple(ObjectRef("", "v1", "ConfigMap", "ns", f"cm-{i}") for i in range(25))
    text = build_message(NotificationEvent(APP, "sync_failed", many))["text"]
    assert "cm-9" in text and "cm-10" not in text and text.endswith("and 15 more")
    sly = NotificationEvent(AppKey("ns", "a<b>&c"), "drift_healed", manager="<!channel>")
    assert "a&lt;b&gt;&amp;c" in build_message(sly)["text"] and "<!channel>" not in build_message(sly)["text"]


def test_blocks_carry_the_same_lines() -> None:
    message = build_message(
        NotificationEvent(APP, "drift_healed", (DEPLOY,), ("spec.replicas",)), blocks=True
    )
    assert message["blocks"][0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*Drift healed: Application driftwarden-system/web-app*"},
    }
    assert [e["text"] for e in message["blocks"][1]["elements"]] == [
        "objects: Deployment.apps prod/web",
        "fields: spec.replicas",
    ]
    assert message["text"].startswith("Drift healed")


CFG_ENTRY = {
    "group": "",
    "version": "v1",
    "kind": "ConfigMap",
    "namespace": "prod",
    "name": "cfg",
    "status": "Synced",
}


def status(
    *, health: str = "Healthy", failed_at: str | None = None, results: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    conditions = (
        [{"type": "SyncFailed", "message": "x", "lastTransitionTime": failed_at}] if failed_at else []
    )
    resources = [
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "prod", "name": "web",
         "status": "Synced", "health": {"status": health, "message": "m"}},
        CFG_ENTRY,
    ]  # fmt: skip
    out: dict[str, Any] = {"sync": {"status": "Synced", "revision": "abc"}, "health": {"status": health},
                           "resources": resources, "conditions": conditions}  # fmt: skip
    if results is not None:
        out["operationState"] = {"phase": "Failed", "syncResult": {"revision": "abc", "resources": results}}
    return out


def test_transitions_raise_an_event_once_per_failure_and_per_degradation() -> None:
    failed_result = [
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "prod", "name": "web",
         "status": "SyncFailed", "message": "Invalid value: 'hunter2'"},
        CFG_ENTRY,
    ]  # fmt: skip
    healthy, failing = status(), status(failed_at="2026-01-01T00:00:00Z", results=failed_result)
    assert transition_events(APP, healthy, healthy) == ()
    assert transition_events(APP, healthy, failing) == (
        NotificationEvent(APP, "sync_failed", (DEPLOY,), revision="abc"),
    )
    assert transition_events(APP, failing, failing) == ()  # still the same failure
    again = status(failed_at="2026-01-01T00:05:00Z", results=failed_result)
    assert [e.kind for e in transition_events(APP, failing, again)] == ["sync_failed"]  # a new failure
    degraded = status(health="Degraded")
    assert transition_events(APP, healthy, degraded) == (
        NotificationEvent(APP, "health_degraded", (DEPLOY,), revision="abc"),
    )
    assert transition_events(APP, degraded, degraded) == ()
    assert transition_events(APP, {}, degraded)[0].kind == "health_degraded"  # first status ever
    assert "hunter2" not in repr(transition_events(APP, healthy, failing))


@dataclass
class Endpoint:
    """A Slack-like incoming webhook: answers with ``statuses`` in turn (the last one repeats)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    hang: bool = False
    received: list[Any] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        if self.hang:
            await asyncio.Event().wait()
        code = self.statuses[min(len(self.received), len(self.statuses)) - 1]
        return web.Response(status=code, text="ok" if code < 300 else "invalid_payload")


@contextlib.asynccontextmanager
async def serving(endpoint: Endpoint) -> AsyncIterator[Endpoint]:
    app = web.Application()
    app.router.add_post(SECRET_PATH, endpoint.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    endpoint.url = f"http://127.0.0.1:{port}{SECRET_PATH}"
    try:
        yield endpoint
    finally:
        await runner.cleanup()


def fast(url: str, **kwargs: Any) -> NotifierSettings:
    return NotifierSettings(
        url=url, **{"backoff_initial": 0.05, "backoff_max": 0.2, "timeout": 2.0, **kwargs}
    )


EVENT = NotificationEvent(APP, "sync_failed", (DEPLOY,), revision="abc")


async def test_a_notification_is_posted_as_slack_json() -> None:
    async with serving(Endpoint()) as endpoint, Notifier(fast(endpoint.url, blocks=True)) as notifier:
        notifier.notify(EVENT)
        await eventually(lambda: _now(notifier.sent == 1), seconds=5)
    assert endpoint.received == [build_message(EVENT, blocks=True)]
    assert (notifier.attempts, notifier.failed, notifier.dropped) == (1, 0, 0)


async def test_a_server_error_is_retried_until_it_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="auditor.notify")
    async with serving(Endpoint([500, 503, 200])) as endpoint, Notifier(fast(endpoint.url)) as notifier:
        notifier.notify(EVENT)
        await eventually(lambda: _now(notifier.sent == 1), seconds=5)
    assert endpoint.received == [build_message(EVENT)] * 3
    assert (notifier.attempts, notifier.failed) == (3, 0)
    assert "HTTP 500" in caplog.text and SECRET_PATH not in caplog.text


async def test_a_client_error_is_not_retried_and_attempts_are_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving(Endpoint([400])) as endpoint, Notifier(fast(endpoint.url)) as notifier:
        notifier.notify(EVENT)
        await eventually(lambda: _now(notifier.failed == 1), seconds=5)
        assert len(endpoint.received) == 1
    async with serving(Endpoint([500])) as endpoint, Notifier(fast(endpoint.url, max_attempts=3)) as notifier:
        notifier.notify(EVENT)
        await eventually(lambda: _now(notifier.failed == 1), seconds=5)
        assert len(endpoint.received) == 3 and notifier.sent == 0
    assert "not delivered after 3 attempt(s): the endpoint answered HTTP 500" in caplog.text
    assert SECRET_PATH not in caplog.text


async def test_an_endpoint_that_never_answers_never_blocks_notify() -> None:
    async with serving(Endpoint(hang=True)) as endpoint:
        notifier = Notifier(fast(endpoint.url, queue_size=10, timeout=30.0))
        async with notifier:
            await asyncio.sleep(0)  # let the sender start
            notifier.notify(EVENT)
            await eventually(lambda: _now(len(endpoint.received) == 1), seconds=5)  # stuck on the first
            slowest, started = 0.0, time.perf_counter()
            for _ in range(1000):
                before = time.perf_counter()
                notifier.notify(EVENT)
                slowest = max(slowest, time.perf_counter() - before)
            total = time.perf_counter() - started
            closing = time.perf_counter()
            await notifier.close(flush_timeout=0.2)
        closed_in = time.perf_counter() - closing
    assert slowest < 0.01 and total < 0.5, (slowest, total)
    assert notifier.dropped == 1000 - 10  # the queue kept the newest ten
    assert closed_in < 2 and notifier.sent == 0
    notifier.notify(EVENT)  # after close: counted, not queued, not raised
    assert notifier.dropped == 1000 - 10 + 1


async def test_an_unreachable_endpoint_is_retried_then_given_up() -> None:
    url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"  # nothing listens there
    async with Notifier(fast(url, max_attempts=2)) as notifier:
        before = time.perf_counter()
        notifier.notify(EVENT)
        assert time.perf_counter() - before < 0.01
        await eventually(lambda: _now(notifier.failed == 1), seconds=5)
    assert notifier.attempts == 2 and notifier.sent == 0


def test_settings_are_checked_and_the_url_never_shows() -> None:
    assert SECRET_PATH not in repr(NotifierSettings(url="https://hooks.slack.example" + SECRET_PATH))
    for bad in ("hooks.slack.example/x", "ftp://example/x", "https://"):
        with pytest.raises(ConfigError, match="http"):
            NotifierSettings(url=bad)
    with pytest.raises(ConfigError):
        NotifierSettings(url="https://example/x", queue_size=0)
    with pytest.raises(ConfigError):
        NotifierSettings(url="https://example/x", backoff_initial=5, backoff_max=1)


def test_notification_flags_become_settings(tmp_path: Any) -> None:
    def notify(*argv: str) -> NotifierSettings | None:
        return options_from(build_parser().parse_args(["auditor", "run", *argv]), {}).notify

    url_file = tmp_path / "slack-url"
    url_file.write_text("https://hooks.slack.example" + SECRET_PATH + "\n")
    from_file = notify("--notify-url-file", str(url_file), "--notify-blocks")
    assert from_file is not None and from_file.url == "https://hooks.slack.example" + SECRET_PATH
    assert from_file.blocks
    from_flag = notify("--notify-url", "http://127.0.0.1:9/hook")
    assert from_flag is not None and from_flag.url == "http://127.0.0.1:9/hook" and not from_flag.blocks
    assert notify() is None
    with pytest.raises(SystemExit):  # one or the other
        notify("--notify-url", "http://a/b", "--notify-url-file", str(url_file))


async def _now(value: bool) -> bool:
    return value
