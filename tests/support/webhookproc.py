"""The real ``driftwarden webhook serve`` as a child process, for tests that need its memory, its descriptors
or a server they can reach from synchronous code (Hypothesis, schemathesis).

It serves on free loopback ports with a certificate from its own test CA; ``WebhookProcess`` knows how to
reach it (``url``, ``ca_file``, ``post``) and how to read its resident memory and open descriptors from /proc.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.jaeger import free_port
from driftwarden.settings import environment
from tests.support.guard import serving_pair

ROOT = Path(__file__).parents[2]


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookProcess:
    proc: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    ca_file: Path
    log_file: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def connection(self, timeout: float = 10) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.trust, timeout=timeout)

    def post(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        conn: http.client.HTTPSConnection | None = None,
    ) -> Response:
        """POST ``body`` (Content-Type application/json unless ``headers`` say otherwise)."""
        own = conn is None
        conn = conn or self.connection()
        sent = {"Content-Type": "application/json", **(headers or {})}
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read()
            return Response(response.status, dict(response.getheaders()), data, time.perf_counter() - started)
        finally:
            if own:
                conn.close()

    def alive(self) -> bool:
        return self.proc.poll() is None


@contextlib.contextmanager
def webhook_process(directory: Path, *args: str) -> Iterator[WebhookProcess]:
    """``driftwarden webhook serve`` with ``args`` until the block ends; ready when it answers a review."""
    ca, cert, key = serving_pair(directory)
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca.cert_pem)
    port, metrics_port = free_port(), free_port()
    argv = [sys.executable, "-m", "cli.main", "webhook", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--metrics-port", str(metrics_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--log-level", "warning", *args]  # fmt: skip
    env = {k: v for k, v in environment().items() if not k.startswith("OTEL_")}
    log_file = directory / "webhook.log"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)
    served = WebhookProcess(proc, port, metrics_port, ca_file, log_file)
    try:
        deadline = time.monotonic() + 60
        while True:
            if not served.alive():
                raise AssertionError(f"the webhook exited:\n{log_file.read_text()}")
            with contextlib.suppress(OSError):
                if served.post("/validate", b"{}").status == 400:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the webhook never answered:\n{log_file.read_text()}")
            time.sleep(0.2)
        yield served
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
