"""Flags several commands share, declared once so every command spells and documents them alike.

Registration only: this module runs when the parser is built, before any command, so it imports nothing
beyond the standard library and the kernel's plain names (``driftwarden --help`` must stay fast).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path

from driftwarden.settings import EVENT_LOOPS, LOG_FORMATS, LOG_LEVELS

Command = Callable[[argparse.Namespace, Mapping[str, str]], int]
"""What a subcommand's ``run`` default is: parsed flags and the environment snapshot in, an exit code out."""

KUBECONFIG_ORDER = "$KUBECONFIG, else the pod's service account when in a pod, else ~/.kube/config"


def kube_flags(parser: argparse.ArgumentParser) -> None:
    """``--kubeconfig`` and ``--context``, resolved as kubectl does (driftwarden.settings.kube_access)."""
    parser.add_argument("--kubeconfig", type=Path, help=f"kubeconfig file (default: {KUBECONFIG_ORDER})")
    parser.add_argument("--context", help="kubeconfig context to use (default: its current context)")


def log_flags(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--log-format`` of the long-running processes (driftwarden.logs)."""
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS, help="(default %(default)s)")
    parser.add_argument(
        "--log-format",
        default="text",
        choices=LOG_FORMATS,
        help="text lines, or one JSON object per line for a log collector (default %(default)s)",
    )


def event_loop_flag(parser: argparse.ArgumentParser) -> None:
    """``--event-loop`` of the serving processes (driftwarden.eventloop; resolved by settings.event_loop)."""
    parser.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        help="the event loop to run on: uvloop or asyncio's own (default: $DRIFTWARDEN_EVENT_LOOP, else "
        "uvloop; docs/benchmarks.md compares them)",
    )
