"""The auditor's resident memory with N managed objects watched (``make bench``; issue 17).

For each size: the fleet of ``benchmarks.fleet`` (ConfigMaps over several Applications with automated
sync and self-heal), the real ``driftwarden auditor run`` as its service account until every Application
is Synced, then ``--settle`` seconds more (its watches are listed and open); RSS is read from
``/proc/<pid>/status`` then, and its peak (VmHWM) over the whole start. Target: under 300 MB at 10,000.

With ``--heap DIR`` the auditor runs under tracemalloc (``benchmarks.heapdump``) and, once measured,
writes where its memory is to ``DIR/heap-N.txt`` (top lines, files, live objects by type).

    python -m benchmarks.auditor_memory [--objects 1000,10000] [--apps 20] [--json out.json] [--heap DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.fleet import fleet, fleet_parser, run_sizes, status_mb


async def one_size(objects: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="driftwarden-bench-memory-") as tmp:
        async with fleet(Path(tmp), objects=objects, apps=args.apps) as made:
            await made.applications()
            heap = args.heap / f"heap-{objects}.txt" if args.heap else None
            runner = ("-m", "benchmarks.heapdump", str(heap), "--") if heap else ("-m", "cli.main")
            async with made.auditor_process(runner=runner) as proc:
                synced_s = await made.wait_synced(timeout=args.sync_timeout, proc=proc)
                await asyncio.sleep(args.settle)
                rss, peak = status_mb(proc.pid), status_mb(proc.pid, "VmHWM")
                if heap is not None:
                    await where_memory_is(proc, heap)
            create = made.create_seconds
    return {
        "objects": objects, "apps": args.apps, "create_s": round(create, 1), "synced_s": round(synced_s, 1),
        "rss_mb": round(rss, 1), "peak_rss_mb": round(peak, 1),
    }  # fmt: skip


def _written(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


async def where_memory_is(proc: asyncio.subprocess.Process, heap: Path) -> None:
    """Ask the traced auditor (``benchmarks.heapdump``) to write where its memory is, and wait for it."""
    await asyncio.to_thread(heap.unlink, missing_ok=True)
    proc.send_signal(signal.SIGUSR1)
    for _ in range(600):
        if await asyncio.to_thread(_written, heap):
            await asyncio.sleep(1.0)  # let it finish writing
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"no heap report in {heap}")


def main(argv: list[str] | None = None) -> int:
    parser = fleet_parser("benchmarks.auditor_memory", __doc__ or "", objects=[1000, 10000], apps=20)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after Synced before reading RSS")
    parser.add_argument(
        "--heap",
        type=Path,
        help="run the auditor traced (benchmarks.heapdump), write where "
        "its memory is to DIR/heap-N.txt (such a run's RSS is not comparable)",
    )
    parser.add_argument("--sync-timeout", type=float, default=900.0, help="seconds to wait for Synced")
    args = parser.parse_args(argv)
    return run_sizes(args, one_size, settings={"settle": args.settle}, line=lambda size: (
        f"auditor with {size['objects']} objects watched: RSS {size['rss_mb']} MB "
        f"(peak {size['peak_rss_mb']} MB)"))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
