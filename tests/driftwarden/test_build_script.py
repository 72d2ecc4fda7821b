"""tools/build-control-plane.sh: cache hits return at once; without Go it names what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devtools.controlplane.binaries import BINARY_NAMES, cache_dir

SCRIPT = Path(__file__).parents[2] / "tools" / "build-control-plane.sh"


def _run(cache: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "HOME": str(cache), "DRIFTWARDEN_CACHE": str(cache)}
    bash = shutil.which("bash") or "/bin/bash"  # the test's own PATH: the script's PATH lacks Go
    return subprocess.run(
        [bash, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _bin_dir_without_go(tmp: Path) -> str:
    """A PATH with the basic tools the script needs but no ``go``."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for tool in ("awk", "cat", "cut", "date", "dirname", "mkdir", "sha256sum", "mv", "rm", "sleep"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_the_script_and_the_python_side_agree_on_the_cache_directory(tmp_path: Path) -> None:
    env = {**os.environ, "DRIFTWARDEN_CACHE": str(tmp_path)}
    printed = subprocess.run(["bash", str(SCRIPT), "--print-dir"], env=env, capture_output=True, text=True,
                             check=True).stdout.strip()  # fmt: skip
    assert Path(printed) == cache_dir(tmp_path)


def test_cached_binaries_are_reused_without_building(tmp_path: Path) -> None:
    target = cache_dir(tmp_path)
    target.mkdir(parents=True)
    for name in BINARY_NAMES:
        (target / name).write_text("#!/bin/sh\n")
        (target / name).chmod(0o755)
    result = _run(tmp_path, _bin_dir_without_go(tmp_path))  # no Go needed when cached
    assert result.returncode == 0, result.stderr
    assert f"cached in {target}" in result.stdout


def test_without_go_the_error_says_so(tmp_path: Path) -> None:
    result = _run(tmp_path, _bin_dir_without_go(tmp_path))
    assert result.returncode == 2
    assert "Go toolchain" in result.stderr and "'go' is not on PATH" in result.stderr
