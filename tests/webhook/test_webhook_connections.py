"""Connection hygiene on the admission port (driftwarden.connections through webhook.server): handshake,
header, body and idle deadlines, a bounded number of connections, and one log line at the limit.

The server runs in-process with short deadlines, on each event loop (uvloop and asyncio's, in a thread of
its own: tests.support.loops); clients are plain asyncio TLS streams that misbehave on purpose. The
1,000-idle-connections figure is measured on the real command in test_webhook_idle_load.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from driftwarden.connections import ConnectionLimits, GuardStats
from driftwarden.serving import LogThrottle, throttle_loop_errors
from tests.support.guard import serving_pair
from tests.support.loops import served_on
from tests.support.waiting import eventually
from tests.webhook.reviews import admission_review
from webhook.admission.settings import make_settings
from webhook.app import make_app
from webhook.server import ServerSettings, WebhookServer

SHORT = ConnectionLimits(
    max_connections=8, handshake_timeout=0.5, header_timeout=0.5, body_timeout=0.5, idle_timeout=1.0
)
REVIEW = json.dumps(admission_review(old={"metadata": {"name": "x"}}, new={"metadata": {"name": "x"}}))


class Served:
    def __init__(self, server: WebhookServer, trust: ssl.SSLContext) -> None:
        self.server, self.trust = server, trust

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.server.port, ssl=self.trust)

    async def review(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        """One POST /validate on an open connection (kept alive); the response's status line."""
        body = REVIEW.encode()
        writer.write(
            b"POST /validate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )  # fmt: skip
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        return status

    async def settled(self, check: Callable[[GuardStats, int], bool]) -> None:
        """Wait (a second at most) until ``check(stats, open connections)`` holds: the server runs in its
        own thread, and a failed handshake is counted a moment after the TLS layer closed the socket."""
        guard = self.server.guard

        async def holds() -> bool:
            return check(guard.stats, len(guard.connections))

        with contextlib.suppress(TimeoutError):  # the assertions after it say what did not hold
            await eventually(holds, seconds=1.0, every=0.01)


@pytest.fixture
def served(tmp_path: Path, loop_name: str) -> Iterator[Served]:
    """The webhook's server on each event loop (in its own thread); the clients stay on the test's loop."""
    ca, cert, key = serving_pair(tmp_path)
    settings = ServerSettings(cert, key, host="127.0.0.1", port=0, limits=SHORT)

    def server() -> WebhookServer:  # made on the server's loop
        return WebhookServer(make_app(make_settings(), tracer=TracerProvider().get_tracer("test")), settings)

    with served_on(loop_name, server) as running:
        yield Served(running, ssl.create_default_context(cadata=ca.cert_pem.decode()))


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closed the connection (read until EOF or reset)."""
    started = time.monotonic()
    async with asyncio.timeout(seconds):
        try:
            while await reader.read(1024):
                pass
        except (ConnectionError, ssl.SSLError):
            pass
    return time.monotonic() - started


async def closed_while(reader: asyncio.StreamReader, feed: Callable[[], Awaitable[None]]) -> float:
    """Seconds until the server closed the connection while ``feed`` kept sending."""
    feeding = asyncio.create_task(feed())
    try:
        return await closed_within(reader, 5)
    finally:
        feeding.cancel()


async def test_every_fresh_connection_completes_its_handshake(served: Served) -> None:
    """Many new TLS connections in a row, each answered: a ClientHello that arrives before the guard has
    started TLS (uvloop reads right after ``connection_made``) still reaches the TLS layer."""
    for _ in range(60):
        reader, writer = await served.connect()
        assert (await served.review(reader, writer)).startswith(b"HTTP/1.1 200")
        writer.close()
    assert served.server.guard.stats.failed_handshakes == 0


async def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(served: Served) -> None:
    reader, writer = await served.connect()
    assert (await served.review(reader, writer)).startswith(b"HTTP/1.1 200")
    took = await closed_within(reader, 5)
    assert SHORT.idle_timeout * 0.8 < took < SHORT.idle_timeout + 1.5
    assert served.server.guard.stats.idle_closed == 1
    writer.close()


async def test_a_connection_reused_within_the_idle_timeout_stays_open(served: Served) -> None:
    reader, writer = await served.connect()
    for _ in range(4):  # four reviews over 2 s, each within the 1 s idle timeout of the one before
        assert (await served.review(reader, writer)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(SHORT.idle_timeout / 2)
    assert served.server.guard.stats.idle_closed == 0
    writer.close()


async def test_slowloris_headers_are_cut_off(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(b"POST /validate HTTP/1.1\r\nHost: webhook\r\n")

    async def drip() -> None:
        for index in range(100):
            writer.write(f"X-Drip-{index}: x\r\n".encode())
            await asyncio.sleep(0.1)

    took = await closed_while(reader, drip)
    assert took < SHORT.header_timeout + 1.0
    assert served.server.guard.stats.timed_out == 1
    writer.close()


async def test_an_endless_chunked_body_is_cut_off(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(
        b"POST /validate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )

    async def trickle() -> None:
        while True:
            writer.write(b"1\r\n \r\n")
            await asyncio.sleep(0.05)

    took = await closed_while(reader, trickle)
    assert took < SHORT.body_timeout + 1.0
    assert served.server.guard.stats.timed_out == 1
    writer.close()


async def test_a_client_that_never_starts_tls_is_dropped_after_the_handshake_timeout(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.server.port)  # no TLS at all
    took = await closed_within(reader, 5)
    assert took < SHORT.handshake_timeout + 1.0
    await served.settled(lambda stats, open_: stats.failed_handshakes == 1 and open_ == 0)
    assert served.server.guard.stats.failed_handshakes == 1
    assert not served.server.guard.connections  # its slot is free again
    writer.close()


async def test_a_client_speaking_plain_http_fails_its_handshake_at_once_and_frees_its_slot(
    served: Served,
) -> None:
    """Its first bytes are no ClientHello: the TLS layer (fed them by the guard on uvloop) refuses them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.server.port)  # no TLS at all
    writer.write(b"POST /validate HTTP/1.1\r\nHost: webhook\r\nContent-Length: 2\r\n\r\n{}")
    took = await closed_within(reader, 5)
    assert took < SHORT.handshake_timeout  # refused, not timed out
    await served.settled(lambda stats, open_: stats.failed_handshakes == 1 and open_ == 0)
    assert served.server.guard.stats.failed_handshakes == 1
    assert not served.server.guard.connections
    writer.close()


