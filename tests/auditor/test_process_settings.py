"""``driftwarden auditor run``'s flags become one frozen ``ProcessSettings`` for ``auditor.process``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from auditor.process import ProcessSettings, ServeOptions
from auditor.settings import AuditorSettings
from cli.auditorrun import process_settings, settings_from
from cli.main import build_parser
from driftwarden.errors import ConfigError


def test_flags_become_frozen_process_settings(tmp_path: Path) -> None:
    (tmp_path / "kc").write_text("apiVersion: v1\nkind: Config\n")  # --kubeconfig must name a file
    args = build_parser().parse_args([
        "auditor", "run", "--kubeconfig", str(tmp_path / "kc"), "--context", "dev", "--namespace", "team",
        "--git-cache", str(tmp_path / "git"), "--poll-interval", "30", "--metrics-port", "0",
        "--no-leader-elect", "--console-traces",
    ])  # fmt: skip
    settings = process_settings(args, {})
    assert settings.serve == ServeOptions("team")
    assert (settings.kube.kubeconfigs, settings.kube.context, settings.metrics_port) == (
        (tmp_path / "kc",),
        "dev",
        0,
    )
    assert settings.console_traces
    assert (settings.auditor.git_cache, settings.auditor.poll_interval) == (tmp_path / "git", 30.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.metrics_port = 1  # type: ignore[misc]


def test_the_defaults_elect_a_leader_and_serve_metrics_with_in_cluster_credentials(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("a-token")  # in a pod: the service account's token is mounted
    pod = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "DRIFTWARDEN_SERVICE_ACCOUNT_DIR": str(tmp_path)}
    settings = process_settings(
        build_parser().parse_args(["auditor", "run"]), {"DRIFTWARDEN_CACHE": "/c", **pod}
    )
    assert isinstance(settings, ProcessSettings)
    assert settings.kube.in_cluster and settings.kube.context is None and settings.metrics_port == 8081
    assert (
        settings.serve.election is not None and settings.serve.push is None and settings.serve.notify is None
    )
    assert settings.auditor.git_cache == Path("/c/git")
    assert settings.auditor.wave_timeout == 300.0


def test_the_wave_timeout_is_a_flag_and_must_be_positive() -> None:
    args = build_parser().parse_args(["auditor", "run", "--wave-timeout", "45"])
    assert settings_from(args, {"DRIFTWARDEN_CACHE": "/c"}).wave_timeout == 45.0
    with pytest.raises(ConfigError, match="wave timeout must be positive"):
        settings_from(build_parser().parse_args(["auditor", "run", "--wave-timeout", "0"]), {})


def test_comparisons_at_once_are_bounded_and_at_least_one(tmp_path: Path) -> None:
    assert AuditorSettings(git_cache=tmp_path).comparisons_at_once == 4
    assert AuditorSettings(git_cache=tmp_path, comparisons_at_once=1).comparisons_at_once == 1
    with pytest.raises(ConfigError, match="comparisons at once must be at least 1"):
        AuditorSettings(git_cache=tmp_path, comparisons_at_once=0)
