"""``POST /api/webhook`` over real HTTP(S) on 127.0.0.1: status codes, what is refreshed, and what is not.

The server is the real aiohttp app; the Applications it lists come from a function the test controls and
the refresher records what it was asked to wake (the end-to-end test with the real loop and API server
is in test_push_cli.py).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from auditor.objects import AppKey
from auditor.push.server import WEBHOOK_PATH, PushServer, PushServerSettings, make_push_app
from driftwarden.errors import ConfigError, KubeUnavailableError
from tests.support.auditor import AUDITOR_NS, application
from tests.support.guard import serving_pair
from tests.support.pushevents import GITHUB, GITLAB, SECRET, body_of, headers_for

REPO = "https://github.com/acme/infra.git"


@dataclass
class Backend:
    """The Applications the server lists, and which of them the loop knows (and was asked to refresh)."""

    apps: list[dict[str, Any]] = field(default_factory=list)
    known: set[AppKey] = field(default_factory=set)
    leading: bool = True
    failing: bool = False
    refreshed: list[AppKey] = field(default_factory=list)
    listed: int = 0

    def refresh(self, key: AppKey) -> bool:
        self.refreshed.append(key)
        return key in self.known

    async def list(self) -> list[dict[str, Any]]:
        self.listed += 1
        if self.failing:
            raise KubeUnavailableError("GET applications: API server unreachable")
        return self.apps


@dataclass
class Running:
    backend: Backend
    url: str
    session: aiohttp.ClientSession

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.url, data=body, headers=headers) as response:
            return response.status, json.loads(await response.text())


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    backend = Backend()
    app = make_push_app(
        secret=SECRET, applications=backend.list, refresher=lambda: backend if backend.leading else None,
        max_body=64 * 1024,
    )  # fmt: skip
    settings = PushServerSettings(secret=SECRET, host="127.0.0.1", port=0)
    async with PushServer(app, settings) as server, aiohttp.ClientSession() as session:
        yield Running(backend, f"http://127.0.0.1:{server.port}{WEBHOOK_PATH}", session)


def apps_of(*specs: tuple[str, str, str]) -> list[dict[str, Any]]:
    made = []
    for name, repo, revision in specs:
        app = application(name, repo_url=repo, path="apps", namespace="prod")
        app["spec"]["source"]["targetRevision"] = revision
        made.append(app)
    return made


async def test_a_signed_push_refreshes_the_matching_applications_the_loop_knows(running: Running) -> None:
    running.backend.apps = apps_of(
        ("web", "git@github.com:acme/infra.git", "main"),
        ("api", REPO, "HEAD"),
        ("pinned", REPO, "v1.0.0"),
        ("elsewhere", "https://github.com/acme/other", "main"),
        ("new", REPO, "main"),  # created a moment ago: the loop has no worker for it yet
    )
    running.backend.apps.append(application("broken", repo_url=REPO, path="/abs", namespace="prod"))
    running.backend.known = {AppKey(AUDITOR_NS, n) for n in ("web", "api", "pinned", "elsewhere")}
    body = body_of(GITHUB)
    status, answer = await running.post(body, headers_for("github", body))
    assert status == 202
    assert answer == {"refreshed": [f"{AUDITOR_NS}/web", f"{AUDITOR_NS}/api"]}
    assert running.backend.refreshed == [AppKey(AUDITOR_NS, n) for n in ("web", "api", "new")]


async def test_a_wrong_or_missing_signature_is_401_and_nothing_is_listed_or_refreshed(
    running: Running,
) -> None:
    running.backend.apps = apps_of(("web", REPO, "main"))
    running.backend.known = {AppKey(AUDITOR_NS, "web")}
    body = body_of(GITHUB)
    for headers in (headers_for("github", body, secret=b"wrong"), {"X-GitHub-Event": "push"},
                    headers_for("gitlab", body, secret=b"wrong")):  # fmt: skip
        status, answer = await running.post(body, headers)
        assert status == 401 and "signature" in answer["error"]
        assert SECRET.decode() not in json.dumps(answer)
    assert running.backend.listed == 0 and running.backend.refreshed == []


async def test_ping_unknown_events_and_bad_bodies(running: Running) -> None:
    ping = body_of({"zen": "Design for failure.", "hook_id": 7})
    assert await running.post(ping, headers_for("github", ping, event="ping")) == (
        200, {"event": "ping", "provider": "github"},
    )  # fmt: skip
    status, answer = await running.post(ping, headers_for("github", ping, event="issues"))
    assert status == 400 and "not handled" in answer["error"]
    status, _ = await running.post(b"{}", {"Content-Type": "application/json"})
    assert status == 400
    huge = b" " * (65 * 1024)
    async with running.session.post(running.url, data=huge, headers=headers_for("github", huge)) as response:
        assert response.status == 413
    async with running.session.get(running.url) as response:
        assert response.status == 405
    assert running.backend.listed == 0 and running.backend.refreshed == []


async def test_a_standby_replica_answers_503_and_a_listing_failure_is_503(running: Running) -> None:
    running.backend.apps = apps_of(("web", REPO, "main"))
    running.backend.known = {AppKey(AUDITOR_NS, "web")}
    body = body_of(GITLAB | {"project": {**GITLAB["project"], "git_http_url": REPO}})
    running.backend.leading = False
    status, answer = await running.post(body, headers_for("gitlab", body))
    assert status == 503 and "not the leader" in answer["error"]
    running.backend.leading, running.backend.failing = True, True
    status, answer = await running.post(body, headers_for("gitlab", body))
    assert status == 503 and answer == {"error": "cannot list Applications"}
    assert running.backend.refreshed == []
    running.backend.failing = False
    assert await running.post(body, headers_for("gitlab", body)) == (
        202,
        {"refreshed": [f"{AUDITOR_NS}/web"]},
    )


async def test_https_with_a_certificate(tmp_path: Path) -> None:
    ca, cert, key = serving_pair(tmp_path)
    refreshed: list[AppKey] = []

    class Loop:
        def refresh(self, app: AppKey) -> bool:
            refreshed.append(app)
            return True

    async def apps() -> list[dict[str, Any]]:
        return apps_of(("web", REPO, "main"))

    loop = Loop()
    app = make_push_app(secret=SECRET, applications=apps, refresher=lambda: loop)
    settings = PushServerSettings(secret=SECRET, host="127.0.0.1", port=0, tls_cert=cert, tls_key=key)
    trust = ssl.create_default_context(cadata=ca.cert_pem.decode())
    async with PushServer(app, settings) as server, aiohttp.ClientSession() as session:
        assert server.scheme == "https"
        body = body_of(GITHUB)
        url = f"https://127.0.0.1:{server.port}{WEBHOOK_PATH}"
        async with session.post(url, data=body, headers=headers_for("github", body), ssl=trust) as response:
            assert response.status == 202
    assert refreshed == [AppKey(AUDITOR_NS, "web")]


def test_settings_refuse_a_missing_secret_half_a_tls_pair_and_never_show_the_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="secret"):
        PushServerSettings(secret=b"")
    with pytest.raises(ConfigError, match="both"):
        PushServerSettings(secret=SECRET, tls_cert=tmp_path / "tls.crt")
    assert SECRET.decode() not in repr(PushServerSettings(secret=SECRET))
