"""Fixtures for every test: one real control plane per session, real users, real Git repositories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from devtools.controlplane import ControlPlane, ControlPlaneSettings
from driftwarden.settings import control_plane_bin_dir, environment, kwok_bin_dir
from tests.support.clients import Clients
from tests.support.gitrepo import GitRepo, make_repo

# Properties must hold, not run fast: on a shared 2-core machine Hypothesis's timing checks (a 200 ms
# deadline per example, "input generation is slow") fail for reasons that say nothing about the code.
# Derandomized, so CI explores the same examples on every run: a failure there is reproducible, and a
# counterexample found while developing is kept as an @example.
settings.register_profile(
    "driftwarden", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile("driftwarden")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak", type=float, default=0.0, metavar="SECONDS",
        help="run the soak tests (marked soak) for this long each; without it they are deselected",
    )  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soak tests run only with --soak: deselected otherwise (counted in the summary, never skipped)."""
    if config.getoption("--soak"):
        return
    soak = [item for item in items if item.get_closest_marker("soak") is not None]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [item for item in items if item.get_closest_marker("soak") is None]


@pytest.fixture(scope="session")
def control_plane_settings(tmp_path_factory: pytest.TempPathFactory) -> ControlPlaneSettings:
    env = environment()
    return ControlPlaneSettings(
        bin_dir=control_plane_bin_dir(env),
        work_dir=tmp_path_factory.mktemp("control-plane"),
        kwok_dir=kwok_bin_dir(env),
    )


@pytest.fixture(scope="session")
async def control_plane(control_plane_settings: ControlPlaneSettings) -> AsyncIterator[ControlPlane]:
    """The session's living control plane (etcd, kube-apiserver, controller manager, scheduler, kwok
    nodes); started on first use, stopped at the end of the run."""
    async with ControlPlane(control_plane_settings) as plane:
        yield plane


@pytest.fixture
async def clients(control_plane: ControlPlane) -> AsyncIterator[Clients]:
    """``await clients.user("alice")``, ``await clients.service_account(ns, name)``, ``clients.admin``."""
    made = Clients(control_plane)
    yield made
    await made.close()


@pytest.fixture
def git_repo(tmp_path: Path) -> Callable[..., GitRepo]:
    """``git_repo({"apps/web/cm.yaml": "..."})`` makes a real repository on disk with that first commit."""
    counter = iter(range(1000))

    def make(files: Mapping[str, str], *, name: str | None = None) -> GitRepo:
        return make_repo(tmp_path / (name or f"repo-{next(counter)}"), files)

    return make
