"""Run the pinned kubectl as a real user, the way a person at a terminal would."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devtools.controlplane import ControlPlane


async def kubectl(plane: ControlPlane, kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    """``kubectl --kubeconfig <kubeconfig> <args>``: exit code, stdout, stderr (warnings land there)."""
    proc = await asyncio.create_subprocess_exec(
        str(plane.binaries.kubectl), "--kubeconfig", str(kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()