async def test_at_the_limit_the_longest_idle_connection_makes_room_and_it_is_logged_once(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    held = [await served.connect() for _ in range(SHORT.max_connections)]
    for reader, writer in held:
        assert (await served.review(reader, writer)).startswith(b"HTTP/1.1 200")
    with caplog.at_level(logging.WARNING, logger="driftwarden.connections"):
        for _ in range(5):  # five newcomers, each answered, each taking the longest-idle slot
            reader, writer = await served.connect()
            assert (await served.review(reader, writer)).startswith(b"HTTP/1.1 200")
            held.append((reader, writer))
    guard = served.server.guard
    assert guard.stats.evicted == 5
    assert len(guard.connections) == SHORT.max_connections
    await closed_within(held[0][0], 2)  # the first one held was the first evicted
    warnings = [r.getMessage() for r in caplog.records if r.name == "driftwarden.connections"]
    assert len(warnings) == 1 and "limit of 8 connections" in warnings[0]
    for _reader, writer in held:
        writer.close()


async def test_when_no_connection_is_idle_a_newcomer_is_refused(served: Served) -> None:
    stalled = []
    for _ in range(SHORT.max_connections):  # every slot mid-request: headers begun, not finished
        reader, writer = await served.connect()
        writer.write(b"POST /validate HTTP/1.1\r\n")
        stalled.append((reader, writer))
    await asyncio.sleep(0.1)
    with pytest.raises((ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError)):
        reader, writer = await served.connect()
        await served.review(reader, writer)
    assert served.server.guard.stats.refused >= 1
    # The stalled ones run out of time, and their slots serve reviews again.
    await closed_within(stalled[-1][0], 3)
    reader, writer = await served.connect()
    assert (await served.review(reader, writer)).startswith(b"HTTP/1.1 200")
    for _reader, each in [*stalled, (reader, writer)]:
        each.close()


def test_the_event_loop_logs_each_kind_of_error_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        throttle_loop_errors(loop)
        error = OSError(24, "Too many open files")
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(10_000):
                loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource", "exception": error}
                )
            loop.call_exception_handler({"message": "Fatal error on transport"})
    finally:
        loop.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert lines == [
        "socket.accept() out of system resource: OSError(24, 'Too many open files')",
        "Fatal error on transport",
    ]


def test_a_throttled_log_says_how_many_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    throttle = LogThrottle(logging.getLogger("throttled"), every=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="throttled"):
        assert throttle.warning("disk full") is True
        assert [throttle.warning("disk full") for _ in range(3)] == [False] * 3
        now[0] = 61.0
        assert throttle.warning("disk full") is True
    assert [r.getMessage() for r in caplog.records] == [
        "disk full", "disk full (3 more like it in the last 60s)",
    ]  # fmt: skip
