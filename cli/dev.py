"""``driftwarden dev up``: the flags and help of the whole product on this machine (development only).

Registration only, run whenever the parser is built; the stack is ``cli.devrun``'s, imported when the command
runs (``devtools.dev`` pulls in the Kubernetes client, aiohttp and cryptography).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from devtools.dev import BREAKGLASS_GROUP
from driftwarden import contract


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser("dev", help="run the whole product on this machine (development)")
    commands = dev.add_subparsers(title="commands", metavar="COMMAND")
    up = commands.add_parser(
        "up",
        help="a local cluster with driftwarden installed and running, until Ctrl-C",
        description=(
            "Start the living local cluster (etcd, kube-apiserver, controller manager, scheduler, kwok "
            "nodes), "
            "install the CRD, namespace, service accounts and RBAC from manifests/, issue the webhook's "
            "certificates, run the webhook and install its configurations, run the auditor as its service "
            "account, start Jaeger when it is built, and create the users alice (edit) and sre (edit and "
            f"break-glass group {BREAKGLASS_GROUP}). Prints their kubeconfigs and what to try; Ctrl-C stops "
            "everything."
        ),
    )
    add_stack_flags(up)
    up.set_defaults(run=run_up)


def add_stack_flags(parser: argparse.ArgumentParser) -> None:
    """The flags ``dev up`` and ``demo`` share."""
    parser.add_argument("--work-dir", type=Path,
                        help="directory for the cluster, logs and kubeconfigs (default: <cache>/dev, "
                        "or <cache>/demo for demo; wiped at start)")  # fmt: skip
    parser.add_argument("--nodes", type=int, default=2, help="fake Nodes kwok plays (default %(default)s)")
    parser.add_argument("--no-jaeger", action="store_true", help="do not start Jaeger even if it is built")
    parser.add_argument("--default-mode", choices=contract.GUARD_MODES, default="enforce",
                        help="the webhook's mode for objects without a guard annotation "
                        "(default %(default)s)")  # fmt: skip


def run_up(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run ``dev up``; its module is imported only now (start-up time)."""
    from cli import devrun  # noqa: PLC0415  # the stack's Kubernetes client: only when it runs

    return devrun.run_up(args, env)
