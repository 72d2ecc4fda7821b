"""CLI start-up benchmark: how long ``driftwarden --help`` takes, and ``app get`` until its first API request.

Part of ``make bench`` (a benchmark, not a test). Each round starts the real ``driftwarden`` console script
as a new process, as a user's shell does:

- ``driftwarden --help``: wall time until the process exits;
- ``driftwarden app get NAME``: wall time until the API server named by its kubeconfig sees the client's TCP
  connection, which is where start-up ends and talking to the cluster begins. The "server" is a listener of
  this module that notes the moment and closes the connection (the command then fails, which is not timed);
  no request is answered, so no API server is imitated;
- the floor under the second figure: a bare ``python -c "import kubernetes_asyncio"``, which any command
  that talks to the cluster pays (the client imports its generated API and model classes, and aiohttp).

It prints the minimum and median of ``--rounds`` rounds of each (the minimum is the figure least disturbed by
whatever else the machine runs), and with ``--importtime`` the modules ``python -X importtime`` says the
``--help`` start-up spends most on. Everything runs on 127.0.0.1 and stops by itself.

    python -m benchmarks.cli_startup [--rounds 15] [--importtime] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from certs.pki import new_ca
from devtools.controlplane.kubeconfig import kubeconfig

ROOT = Path(__file__).resolve().parents[1]


def command() -> list[str]:
    """The console script pip installed beside this interpreter, else ``python -m cli.main``."""
    script = Path(sys.executable).parent / "driftwarden"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cli.main"]


def seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - started


def write_kubeconfig(directory: Path, port: int) -> Path:
    """A token kubeconfig for https://127.0.0.1:``port``, trusting a CA made for the occasion."""
    ca = new_ca("driftwarden-bench-ca", now=dt.datetime.now(dt.UTC), validity=dt.timedelta(days=1))
    config = kubeconfig(
        f"https://127.0.0.1:{port}", ca_pem=ca.cert_pem, user="bench", token="not-a-real-token"
    )
    path = directory / "bench.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


async def first_request_seconds(directory: Path) -> float:
    """Seconds from spawning ``app get`` to its first connection to the API server's address."""
    connected: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not connected.done():
            connected.set_result(time.perf_counter())
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        kubeconfig = write_kubeconfig(directory, port)
        argv = [*command(), "app", "get", "web-app", "--kubeconfig", str(kubeconfig)]
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            async with asyncio.timeout(60):
                at = await connected
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
    return at - started


def slowest_imports(count: int = 12) -> list[tuple[float, str]]:
    """The modules with the largest cumulative import time of ``driftwarden --help`` (-X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "from cli.main import main; main(['--help'])"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            found.append((int(parts[1]) / 1e6, parts[2].rstrip()))
    return sorted(found, reverse=True)[:count]


def summary(samples: list[float]) -> dict[str, float]:
    return {"min_s": round(min(samples), 3), "median_s": round(statistics.median(samples), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=15, help="rounds of each measurement (default %(default)s)"
    )
    parser.add_argument("--importtime", action="store_true", help="also list the slowest imports of --help")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    help_times, request_times, floor_times = [], [], []
    with tempfile.TemporaryDirectory(prefix="dw-cli-bench-") as work:
        for _ in range(args.rounds):  # interleaved, so a busy moment of the machine hits all three alike
            help_times.append(seconds([*command(), "--help"]))
            request_times.append(asyncio.run(first_request_seconds(Path(work))))
            floor_times.append(seconds([sys.executable, "-c", "import kubernetes_asyncio"]))
    figures: dict[str, Any] = {
        "rounds": args.rounds,
        "help": summary(help_times),
        "app_get_first_request": summary(request_times),
        "import_kubernetes_asyncio": summary(floor_times),
    }
    for what, key in (
        ("driftwarden --help", "help"),
        ("driftwarden app get, to its first request", "app_get_first_request"),
        ('floor: python -c "import kubernetes_asyncio"', "import_kubernetes_asyncio"),
    ):
        print(f"{what}: min {figures[key]['min_s']:.3f} s, median {figures[key]['median_s']:.3f} s")
    if args.importtime:
        print("slowest imports of --help (cumulative, -X importtime):")
        for took, module in slowest_imports():
            print(f"  {took:6.3f} s  {module.strip()}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
