"""Run a driftwarden command with tracemalloc on, and write where its memory is on SIGUSR1 (benchmarks).

Benchmark instrument only (``python -m benchmarks.auditor_memory --heap DIR``): the command line is the
CLI's own (``python -m benchmarks.heapdump OUT -- auditor run ...``); nothing is read from the
environment and nothing in driftwarden knows about it. On SIGUSR1 it writes ``OUT``: the memory
tracemalloc traces (current and peak), the top lines by retained size, the top files, and the count of
live objects by type from the garbage collector. Tracing costs CPU and some memory of its own (about
a third more here): figures from a traced run say *where* memory is, not how much RSS an untraced run has.

    python -m benchmarks.heapdump OUT [--frames 1] -- COMMAND...
"""

from __future__ import annotations

import collections
import gc
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

TOP = 40


def report(out: Path) -> None:
    """Write the traced memory, the top lines and files, and live objects by type to ``out``."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>")]
    )
    current, peak = tracemalloc.get_traced_memory()
    lines = [f"traced: {current / 2**20:.1f} MiB now, {peak / 2**20:.1f} MiB peak", "", "top lines:"]
    for stat in snapshot.statistics("lineno")[:TOP]:
        frame = stat.traceback[0]
        lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:9d} blocks  {frame.filename}:{frame.lineno}")
    lines += ["", "top files:"]
    for stat in snapshot.statistics("filename")[:TOP]:
        lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:9d} blocks  {stat.traceback[0].filename}")
    counts = collections.Counter(type(obj).__name__ for obj in gc.get_objects())
    lines += ["", "live objects the collector tracks, by type:"]
    lines += [f"{count:9d}  {name}" for name, count in counts.most_common(TOP)]
    out.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    out, rest = Path(argv[0]), argv[1:]
    frames = 1
    if rest[:1] == ["--frames"]:
        frames, rest = int(rest[1]), rest[2:]
    command = rest[1:] if rest[:1] == ["--"] else rest
    tracemalloc.start(frames)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        report(out)

    signal.signal(signal.SIGUSR1, on_signal)
    from cli.main import main as cli_main  # noqa: PLC0415  # imported under tracing: its modules count too

    return cli_main(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
