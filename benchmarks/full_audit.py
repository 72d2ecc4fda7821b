"""One full audit of N managed objects against ``kubectl diff --server-side`` (``make bench``; issue 17).

For each size: the fleet of ``benchmarks.fleet`` (ConfigMaps over several Applications, created as the
auditor would create them), then, in alternating rounds on the same control plane, (a) one pass of the
auditor's own code over every Application at once, as ``AuditorLoop`` runs them: resolve the Git
revision, render, and compare each object through a server-side-apply dry run (``Reconciler.render`` +
``Reconciler.compare``; a new Reconciler each round, so no dry run is cached from a previous pass; the Git
mirror is kept, as between the auditor's passes), and (b) the built kubectl's ``kubectl diff
--server-side -f DIR`` over the very manifests the auditor compares (stamped with its label and
annotations, one file per Application), as the same admin identity. The figure is the wall time of each;
the ratio is kubectl's over driftwarden's (target: at least 3x). After each pass of (a) the same
Reconciler runs a second one: the auditor's steady state, where a dry run is kept until what Git says or
the live object changes (``DryRunCache``), reported beside it. CPU seconds of each party (this process,
kubectl, kube-apiserver, etcd) over each window come from /proc and getrusage.

    python -m benchmarks.full_audit [--objects 1000,5000] [--apps 10] [--rounds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import yaml

from auditor.application import parse_application
from auditor.clients import AuditorClients
from auditor.ledger import Ledger
from auditor.reconcile import Reconciler
from auditor.settings import AuditorSettings
from auditor.source.renderers import RenderTools
from benchmarks.fleet import Fleet, application, fleet, fleet_parser, plane_pids, run_sizes
from benchmarks.loadgen import _cpu_seconds as cpu_seconds
from driftwarden.settings import environment, helm_bin_dir


def reconciler_for(made: Fleet, cache: Path) -> Reconciler:
    """A new Reconciler (no dry run cached) over the admin client, its Git mirrors in ``cache``."""
    tools = RenderTools(kubectl=made.plane.binaries.kubectl, helm=helm_bin_dir(environment()) / "helm")
    clients = AuditorClients.build(made.admin, settings=AuditorSettings(git_cache=cache, tools=tools))
    return Reconciler(clients, Ledger())


async def driftwarden_pass(made: Fleet, reconciler: Reconciler) -> tuple[float, int]:
    """Seconds of one render + compare of every Application at once, and the objects compared."""
    apps = [parse_application(application(i, made.repo)) for i in range(len(made.sizes))]

    async def one(app: Any) -> int:
        rendered = await reconciler.render(app)
        comparison = await reconciler.compare(app, rendered, {})
        if comparison.sync_status != "Synced":
            raise RuntimeError(f"{app.key}: {comparison.sync_status} (the fleet should match Git)")
        return len(comparison.desired)

    started = time.perf_counter()
    compared = await asyncio.gather(*(one(app) for app in apps))
    return time.perf_counter() - started, sum(compared)


async def stamped_manifests(made: Fleet, cache: Path, out: Path) -> None:
    """What the auditor compares (its render, stamped and placed), one file per Application."""
    reconciler = reconciler_for(made, cache)
    for index in range(len(made.sizes)):
        app = parse_application(application(index, made.repo))
        comparison = await reconciler.compare(app, await reconciler.render(app), {})
        text = yaml.safe_dump_all(list(comparison.desired), sort_keys=False)
        await asyncio.to_thread(_write, out / f"{app.key.name}.yaml", text)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def kubectl_diff(made: Fleet, manifests: Path) -> tuple[float, int]:
    started = time.perf_counter()
    await made.kubectl("diff", "--server-side", "--field-manager=driftwarden", "--force-conflicts",
                       "-f", str(manifests))  # fmt: skip
    return time.perf_counter() - started, 0


def _cpu_now(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: this process (the auditor's code), its reaped children (kubectl and its diff),
    and the API server and etcd."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "client": time.process_time(), "kubectl": children.ru_utime + children.ru_stime,
        **{name: cpu_seconds(pid) for name, pid in pids.items()},
    }  # fmt: skip


async def measured(run: Awaitable[tuple[float, int]], pids: dict[str, int]) -> dict[str, Any]:
    """Wall seconds of ``run`` and the CPU seconds each party spent meanwhile."""
    before = _cpu_now(pids)
    seconds, compared = await run
    after = _cpu_now(pids)
    return {"s": seconds, "compared": compared, **{k: after[k] - before[k] for k in before}}


async def one_size(objects: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="driftwarden-bench-audit-") as tmp:
        work = Path(tmp)
        async with fleet(work, objects=objects, apps=args.apps) as made:
            manifests = work / "stamped"
            await stamped_manifests(made, work / "git-cache", manifests)  # also fills the Git mirror
            pids = plane_pids()
            rounds: dict[str, list[dict[str, Any]]] = {"driftwarden": [], "kubectl": [], "cached": []}
            for round_ in range(args.rounds):
                for who in ("driftwarden", "kubectl") if round_ % 2 == 0 else ("kubectl", "driftwarden"):
                    if who == "kubectl":
                        rounds[who].append(await measured(kubectl_diff(made, manifests), pids))
                        continue
                    reconciler = reconciler_for(made, work / "git-cache")
                    rounds[who].append(await measured(driftwarden_pass(made, reconciler), pids))
                    # The auditor keeps its Reconciler: its next pass dry-runs only what changed.
                    rounds["cached"].append(await measured(driftwarden_pass(made, reconciler), pids))
            create = made.create_seconds
    ours, theirs, cached = (statistics.median(r["s"] for r in rounds[who]) for who in rounds)
    return {
        "objects": objects, "apps": args.apps, "compared": rounds["driftwarden"][0]["compared"],
        "create_s": round(create, 1), "driftwarden_s": round(ours, 2), "kubectl_diff_s": round(theirs, 2),
        "faster": round(theirs / ours, 2), "cached_s": round(cached, 2),
        "cached_faster": round(theirs / cached, 2),
        "cpu_s": {who: _cpu_median(r) for who, r in rounds.items()},
        "rounds": rounds,
    }  # fmt: skip


def _cpu_median(rounds: list[dict[str, Any]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in rounds), 2) for k in rounds[0] if k not in ("compared",)}


def main(argv: list[str] | None = None) -> int:
    parser = fleet_parser("benchmarks.full_audit", __doc__ or "", objects=[1000, 5000], apps=10)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (driftwarden, kubectl) per size")
    args = parser.parse_args(argv)
    return run_sizes(args, one_size, settings={"rounds": args.rounds}, line=lambda size: (
        f"full audit of {size['objects']} objects: driftwarden {size['driftwarden_s']} s, "
        f"kubectl diff --server-side {size['kubectl_diff_s']} s: {size['faster']}x faster"))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
