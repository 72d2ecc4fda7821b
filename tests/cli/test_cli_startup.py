"""Start-up: building the parser imports nothing heavy, and every subcommand reaches its implementation.

The time itself is measured by benchmarks/cli_startup.py (``make bench``), not here: a timing test on a
shared machine fails for reasons that say nothing about the code. What makes ``--help`` fast is that
argparse registration imports no HTTP, Kubernetes, tracing, Git or crypto library, and that is what this
checks, in a fresh interpreter each time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("aiohttp", "kubernetes_asyncio", "opentelemetry", "git", "cryptography", "uvloop")

PROBE = """
import json, sys
from cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def modules_after(*argv: str) -> list[str]:
    """The modules a fresh ``driftwarden ARGV`` has imported by the time it exits."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "argv",
    [
        ("--help",),
        ("app", "--help"),
        ("app", "get", "--help"),
        ("webhook", "serve", "--help"),
        ("webhook", "install", "--help"),
        ("auditor", "run", "--help"),
        ("certs", "rotate", "--help"),
        ("up", "--help"),
        ("dev", "up", "--help"),
        ("demo", "--help"),
    ],
)
def test_help_imports_no_heavy_library(argv: tuple[str, ...]) -> None:
    loaded = modules_after(*argv)
    heavy = [name for name in loaded if name.split(".")[0] in HEAVY]
    assert heavy == [], f"driftwarden {' '.join(argv)} imported {heavy[:5]}"
    assert "cli.main" in loaded  # the probe did run the CLI


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every runnable subcommand: its words and its parser's defaults."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _leaves(child, (*path, name))
    if not found and "run" in parser._defaults:
        found.append((path, parser._defaults))
    return found


RUN_MODULES = {
    "app": ("cli.apprun", "cli.appsync"),
    "webhook": ("cli.webhookrun",),
    "certs": ("cli.certsrun",),
}


def test_every_subcommand_dispatches_to_a_function_of_its_run_module() -> None:
    leaves = _leaves(build_parser())
    assert len(leaves) >= 14
    for path, defaults in leaves:
        assert callable(defaults["run"]), path
        chosen = [key for key in defaults if key.endswith("_command")]
        if not chosen:  # a group of one command: its run function imports the module itself
            continue
        (key,) = chosen
        group = key.removesuffix("_command")
        commands = {}
        for module in RUN_MODULES[group]:
            commands.update(importlib.import_module(module).COMMANDS)
        assert callable(commands[defaults[key]]), path


def test_reading_an_application_imports_no_renderer_git_or_telemetry_sdk(tmp_path: Path) -> None:
    """``app get`` (the start-up benchmark's command) needs the Kubernetes client, not what a sync needs."""
    loaded = modules_after("app", "get", "web", "--kubeconfig", str(tmp_path / "missing"))
    heavy = [name for name in loaded if name.split(".")[0] in ("git", "cryptography")]
    heavy += [
        name
        for name in loaded
        if name.startswith(("opentelemetry.sdk", "auditor.source", "auditor.reconcile"))
    ]
    assert heavy == [] and "cli.apprun" in loaded and "cli.appsync" not in loaded
