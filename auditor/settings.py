"""Settings of the auditor, built once by the entry point (CLI or test) and passed explicitly.

Pure: a frozen dataclass and its validation. It must not read the environment, files or flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from auditor.source.renderers import RenderTools
from driftwarden import contract
from driftwarden.errors import ConfigError


@dataclass(frozen=True)
class AuditorSettings:
    """What a reconcile pass needs besides the Application and the cluster."""

    git_cache: Path
    """Directory of the bare Git mirrors (kept across passes: the last good revision lives there)."""
    tools: RenderTools = field(default_factory=RenderTools)
    install_namespace: str = contract.DEFAULT_INSTALL_NAMESPACE
    """Where repository credential Secrets live (label ``driftwarden.io/secret-type=repository``)."""
    poll_interval: float = 120.0
    """Seconds between Git polls of an Application; a spec change reconciles at once."""
    retry_initial: float = 2.0
    retry_max: float = 300.0
    wave_timeout: float = 300.0
    """Seconds a sync waits for one wave's resources to become healthy and its hooks to end."""
    comparisons_at_once: int = 4
    """Applications rendered and compared at the same time (Argo CD's status processors); the others
    wait their turn. Each comparison holds every object of its Application (rendered, stamped, live), so
    this bounds the auditor's memory when many Applications start at once; a sync's waves do not wait."""

    def __post_init__(self) -> None:
        if self.poll_interval <= 0:
            raise ConfigError(f"poll interval must be positive, not {self.poll_interval}")
        if self.wave_timeout <= 0:
            raise ConfigError(f"wave timeout must be positive, not {self.wave_timeout}")
        if self.comparisons_at_once < 1:
            raise ConfigError(f"comparisons at once must be at least 1, not {self.comparisons_at_once}")
        if not 0 < self.retry_initial <= self.retry_max:
            raise ConfigError("retry backoff needs 0 < initial <= max")
