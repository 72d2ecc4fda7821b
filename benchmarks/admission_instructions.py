"""What tracing costs the webhook, in instructions (``make bench-instructions``; a benchmark, not a test).

The load benchmark (admission_load) measures throughput, which on a small shared machine moves by several
per cent from round to round whatever the code does. This one counts instructions instead: valgrind's
callgrind runs the real ``driftwarden webhook serve`` (every thread of it: the event loop, the span export
thread, gRPC's own threads) while this process sends it reviews one at a time over HTTPS, then stops it.
A run with ``--warmup`` reviews and one with ``--warmup + --requests`` reviews differ by exactly the
requests' work, so start-up and shutdown cancel out. Modes: tracing off (no OTEL_*), tracing on
(OTLP/gRPC to a real Jaeger through driftwarden's batch span processor), and tracing off on asyncio's own
loop instead of uvloop (``DRIFTWARDEN_EVENT_LOOP=asyncio``): what the default loop saves, in a figure the
machine's load does not move; and benchmarks.bare_handler (asyncio's loop), the floor the issue's 1.4x
target is set against, so the ratio is in instructions too. Same review fixture, denied in
enforce mode, as the load benchmark. Under callgrind the webhook runs some fifty times slower: the default
200 requests take a few minutes per mode.

    python -m benchmarks.admission_instructions [--requests 200] [--warmup 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import ssl
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.admission_load import REVIEW, ready, serving_files, webhook_server
from devtools.controlplane.processes import ManagedProcess
from devtools.jaeger import Jaeger, find_jaeger, free_port
from driftwarden.settings import environment

COLLECTED = re.compile(r"Collected : (\d+)")
BARE: Mapping[str, str] = {}
"""Not an environment: the mode that runs the bare handler (the floor) instead of the webhook."""


async def _send(url: str, ca_file: Path, count: int) -> None:
    context = ssl.create_default_context(cafile=str(ca_file))
    body = REVIEW.read_bytes()
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            async with session.post(url + "/validate", data=body, headers=headers, ssl=context) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"the webhook answered {resp.status}")


async def _instructions(
    work: Path, files: tuple[Path, Path, Path], otel: Mapping[str, str], *, reviews: int, name: str
) -> int:
    """Instructions the webhook process executed from start to exit, having answered ``reviews`` reviews.

    ``otel`` is the webhook's environment; ``BARE`` instead runs benchmarks.bare_handler (asyncio's loop).
    """
    port = free_port()
    log = work / f"{name}.log"
    wrapper = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={work / name}.callgrind")
    if otel is BARE:
        server = ManagedProcess("bare", [
            *wrapper, sys.executable, "-m", "benchmarks.bare_handler", "--port", str(port),
            "--tls-cert-file", str(files[1]), "--tls-key-file", str(files[2]),
        ], log)  # fmt: skip
    else:
        server = webhook_server(files, otel, port=port, log=log, wrapper=wrapper)
    url = f"https://127.0.0.1:{port}"
    await server.start()
    try:
        await ready(url + "/validate", files[0], server, seconds=600)
        await _send(url, files[0], reviews)
    finally:
        await server.stop(grace=600)  # valgrind writes its totals as the webhook exits
    found = COLLECTED.search(log.read_text())
    if found is None:
        raise RuntimeError(f"valgrind reported no instruction count:\n{server.log_tail()}")
    return int(found.group(1))


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (apt-get install -y valgrind)")
    with tempfile.TemporaryDirectory(prefix="driftwarden-instructions-") as tmp:
        work = Path(tmp)
        files = await asyncio.to_thread(serving_files, work)
        async with Jaeger(find_jaeger(environment()), work / "jaeger") as jaeger:
            per_review: dict[str, float] = {}
            asyncio_loop = {"DRIFTWARDEN_EVENT_LOOP": "asyncio"}
            modes = (("off", {}), ("on", jaeger.otel_env()), ("asyncio", asyncio_loop), ("bare", BARE))
            for mode, otel in modes:
                base = await _instructions(work, files, otel, reviews=args.warmup, name=f"{mode}-base")
                more = await _instructions(
                    work, files, otel, reviews=args.warmup + args.requests, name=f"{mode}-more"
                )
                per_review[mode] = (more - base) / args.requests
                print(f"{mode:7}: {per_review[mode] / 1e6:.3f} million instructions per review")
    change = (per_review["on"] - per_review["off"]) / per_review["off"] * 100
    loop_change = (per_review["off"] - per_review["asyncio"]) / per_review["asyncio"] * 100
    bare = per_review["bare"]
    return {
        "settings": {"requests": args.requests, "warmup": args.warmup},
        "instructions_per_review": per_review,
        "change_percent": round(change, 2),
        "uvloop_vs_asyncio_percent": round(loop_change, 2),
        "x_bare": {mode: round(count / bare, 2) for mode, count in per_review.items() if mode != "bare"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.admission_instructions", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=200, help="reviews measured per mode")
    parser.add_argument("--warmup", type=int, default=50, help="reviews of the baseline run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    report = asyncio.run(measure(args))
    print(f"tracing on vs off: instructions per review {report['change_percent']:+}%")
    print(f"uvloop vs asyncio's loop (tracing off): {report['uvloop_vs_asyncio_percent']:+}%")
    print("x the bare handler: " + ", ".join(f"{mode} {ratio}" for mode, ratio in report["x_bare"].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
