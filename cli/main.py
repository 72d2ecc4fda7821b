"""The ``driftwarden`` command line: parse flags, read the environment once, dispatch to a command.

Each command group registers its flags from its own module (``cli.app``, ``cli.webhook`` ...), which imports
nothing heavy; what a command does lives in a ``cli.<group>run`` module imported only when that command
runs, so ``driftwarden --help`` starts in a fraction of a second (benchmarks/cli_startup.py). This module
only wires them together and turns driftwarden's own errors into a one-line message and exit code 2
instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from cli import app, auditor, certs, demo, dev, up, webhook
from driftwarden import __version__
from driftwarden.errors import DriftwardenError
from driftwarden.settings import environment


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftwarden",
        description=(
            "Keep a Kubernetes cluster equal to Git: an admission webhook that stops out-of-band "
            "edits to Git-managed objects, and an auditor that heals drift."
        ),
    )
    parser.add_argument("--version", action="version", version=f"driftwarden {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    up.register(sub)
    dev.register(sub)
    demo.register(sub)
    app.register(sub)
    webhook.register(sub)
    auditor.register(sub)
    certs.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one command; ``env`` is the environment it sees (default: this process's, read once here)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        code: int = args.run(args, environment() if env is None else env)
    except DriftwardenError as exc:
        print(f"driftwarden: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
