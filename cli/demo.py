"""``driftwarden demo``: the flags and help of the drift-guard story (development only).

Registration only, run whenever the parser is built; the story is ``cli.demorun``'s, imported when the command
runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from cli.dev import add_stack_flags


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo",
        help="walk the drift-guard story on a local cluster, checking every step",
        description=(
            "Start the dev stack (see `driftwarden dev up --help`), make a Git repository laid out like a "
            "GitOps infrastructure repo, create Applications for it, and walk the story: sync, a denied "
            "edit, a flagged and healed edit, a deleted Service recreated, an autoscaler left alone, "
            "a break-glass edit held then released, a commit and a revert synced by the push webhook, an "
            "emptied path refused, and the "
            "edit-to-heal trace in Jaeger. Each claim is checked against the cluster; exit 1 if one fails."
        ),
    )
    add_stack_flags(demo)
    demo.add_argument(
        "--keep", action="store_true", help="after the story, keep everything running until Ctrl-C"
    )
    demo.set_defaults(run=run)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run the demo; its module is imported only now (start-up time)."""
    from cli import demorun  # noqa: PLC0415  # the stack's Kubernetes client: only when it runs

    return demorun.run(args, env)
