"""tools/build-control-plane.sh and tools/build-kwok.sh: cache hits return at once; without Go they name
what is missing; the scripts and the Python side agree on where the binaries are."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from devtools.controlplane.binaries import BINARY_NAMES, cache_dir, find_kwok
from driftwarden.errors import ControlPlaneError
from driftwarden.settings import KWOK_VERSION, kwok_bin_dir

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


KWOK_SCRIPT = Path(__file__).parents[2] / "tools" / "build-kwok.sh"


def test_the_kwok_script_and_the_python_side_agree_on_the_cache_directory(tmp_path: Path) -> None:
    env = {**os.environ, "DRIFTWARDEN_CACHE": str(tmp_path)}
    printed = subprocess.run(["bash", str(KWOK_SCRIPT), "--print-dir"], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
    assert Path(printed) == kwok_bin_dir({"DRIFTWARDEN_CACHE": str(tmp_path)})
    assert Path(printed).name == f"kwok-{KWOK_VERSION}"


def test_cached_kwok_is_reused_and_found_without_building(tmp_path: Path) -> None:
    target = kwok_bin_dir({"DRIFTWARDEN_CACHE": str(tmp_path)})
    target.mkdir(parents=True)
    (target / "kwok").write_text("#!/bin/sh\n")
    (target / "kwok").chmod(0o755)
    (target / "stages.yaml").write_text("---\nkind: Stage\n")
    bash = shutil.which("bash") or "/bin/bash"
    env = {"PATH": _bin_dir_without_go(tmp_path), "HOME": str(tmp_path), "DRIFTWARDEN_CACHE": str(tmp_path)}
    result = subprocess.run([bash, str(KWOK_SCRIPT)], env=env, capture_output=True, text=True, timeout=60,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"cached in {target}" in result.stdout
    assert find_kwok(target).stages == target / "stages.yaml"


def test_the_projects_kwok_stages_follow_kwoks_and_are_rewritten_when_they_change(tmp_path: Path) -> None:
    """A cache made before tools/kwok/stages/ changed gets the project's stages after kwok's, once, no Go."""
    target = kwok_bin_dir({"DRIFTWARDEN_CACHE": str(tmp_path)})
    target.mkdir(parents=True)
    (target / "kwok").write_text("#!/bin/sh\n")
    (target / "kwok").chmod(0o755)
    upstream = "---\nkind: Stage\nmetadata: {name: pod-ready}\n"
    (target / "stages.yaml").write_text(upstream)
    bash = shutil.which("bash") or "/bin/bash"
    env = {"PATH": _bin_dir_without_go(tmp_path), "HOME": str(tmp_path), "DRIFTWARDEN_CACHE": str(tmp_path)}
    first = subprocess.run([bash, str(KWOK_SCRIPT)], env=env, capture_output=True, text=True, timeout=60,
                           check=False)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "stages updated" in first.stdout
    stages = (target / "stages.yaml").read_text()
    own = (KWOK_SCRIPT.parent / "kwok" / "stages" / "pod-fail.yaml").read_text()
    assert stages.startswith(upstream) and stages.endswith(own)
    assert stages.count("name: driftwarden-pod-fail") == 1
    again = subprocess.run([bash, str(KWOK_SCRIPT)], env=env, capture_output=True, text=True, timeout=60,
                           check=False)  # fmt: skip
    assert "stages updated" not in again.stdout  # nothing changed: the file is left alone
    assert (target / "stages.yaml").read_text() == stages


def test_missing_kwok_names_the_make_target(tmp_path: Path) -> None:
    with pytest.raises(ControlPlaneError, match="make kwok"):
        find_kwok(tmp_path)
