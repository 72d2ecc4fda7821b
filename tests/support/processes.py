"""Which processes are still running: the tests that start a whole stack check that nothing outlives it."""

from __future__ import annotations

import os
from pathlib import Path


def processes_mentioning(text: str, *, ignore: str | None = None) -> list[int]:
    """PIDs (not ours) whose command line contains ``text`` (a work dir is in every flag list we pass), and
    not ``ignore``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and (ignore is None or ignore not in cmdline):
            found.append(int(entry.name))
    return found
