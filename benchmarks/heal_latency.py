"""Edit → healed at scale: the real auditor against out-of-band edits at a steady rate (``make bench``).

For each size: the fleet of ``benchmarks.fleet`` (ConfigMaps over several Applications with automated
sync and self-heal), then the real ``driftwarden auditor run`` as its service account, until every
Application is Synced. Then, as the admin user, a merge PATCH of one managed ConfigMap's ``data.value``
(which Git owns) every 1/rate seconds, each time another object, round-robin over the Applications. A
watch of every managed ConfigMap (the benchmark's own, client side) times each edit from just before its
PATCH is sent to the first event that shows Git's value back at a later resourceVersion. Target (issue
17): p50 under 250 ms and p99 under 1 s at 5,000 objects. The auditor's RSS is read from /proc before and
after the edits.

    python -m benchmarks.heal_latency [--objects 1000,5000] [--apps 10] [--rate 5] [--duration 60]
                                      [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.fleet import GIT_VALUE, Fleet, app_name, fleet, fleet_parser, run_sizes, status_mb
from driftwarden import contract
from driftwarden.kube.rest import MERGE_PATCH, request_json, resource_path
from driftwarden.kube.watch import Informer

Key = tuple[str, str]


@dataclass
class Edits:
    """Edits in flight: when each was sent, its resourceVersion once answered, heals seen early."""

    sent: dict[Key, float] = field(default_factory=dict)
    version: dict[Key, int] = field(default_factory=dict)
    early: dict[Key, list[tuple[int, float]]] = field(default_factory=dict)
    healed: list[float] = field(default_factory=list)
    listed: asyncio.Event = field(default_factory=asyncio.Event)
    drained: asyncio.Event = field(default_factory=asyncio.Event)

    def _done(self, key: Key, seen: float) -> None:
        self.healed.append(seen - self.sent.pop(key))
        self.version.pop(key, None)
        self.early.pop(key, None)
        if not self.sent:
            self.drained.set()

    async def event(self, kind: str, obj: dict[str, Any]) -> None:
        self.listed.set()  # the list is being delivered: the watch resumes from it, no later event is lost
        if kind != "MODIFIED" or (obj.get("data") or {}).get("value") != GIT_VALUE:
            return
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if key not in self.sent:
            return
        now, version = time.perf_counter(), int(meta["resourceVersion"])
        if key not in self.version:  # the heal's event came before the edit's answer
            self.early.setdefault(key, []).append((version, now))
        elif version > self.version[key]:
            self._done(key, now)

    def answered(self, key: Key, version: int) -> None:
        self.version[key] = version
        for seen_version, seen in self.early.get(key, []):
            if seen_version > version:
                self._done(key, seen)
                return


def targets(made: Fleet) -> list[Key]:
    """Every managed object once, interleaved over the Applications."""
    longest = max(made.sizes)
    return [
        (app_name(a), f"cm-{n:05d}") for n in range(longest) for a, size in enumerate(made.sizes) if n < size
    ]


async def edit(made: Fleet, edits: Edits, key: Key, number: int) -> None:
    namespace, name = key
    path = resource_path(group="", version="v1", plural="configmaps", namespace=namespace, name=name)
    edits.sent[key] = time.perf_counter()
    answer = await request_json(made.admin, "PATCH", path, body={"data": {"value": f"edit-{number}"}},
                                content_type=MERGE_PATCH)  # fmt: skip
    edits.answered(key, int(answer["metadata"]["resourceVersion"]))


async def steady_edits(made: Fleet, edits: Edits, keys: list[Key], *, rate: float, count: int) -> None:
    started = time.perf_counter()
    tasks = []
    for number in range(count):
        await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(edit(made, edits, keys[number % len(keys)], number)))
    await asyncio.gather(*tasks)


async def wait_healed(edits: Edits, *, timeout: float) -> None:  # noqa: ASYNC109
    """Until every edit is healed, or ``timeout`` seconds (what is left counts as not healed)."""
    if edits.sent:
        edits.drained.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await edits.drained.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_size(objects: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="driftwarden-bench-heal-") as tmp:
        async with fleet(Path(tmp), objects=objects, apps=args.apps) as made:
            await made.applications()
            async with made.auditor_process() as proc:
                synced_s = await made.wait_synced(timeout=args.sync_timeout, proc=proc)
                rss_synced = status_mb(proc.pid)
                edits = Edits()
                watch = Informer(made.admin, "/api/v1/configmaps", label_selector=contract.LABEL_APP)
                watching = asyncio.create_task(watch.run(edits.event))
                try:
                    await edits.listed.wait()
                    keys = targets(made)
                    warm = min(args.apps, len(keys))  # the heal's watches are up: one edit per Application
                    await steady_edits(made, edits, keys[-warm:], rate=args.rate, count=warm)
                    await wait_healed(edits, timeout=60)
                    edits.healed.clear()
                    count = int(args.rate * args.duration)
                    await steady_edits(made, edits, keys, rate=args.rate, count=count)
                    await wait_healed(edits, timeout=30)
                finally:
                    watching.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watching
                rss_after = status_mb(proc.pid)
            create = made.create_seconds
    healed = edits.healed
    ms = [s * 1000 for s in healed]
    return {
        "objects": objects, "apps": args.apps, "create_s": round(create, 1), "synced_s": round(synced_s, 1),
        "edits": count, "healed": len(healed), "not_healed": len(edits.sent),
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "p99_ms": round(percentile(ms, 0.99), 1) if ms else None,
        "max_ms": round(max(ms), 1) if ms else None,
        "rss_synced_mb": round(rss_synced, 1), "rss_after_mb": round(rss_after, 1),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = fleet_parser("benchmarks.heal_latency", __doc__ or "", objects=[1000, 5000], apps=10)
    parser.add_argument("--rate", type=float, default=5.0, help="edits per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of edits")
    parser.add_argument("--sync-timeout", type=float, default=600.0, help="seconds to wait for Synced")
    args = parser.parse_args(argv)
    settings = {"rate": args.rate, "duration": args.duration}
    return run_sizes(args, one_size, settings=settings, line=lambda size: (
        f"edit -> healed with {size['objects']} objects: p50 {size['p50_ms']} ms, p99 {size['p99_ms']} ms "
        f"({size['healed']}/{size['edits']} healed); auditor RSS {size['rss_after_mb']} MB"))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
