"""Admission load benchmark: driftwarden's CPU per review beside a bare handler and OPA, and what tracing
costs (``make bench``; a benchmark, not a test).

For each round it starts each server of ``--modes`` in turn as a child process over HTTPS (the real
``driftwarden webhook serve`` with tracing off or on, on uvloop or asyncio's loop, the code of
``--baseline``, benchmarks.bare_handler on either loop, OPA), then a separate load-generator process
(benchmarks.loadgen) that keeps N concurrent aiohttp connections posting a realistic AdmissionReview (a
``kubectl edit`` of a Git-managed Deployment: full managedFields, denied in enforce mode, sent compact as
the API server sends it) for a fixed time, as fast as answered or at a steady ``--rate``. It reports
requests/s, p50/p95/p99 latency, the server's CPU per review (/proc), its ratio to the bare handler's
within each round (on asyncio's loop, and on uvloop when ``bare-uv`` runs), and resident memory. The order
of the modes is reversed every other round, so a machine that drifts during the run favours none. Tracing
on sends OTLP gRPC to a real Jaeger on loopback. Every process runs on 127.0.0.1 and stops by itself;
nothing is left running.

    python -m benchmarks.admission_load [--modes off,off-aio,on,bare,bare-uv] [--connections 32]
        [--duration 15] [--rounds 6] [--rate N] [--pin] [--baseline DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import ssl
import statistics
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.loadgen import compact, generate
from benchmarks.opa_admission import find_opa, opa_server
from certs.pki import CertRequest, issue, new_ca
from devtools.controlplane.processes import ManagedProcess
from devtools.jaeger import Jaeger, find_jaeger, free_port
from driftwarden.settings import environment

ROOT = Path(__file__).resolve().parents[1]
REVIEW = ROOT / "tests/webhook/fixtures/review-update-kubectl-edit.json"


# --- the orchestration --------------------------------------------------------------------------------


def serving_files(directory: Path) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca = new_ca("driftwarden-bench-ca", now=now, validity=dt.timedelta(days=1))
    leaf = issue(CertRequest(common_name="driftwarden-webhook", ip_addresses=("127.0.0.1",), server=True,
                             validity=dt.timedelta(days=1)), ca=ca, now=now)  # fmt: skip
    paths = directory / "ca.crt", directory / "tls.crt", directory / "tls.key"
    for path, pem in zip(paths, (ca.cert_pem, leaf.cert_pem, leaf.key_pem), strict=True):
        path.write_bytes(pem)
    return paths


async def ready(url: str, ca_file: Path, server: ManagedProcess, *, seconds: float = 60) -> None:
    """Wait until ``url`` (the review's endpoint) answers an empty review: a 400, or OPA's 404."""
    context = ssl.create_default_context(cafile=str(ca_file))
    async with asyncio.timeout(seconds), aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                # The admission port answers only reviews: an empty one gets its 400 once it serves.
                async with session.post(url, json={}, ssl=context) as resp:
                    if resp.status in (200, 400, 404):  # OPA: 404 for a decision left undefined
                        return
            if not server.running:
                raise RuntimeError(f"the webhook exited:\n{server.log_tail()}")
            await asyncio.sleep(0.1)


def webhook_server(
    files: tuple[Path, Path, Path],
    otel: Mapping[str, str],
    *,
    port: int,
    log: Path,
    wrapper: tuple[str, ...] = (),
    source: Path | None = None,
    event_loop: str | None = None,
) -> ManagedProcess:
    """The real ``driftwarden webhook serve`` on 127.0.0.1:``port`` with exactly ``otel`` as its OTEL_*.

    ``wrapper`` runs it under another program (valgrind, for admission_instructions); ``source`` runs the
    code of another checkout (``git archive main``: the before of a before-and-after in one run);
    ``event_loop`` passes ``--event-loop`` (None: the command's default, or a baseline without the flag).
    """
    _ca, cert, key = files
    env = {k: v for k, v in environment().items() if not k.startswith("OTEL_")} | dict(otel)
    # ManagedProcess passes our own environment on; `env -i` gives the child exactly ``env`` instead.
    return ManagedProcess("webhook", [
        "env", "-i", *(("-C", str(source)) if source else ()), *(f"{k}={v}" for k, v in env.items()),
        *wrapper,
        sys.executable, "-m", "cli.main", "webhook", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--metrics-port", "0", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--log-level", "warning", *(("--event-loop", event_loop) if event_loop else ()),
    ], log)  # fmt: skip


@dataclass(frozen=True)
class Placement:
    """Which CPUs the webhook gets, and which the load generator and Jaeger share (empty: no pinning)."""

    webhook: tuple[int, ...] = ()
    others: tuple[int, ...] = ()

    @classmethod
    def for_machine(cls, *, pin: bool) -> Placement:
        cpus = sorted(os.sched_getaffinity(0))
        return cls((cpus[0],), tuple(cpus[1:])) if pin and len(cpus) >= 2 else cls()

    def taskset(self, cpus: tuple[int, ...]) -> tuple[str, ...]:
        return ("taskset", "-c", ",".join(map(str, cpus))) if cpus else ()

    def pin(self, pid: int) -> None:
        """Move every thread of ``pid`` (Jaeger's Go threads) onto ``others``; new threads inherit it."""
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(task.name), set(self.others))


MODES = ("off", "off-aio", "on", "base", "bare", "bare-uv", "opa")
"""off: driftwarden, tracing off, on uvloop (the default loop); off-aio: the same on asyncio's loop
(``--event-loop asyncio``); on: tracing on (OTLP to Jaeger), uvloop; base: tracing off, the code of
``--baseline`` (a before, on its own default loop); bare: benchmarks.bare_handler on asyncio's loop, the
floor the issue's target is measured against; bare-uv: the bare handler on uvloop; opa: OPA serving
benchmarks/opa/admission.rego (benchmarks.opa_admission)."""
LOOPS = {"off": "uvloop", "on": "uvloop", "off-aio": "asyncio", "bare": "asyncio", "bare-uv": "uvloop"}
"""The event loop of each Python mode (base runs the baseline's own default)."""
FLOORS = {"bare": "cpu_vs_bare", "bare-uv": "cpu_vs_bare_uv"}
"""The floors each other mode's CPU per review is divided by, within each round, and the ratio's key."""


def _server(mode: str, files: tuple[Path, Path, Path], otel: Mapping[str, str], *, port: int, log: Path,
            wrapper: tuple[str, ...], baseline: Path | None) -> tuple[ManagedProcess, str]:  # fmt: skip
    """The server of ``mode`` on ``port`` and the path the review is posted to."""
    _ca, cert, key = files
    if mode in FLOORS:
        return ManagedProcess(mode, [
            *wrapper, sys.executable, "-m", "benchmarks.bare_handler", "--port", str(port),
            "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--event-loop", LOOPS[mode],
        ], log), "/validate"  # fmt: skip
    if mode == "opa":
        opa = opa_server(find_opa(environment()), cert=cert, key=key, port=port, log=log, wrapper=wrapper)
        return opa, "/"
    if mode == "base" and baseline is None:
        raise SystemExit("mode base needs --baseline DIR (e.g. git archive main | tar -x -C DIR)")
    source = baseline if mode == "base" else None
    server = webhook_server(files, otel, port=port, log=log, wrapper=wrapper, source=source,
                            event_loop=LOOPS.get(mode))  # fmt: skip
    return server, "/validate"


async def _round(mode: str, work: Path, files: tuple[Path, Path, Path], otel: Mapping[str, str],
                 args: argparse.Namespace, *, placement: Placement) -> dict[str, Any]:  # fmt: skip
    ca_file = files[0]
    port = free_port()
    server, path = _server(
        mode, files, otel, port=port, log=work / f"server-{mode}.log",
        wrapper=placement.taskset(placement.webhook), baseline=args.baseline,
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    await server.start()
    try:
        await ready(url + path, ca_file, server)
        idle_rss = _rss_mb(server.process.pid) if server.process else 0.0  # started, one review answered
        load = await asyncio.create_subprocess_exec(
            *placement.taskset(placement.others),
            sys.executable, "-m", "benchmarks.admission_load", "generate", "--url", url + path,
            "--ca-file", str(ca_file), "--body-file", str(args.review),
            "--connections", str(args.connections),
            "--duration", str(args.duration), "--warmup", str(args.warmup), "--rate", str(args.rate),
            "--server-pid", str(server.process.pid if server.process else 0),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await load.communicate()
        if load.returncode != 0:
            raise RuntimeError(f"the load generator failed ({load.returncode})")
        result: dict[str, Any] = json.loads(out)
        result["server_rss_mb"] = _rss_mb(server.process.pid) if server.process else 0.0
        result["server_idle_rss_mb"] = idle_rss
    finally:
        await server.stop(grace=15)
    return {"mode": mode, **result}


def _rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (/proc/<pid>/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _summary(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Medians per mode over the rounds; per round ratios against the bare handler, and tracing's cost."""
    keys = ("rps", "p50_ms", "p95_ms", "p99_ms", "server_cpu_us_per_request", "server_rss_mb",
            "server_idle_rss_mb")  # fmt: skip
    by_mode: dict[str, dict[str, float]] = {}
    for mode in MODES:
        mine = [r for r in rounds if r["mode"] == mode]
        if mine:
            by_mode[mode] = {k: round(statistics.median(r[k] for r in mine), 2) for k in keys}
            by_mode[mode]["errors"] = sum(r["errors"] for r in mine)
    # Ratios are taken within a round (the same minute of a noisy machine), then the median over rounds.
    per_round: dict[int, dict[str, float]] = {}
    for r in rounds:
        per_round.setdefault(r["round"], {})[r["mode"]] = r["server_cpu_us_per_request"]
    for floor, key in FLOORS.items():
        for mode in MODES:
            ratios = [cpu[mode] / cpu[floor] for cpu in per_round.values() if cpu.get(floor) and mode in cpu]
            if ratios and mode != floor:
                by_mode[mode][key] = round(statistics.median(ratios), 2)
                by_mode[mode][f"{key}_min"] = round(min(ratios), 2)
                by_mode[mode][f"{key}_max"] = round(max(ratios), 2)
    if "off" in by_mode and "on" in by_mode:

        def change(key: str) -> float:
            off, on = by_mode["off"][key], by_mode["on"][key]
            return round((on - off) / off * 100, 1) if off else 0.0

        by_mode["change"] = {
            "rps_percent": change("rps"),
            "p50_percent": change("p50_ms"),
            "p95_percent": change("p95_ms"),
            "cpu_per_request_percent": change("server_cpu_us_per_request"),
        }
    return by_mode


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    placement = Placement.for_machine(pin=args.pin)
    modes = [m for m in args.modes.split(",") if m]
    if unknown := set(modes) - set(MODES):
        raise SystemExit(f"unknown modes {sorted(unknown)}; known: {', '.join(MODES)}")
    with tempfile.TemporaryDirectory(prefix="driftwarden-bench-") as tmp:
        work = Path(tmp)
        files = await asyncio.to_thread(serving_files, work)
        async with contextlib.AsyncExitStack() as stack:
            jaeger = None
            if "on" in modes:
                jaeger = await stack.enter_async_context(Jaeger(find_jaeger(environment()), work / "jaeger"))
                if placement.others and jaeger.process.process is not None:
                    placement.pin(jaeger.process.process.pid)
            rounds = []
            for number in range(args.rounds):
                # Every other round in reverse: a machine that slows down (or speeds up) favours no mode.
                for mode in modes if number % 2 == 0 else modes[::-1]:
                    otel = jaeger.otel_env() if mode == "on" and jaeger else {}
                    result = await _round(mode, work, files, otel, args, placement=placement)
                    result["round"] = number + 1
                    print(f"round {number + 1} {mode:4}: {json.dumps(result)}", flush=True)
                    rounds.append(result)
            if jaeger is not None and not await jaeger.traces("driftwarden-webhook", limit=5):
                raise RuntimeError("tracing was on but Jaeger holds no webhook trace")
    keys = ("connections", "duration", "warmup", "rounds", "rate")
    settings: dict[str, Any] = {k: getattr(args, k) for k in keys}
    settings["modes"] = modes
    review = args.review.resolve()
    settings["review"] = str(review.relative_to(ROOT) if review.is_relative_to(ROOT) else review)
    settings["review_bytes"] = len(compact(args.review))
    settings["placement"] = {"webhook": placement.webhook, "others": placement.others}
    return {"settings": settings, "rounds": rounds, "summary": _summary(rounds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.admission_load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per round")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds sent but not measured")
    parser.add_argument(
        "--rounds", type=int, default=6, help="rounds of (off, on), every other one in reverse order"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the webhook alone on the first CPU, the load generator and Jaeger on the others (default: the "
        "scheduler places them)",
    )
    parser.add_argument(
        "--modes", default="off,on,bare", help=f"comma-separated servers to compare, of {', '.join(MODES)}"
    )
    parser.add_argument("--rate", type=float, default=0.0, help="steady reviews/s (default: saturate)")
    parser.add_argument("--baseline", type=Path, help="a checkout whose webhook mode base runs (a before)")
    parser.add_argument("--review", type=Path, default=REVIEW, help="the AdmissionReview body posted")
    parser.add_argument("--json", type=Path, help="also write the results here")
    sub = parser.add_subparsers(dest="command")
    gen = sub.add_parser("generate", help="the load generator (run by the benchmark itself)")
    gen.add_argument("--url", required=True)
    gen.add_argument("--ca-file", type=Path, required=True)
    gen.add_argument("--body-file", type=Path, required=True)
    gen.add_argument("--connections", type=int, default=32)
    gen.add_argument("--duration", type=float, default=20.0)
    gen.add_argument("--warmup", type=float, default=3.0)
    gen.add_argument("--server-pid", type=int, default=0, help="also measure this process's CPU per request")
    gen.add_argument("--rate", type=float, default=0.0, help="steady reviews/s (default: saturate)")
    args = parser.parse_args(argv)
    if args.command == "generate":
        ca_pem, body = args.ca_file.read_text(), compact(args.body_file)
        result = asyncio.run(generate(args.url, ca_pem, body, connections=args.connections,
                                      duration=args.duration, warmup=args.warmup,
                                      server_pid=args.server_pid or None, rate=args.rate))  # fmt: skip
        print(json.dumps(result))
        return 0
    report = asyncio.run(bench(args))
    summary = report["summary"]
    for mode in report["settings"]["modes"]:
        figures = summary[mode]
        ratio = "".join(
            f", {figures[key]}x {floor}" for floor, key in FLOORS.items() if key in figures
        )  # fmt: skip
        print(f"{mode:6}: {figures['rps']:.0f} req/s, p50 {figures['p50_ms']} ms, "
              f"p99 {figures['p99_ms']} ms, "
              f"server CPU {figures['server_cpu_us_per_request']} us/review{ratio}")  # fmt: skip
    if change := summary.get("change"):
        print(f"tracing on vs off: throughput {change['rps_percent']:+}%, p50 {change['p50_percent']:+}%, "
              f"p95 {change['p95_percent']:+}%, "
              f"server CPU per request {change['cpu_per_request_percent']:+}%")  # fmt: skip
    write_json(args.json, report)
    return 0


def write_json(path: Path | None, report: Mapping[str, Any]) -> None:
    """Write ``report`` to ``path`` (benchmarks/results/*.json, which benchmarks.report reads), if given."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
