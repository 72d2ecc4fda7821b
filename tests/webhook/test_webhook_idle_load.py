"""1,000 idle TLS connections against the real ``driftwarden webhook serve``: reviews are still answered in
milliseconds, memory stays bounded, idle connections are closed after the idle timeout, and beyond the
connection limit the process holds no more descriptors than the limit allows.

The webhook runs as its own process (so its memory and descriptors can be read from /proc); the clients
are blocking TLS sockets in a worker thread. The figures are printed (``pytest -s``) and recorded in
docs/security.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from cli.main import build_parser
from tests.support.waiting import eventually
from tests.support.webhookproc import WebhookProcess, webhook_process
from tests.webhook.reviews import admission_review, deployment

IDLE = 1000
IDLE_TIMEOUT = 6.0
REVIEW = json.dumps(admission_review(old=deployment(), new=deployment())).encode()


def connect(served: WebhookProcess) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    return served.trust.wrap_socket(raw, server_hostname="localhost")


def review_latencies(served: WebhookProcess, count: int) -> list[float]:
    """``count`` reviews over one keep-alive connection, in milliseconds each."""
    conn = served.connection()
    took = []
    try:
        for _ in range(count):
            response = served.post("/validate", REVIEW, conn=conn)
            assert response.status == 200
            assert response.json()["response"]["allowed"] is True
            took.append(response.seconds * 1000)
    finally:
        conn.close()
    return took


def closed(sock: ssl.SSLSocket) -> bool:
    sock.settimeout(0.0)
    try:
        return sock.recv(1) == b""
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except OSError:
        return True


@contextlib.contextmanager
def held(sockets: list[ssl.SSLSocket]) -> Iterator[list[ssl.SSLSocket]]:
    try:
        yield sockets
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _connect_many(served: WebhookProcess, count: int) -> list[ssl.SSLSocket]:
    return [connect(served) for _ in range(count)]


async def test_a_thousand_idle_connections_leave_reviews_fast_and_memory_bounded(tmp_path: Path) -> None:
    with webhook_process(
        tmp_path, "--idle-timeout", str(IDLE_TIMEOUT), "--max-connections", "2000"
    ) as served:
        await asyncio.to_thread(review_latencies, served, 200)  # warm up
        before, fds_before = served.rss_kib(), served.descriptors()
        quiet = await asyncio.to_thread(review_latencies, served, 200)
        started = time.monotonic()
        with held(await asyncio.to_thread(_connect_many, served, IDLE)) as sockets:
            opened_in = time.monotonic() - started
            loaded = await asyncio.to_thread(review_latencies, served, 200)
            after = served.rss_kib()
            assert served.descriptors() >= fds_before + IDLE - 5
            per_connection = (after - before) / IDLE
            print(
                f"\n{IDLE} idle TLS connections opened in {opened_in:.1f}s; RSS {before} KiB -> {after} KiB "
                f"({per_connection:.0f} KiB each); review median {statistics.median(quiet):.1f} ms idle, "
                f"{statistics.median(loaded):.1f} ms loaded (p95 {sorted(loaded)[189]:.1f} ms, "
                f"max {max(loaded):.1f} ms)"
            )
            assert statistics.median(loaded) < 50
            assert sorted(loaded)[189] < 250
            assert per_connection < 400  # bounded: a TLS connection's buffers, nothing that grows

            # After the idle timeout the server closes every one of them.
            await asyncio.sleep(IDLE_TIMEOUT)

            def all_closed() -> bool:
                return all(closed(sock) for sock in sockets)

            async def gone() -> bool:
                return await asyncio.to_thread(all_closed)

            await eventually(gone, seconds=IDLE_TIMEOUT + 10, every=0.5)

            # Each close is polite (TLS close_notify); a client that never answers it is cut off after
            # the shutdown deadline, and then no descriptor is left.
            async def released() -> bool:
                return served.descriptors() <= fds_before + 5

            await eventually(released, seconds=15, every=0.5)


async def test_beyond_the_connection_limit_descriptors_stay_bounded_and_reviews_answered(
    tmp_path: Path,
) -> None:
    limit = 300
    with webhook_process(tmp_path, "--max-connections", str(limit)) as served:
        fds_before = served.descriptors()
        with held(await asyncio.to_thread(_connect_many, served, limit + 200)):
            assert served.descriptors() <= fds_before + limit + 2
            latencies = await asyncio.to_thread(review_latencies, served, 50)
            assert statistics.median(latencies) < 50
        log = served.log_file.read_text()
        assert log.count(f"reached its limit of {limit} connections") == 1


def test_the_commands_defaults_are_the_documented_limits() -> None:
    args = build_parser().parse_args(["webhook", "serve", "--tls-cert-file", "c", "--tls-key-file", "k"])
    assert (args.metrics_port, args.max_connections, args.idle_timeout) == (8081, 1000, 120.0)
    assert args.client_ca_file is None  # caller authentication is opt-in
