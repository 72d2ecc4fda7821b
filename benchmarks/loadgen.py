"""The load generator of benchmarks.admission_load, run as its own process (``... admission_load generate``).

It keeps N concurrent aiohttp keep-alive connections posting one AdmissionReview, back to back or at a steady
rate, and reports throughput, latency percentiles and, given the server's pid, the server's CPU time per
review from /proc. Benchmark only: no decision here.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp


def compact(path: Path) -> bytes:
    """The review in ``path`` as the API server sends it: compact JSON (the fixture is indented)."""
    return json.dumps(json.loads(path.read_bytes()), separators=(",", ":")).encode()


async def _worker(
    session: aiohttp.ClientSession, url: str, body: bytes, context: ssl.SSLContext, *,
    start: float, end: float, latencies: list[float], errors: list[int], interval: float = 0.0,
    first: float = 0.0,
) -> None:  # fmt: skip
    """Post ``body`` until ``end``: back to back, or one every ``interval`` seconds from ``first`` on, the
    latency counted from when it was due (a late answer delays the next one, and that counts too)."""
    headers = {"Content-Type": "application/json"}
    due = first
    while (sent := time.perf_counter()) < end:
        if interval:
            await asyncio.sleep(max(0.0, due - sent))
            sent, due = due, due + interval
        try:
            async with session.post(url, data=body, headers=headers, ssl=context) as resp:
                await resp.read()
                ok = resp.status == 200
        except aiohttp.ClientError:
            ok = False
        if sent >= start:  # requests sent during the warm-up are not counted
            if ok:
                latencies.append(time.perf_counter() - sent)
            else:
                errors.append(1)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time the process ``pid`` has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _server_cpu(pid: int, *, start: float, end: float) -> float:
    """CPU seconds the server used between ``start`` and ``end`` (perf_counter times)."""
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    before = await asyncio.to_thread(_cpu_seconds, pid)
    await asyncio.sleep(max(0.0, end - time.perf_counter()))
    return await asyncio.to_thread(_cpu_seconds, pid) - before


async def generate(url: str, ca_pem: str, body: bytes, *, connections: int, duration: float, warmup: float,
                   server_pid: int | None = None, rate: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """Post ``body`` to ``url`` from ``connections`` workers; latency figures in milliseconds.

    With ``rate``, at a steady ``rate`` reviews/s in all (open loop: each worker on its own schedule),
    else each worker as fast as it is answered (saturation).

    With ``server_pid``, also the server's CPU time per request over the measured window: less sensitive
    than throughput to whatever else the machine runs at the same time.
    """
    context = ssl.create_default_context(cadata=ca_pem)
    latencies: list[float] = []
    errors: list[int] = []
    begin = time.perf_counter()
    start, end = begin + warmup, begin + warmup + duration
    connector = aiohttp.TCPConnector(limit=connections)
    cpu = asyncio.create_task(_server_cpu(server_pid, start=start, end=end)) if server_pid else None
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(
            _worker(session, url, body, context, start=start, end=end, latencies=latencies, errors=errors,
                    interval=connections / rate if rate else 0.0, first=begin + index / rate if rate else 0.0)
            for index in range(connections)
        ))  # fmt: skip
    cpu_seconds = await cpu if cpu is not None else 0.0
    latencies.sort()

    def pct(p: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) if latencies else 0
        )

    return {
        "requests": len(latencies), "errors": len(errors), "rps": round(len(latencies) / duration, 1),
        "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
        "server_cpu_us_per_request": round(cpu_seconds / len(latencies) * 1e6, 1) if latencies else 0,
        # 1.0: the webhook kept its core busy the whole time, so it, not the load generator, set the pace.
        "server_cpu_utilization": round(cpu_seconds / duration, 2),
    }  # fmt: skip
