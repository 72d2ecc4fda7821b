"""`driftwarden up` runs a living control plane until Ctrl-C, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from devtools.controlplane import ControlPlane
from tests.support.processes import processes_mentioning

pytestmark = pytest.mark.cluster


async def _read_until(stream: asyncio.StreamReader, marker: str) -> list[str]:
    lines: list[str] = []
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError(f"driftwarden up ended before printing {marker!r}: {lines}")
        lines.append(raw.decode().rstrip())
        if marker in lines[-1]:
            return lines


async def test_up_serves_until_interrupted_and_stops_everything(
    tmp_path: Path, control_plane: ControlPlane
) -> None:
    work = tmp_path / "up"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "up", "--work-dir", str(work),
        "--bin-dir", str(control_plane.settings.bin_dir), "--kwok-dir", str(control_plane.settings.kwok_dir),
        "--user", "alice",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(120):
            lines = await _read_until(proc.stdout, "press Ctrl-C")
        kubeconfig = next(line.split(": ", 1)[1] for line in lines if line.startswith("kubeconfig"))
        assert Path(kubeconfig).is_file()
        # etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
        assert len(processes_mentioning(str(work), ignore="cli.main")) == 5
        running = next(line for line in lines if line.startswith("running: "))
        assert running == "running: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok"
        assert "kubectl create rolebinding alice-edit --clusterrole=edit --user=alice" in "\n".join(lines)

        kubectl = await asyncio.create_subprocess_exec(
            str(control_plane.binaries.kubectl), "--kubeconfig", kubeconfig, "get", "ns", "default",
            "-o", "jsonpath={.status.phase}", stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await kubectl.communicate()
        assert kubectl.returncode == 0
        assert out.decode() == "Active"
        alice = next(line.split(": ", 1)[1] for line in lines if line.startswith("kubeconfig (alice"))
        assert Path(alice).is_file()

        nodes = await asyncio.create_subprocess_exec(
            str(control_plane.binaries.kubectl), "--kubeconfig", kubeconfig, "get", "nodes",
            "-o", "jsonpath={.items[*].metadata.name}", stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await nodes.communicate()
        assert sorted(out.decode().split()) == ["kwok-node-0", "kwok-node-1"]

        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, rest.decode()
    assert "stopped" in rest.decode()
    assert processes_mentioning(str(work), ignore="cli.main") == []
