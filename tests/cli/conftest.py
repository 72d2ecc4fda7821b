"""Fixtures the CLI's cluster tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.controlplane import ControlPlane
from tests.cli.test_cli_app import Cli, make_cli, prepare_cluster


@pytest.fixture
async def cli(
    control_plane: ControlPlane,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Cli:
    """``driftwarden app ...`` as admin, on a cluster with the CRD, the auditor's RBAC and account (a test
    module may define its own)."""
    await prepare_cluster(control_plane)
    return make_cli(control_plane, capsys, monkeypatch, tmp_path / "cache")
