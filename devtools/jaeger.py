"""A real Jaeger v2 on loopback, for the end-to-end tracing tests, the load benchmark and the demo.

``tools/build-jaeger.sh`` builds the pinned all-in-one ``jaeger`` binary from the Go module proxy into the
build cache; ``Jaeger`` runs it with a configuration written here: OTLP gRPC and HTTP receivers, in-memory
trace storage, and the query service (HTTP API and gRPC) on free 127.0.0.1 ports, with the collector's
own telemetry off so nothing else listens. It waits until every port answers, and stops the child without
leaving an orphan (the control plane's process plumbing). The query helpers read the HTTP API the Jaeger
UI uses: ``/api/services``, ``/api/traces?service=…`` and ``/api/traces/{traceID}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import yaml

from devtools.controlplane.processes import ManagedProcess
from driftwarden.errors import ControlPlaneError, DriftwardenError
from driftwarden.settings import cache_root

JAEGER_VERSION = "v1.76.0"
"""The Jaeger module tools/build-jaeger.sh builds (pinned in tools/jaeger/go.mod; it is Jaeger v2.13.0)."""


class JaegerError(DriftwardenError):
    """The local Jaeger could not be found, started or queried."""


def jaeger_bin_dir(env: Mapping[str, str]) -> Path:
    """``$DRIFTWARDEN_JAEGER_BIN_DIR``, else the build cache directory of the pinned Jaeger."""
    if env.get("DRIFTWARDEN_JAEGER_BIN_DIR"):
        return Path(env["DRIFTWARDEN_JAEGER_BIN_DIR"])
    return cache_root(env) / f"jaeger-{JAEGER_VERSION}"


def find_jaeger(env: Mapping[str, str]) -> Path:
    """The ``jaeger`` binary of the build cache, else the one on PATH; JaegerError naming the fix."""
    cached = jaeger_bin_dir(env) / "jaeger"
    if cached.is_file():
        return cached
    found = shutil.which("jaeger", path=env.get("PATH"))
    if found:
        return Path(found)
    raise JaegerError(f"no jaeger binary at {cached} or on PATH; build it with `make jaeger`")


@dataclass(frozen=True)
class JaegerPorts:
    otlp_grpc: int
    otlp_http: int
    query_http: int
    query_grpc: int


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def jaeger_config(
    ports: JaegerPorts, *, host: str = "127.0.0.1", max_traces: int = 100_000, ui_assets: Path | None = None
) -> dict[str, Any]:
    """The Jaeger v2 (OpenTelemetry Collector) configuration: OTLP in, memory store, query out.

    ``ui_assets`` is a built jaeger-ui directory to serve at ``/`` (the binary embeds none of its own).
    """
    query: dict[str, Any] = {
        "storage": {"traces": "memstore"},
        "http": {"endpoint": f"{host}:{ports.query_http}"},
        "grpc": {"endpoint": f"{host}:{ports.query_grpc}"},
    }
    if ui_assets is not None:
        query["ui"] = {"assets_path": str(ui_assets)}
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            # No internal metrics endpoint (it would listen on :8888); logs go to the log file.
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "info"}},
        },
        "extensions": {
            "jaeger_storage": {"backends": {"memstore": {"memory": {"max_traces": max_traces}}}},
            "jaeger_query": query,
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"{host}:{ports.otlp_grpc}"},
                    "http": {"endpoint": f"{host}:{ports.otlp_http}"},
                }
            }
        },
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}},
    }


class Jaeger:
    """``async with Jaeger(binary, work_dir) as jaeger:`` a running Jaeger; stopped when the block ends."""

    def __init__(
        self,
        binary: Path,
        work_dir: Path,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 60.0,
        ui_assets: Path | None = None,
    ) -> None:
        self.binary = binary
        self.ui_assets = ui_assets
        self.work_dir = work_dir
        self.host = host
        self.startup_timeout = startup_timeout
        self.ports = JaegerPorts(*(free_port(host) for _ in range(4)))
        self.process = ManagedProcess("jaeger", [], work_dir / "jaeger.log")

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"http://{self.host}:{self.ports.otlp_grpc}"

    @property
    def otlp_http_endpoint(self) -> str:
        return f"http://{self.host}:{self.ports.otlp_http}"

    @property
    def query_url(self) -> str:
        return f"http://{self.host}:{self.ports.query_http}"

    def otel_env(self, *, protocol: str = "grpc") -> dict[str, str]:
        """``OTEL_*`` settings that send a process's spans here (Jaeger takes no metrics: those stay off)."""
        endpoint = self.otlp_grpc_endpoint if protocol == "grpc" else self.otlp_http_endpoint
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_METRICS_EXPORTER": "none",
        }

    async def start(self, *, attempts: int = 3) -> None:
        """Start and wait until ready; a port taken since it was picked means new ports and another try."""
        for attempt in range(attempts):
            try:
                await self._start_once()
                return
            except JaegerError as exc:
                if "address already in use" not in str(exc) or attempt == attempts - 1:
                    raise
                self.ports = JaegerPorts(*(free_port(self.host) for _ in range(4)))

    async def _start_once(self) -> None:
        config = self.work_dir / "jaeger.yaml"
        text = yaml.safe_dump(
            jaeger_config(self.ports, host=self.host, ui_assets=self.ui_assets), sort_keys=False
        )
        await asyncio.to_thread(self.work_dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(config.write_text, text)
        self.process.argv = [str(self.binary), "--config", str(config)]
        try:
            await self.process.start()
        except ControlPlaneError as exc:
            raise JaegerError(str(exc)) from exc
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while time.monotonic() < deadline:
                if not self.process.running:
                    raise JaegerError(f"jaeger exited while starting:\n{self.process.log_tail()}")
                if await self._answers(session):
                    return
                await asyncio.sleep(0.1)
        raise JaegerError(
            f"jaeger did not become ready in {self.startup_timeout:.0f}s:\n{self.process.log_tail()}"
        )

    async def _answers(self, session: aiohttp.ClientSession) -> bool:
        for port in (self.ports.otlp_grpc, self.ports.otlp_http):
            try:
                _, writer = await asyncio.open_connection(self.host, port)
            except OSError:
                return False
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        try:
            async with session.get(f"{self.query_url}/api/services") as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def stop(self) -> None:
        await self.process.stop(grace=10.0)

    async def __aenter__(self) -> Jaeger:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- the query API ------------------------------------------------------------------------------

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
                session.get(f"{self.query_url}{path}", params=params) as resp,
            ):
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise JaegerError(f"GET {path} answered {resp.status}: {(await resp.text())[:300]}")
                return await resp.json()
        except aiohttp.ClientError as exc:
            raise JaegerError(f"GET {path} failed: {exc}") from exc

    async def services(self) -> list[str]:
        body = await self._get("/api/services")
        return sorted(body.get("data") or []) if body else []

    async def traces(
        self, service: str, *, operation: str | None = None, limit: int = 100, lookback: str = "1h"
    ) -> list[dict[str, Any]]:
        """Traces with a span of ``service`` (Jaeger's JSON: ``traceID``, ``spans``, ``processes``)."""
        params = {"service": service, "limit": str(limit), "lookback": lookback}
        if operation:
            params["operation"] = operation
        body = await self._get("/api/traces", params)
        return list(body.get("data") or []) if body else []

    async def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One trace by its 32-hex-digit id, or None when Jaeger has not got it (yet)."""
        body = await self._get(f"/api/traces/{trace_id}")
        data = (body or {}).get("data") or []
        return dict(data[0]) if data else None
