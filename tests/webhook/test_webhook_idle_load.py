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
import http.client
import json
import os
import socket
import ssl
import statistics
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from cli.main import build_parser
from devtools.jaeger import free_port
from driftwarden.settings import environment
from tests.support.guard import serving_pair
from tests.support.waiting import eventually
from tests.webhook.reviews import admission_review, deployment

ROOT = Path(__file__).parents[2]
IDLE = 1000
IDLE_TIMEOUT = 6.0
REVIEW = json.dumps(admission_review(old=deployment(), new=deployment())).encode()


@dataclass
class Webhook:
    pid: int
    port: int
    metrics_port: int
    trust: ssl.SSLContext

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def connect(self) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return self.trust.wrap_socket(raw, server_hostname="localhost")

    def review_latencies(self, count: int) -> list[float]:
        """``count`` reviews over one keep-alive connection, in milliseconds each."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.trust, timeout=10)
        took = []
        try:
            for _ in range(count):
                started = time.perf_counter()
                conn.request("POST", "/validate", body=REVIEW, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                assert response.status == 200
                assert json.loads(response.read())["response"]["allowed"] is True
                took.append((time.perf_counter() - started) * 1000)
        finally:
            conn.close()
        return took


@contextlib.asynccontextmanager
async def webhook(tmp_path: Path, *args: str) -> AsyncIterator[Webhook]:
    ca, cert, key = serving_pair(tmp_path)
    port, metrics_port = free_port(), free_port()
    argv = [sys.executable, "-m", "cli.main", "webhook", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--metrics-port", str(metrics_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--log-level", "warning", *args]  # fmt: skip
    env = {k: v for k, v in environment().items() if not k.startswith("OTEL_")}
    with (tmp_path / "webhook.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=env, stdout=log, stderr=log)
    trust = ssl.create_default_context(cadata=ca.cert_pem.decode())
    served = Webhook(proc.pid, port, metrics_port, trust)

    async def ready() -> bool:
        try:
            await asyncio.to_thread(served.review_latencies, 1)
        except OSError:
            return False
        return True

    try:
        await eventually(ready, seconds=60, every=0.2)
        yield served
    finally:
        proc.terminate()
        async with asyncio.timeout(30):
            await proc.wait()


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


def _connect_many(served: Webhook, count: int) -> list[ssl.SSLSocket]:
    return [served.connect() for _ in range(count)]


async def test_a_thousand_idle_connections_leave_reviews_fast_and_memory_bounded(tmp_path: Path) -> None:
    async with webhook(tmp_path, "--idle-timeout", str(IDLE_TIMEOUT), "--max-connections", "2000") as served:
        await asyncio.to_thread(served.review_latencies, 200)  # warm up
        before, fds_before = served.rss_kib(), served.descriptors()
        quiet = await asyncio.to_thread(served.review_latencies, 200)
        started = time.monotonic()
        with held(await asyncio.to_thread(_connect_many, served, IDLE)) as sockets:
            opened_in = time.monotonic() - started
            loaded = await asyncio.to_thread(served.review_latencies, 200)
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
    async with webhook(tmp_path, "--max-connections", str(limit)) as served:
        fds_before = served.descriptors()
        with held(await asyncio.to_thread(_connect_many, served, limit + 200)):
            assert served.descriptors() <= fds_before + limit + 2
            latencies = await asyncio.to_thread(served.review_latencies, 50)
            assert statistics.median(latencies) < 50
        log = (tmp_path / "webhook.log").read_text()
        assert log.count(f"reached its limit of {limit} connections") == 1


def test_the_commands_defaults_are_the_documented_limits() -> None:
    args = build_parser().parse_args(["webhook", "serve", "--tls-cert-file", "c", "--tls-key-file", "k"])
    assert (args.metrics_port, args.max_connections, args.idle_timeout) == (8081, 1000, 120.0)
    assert args.client_ca_file is None  # caller authentication is opt-in
