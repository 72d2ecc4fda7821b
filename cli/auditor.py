"""``driftwarden auditor run``: the flags and help of the auditor.

Registration only, run whenever the parser is built: it declares the flags (those of leader election, the
push webhook and notifications in their own groups) and imports nothing heavy. Building the frozen
settings and running the process are ``cli.auditorrun``'s, imported when ``auditor run`` runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from cli.flags import event_loop_flag, kube_flags, log_flags
from driftwarden import contract


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("auditor", help="the drift auditor: keep Applications equal to Git")
    commands = parser.add_subparsers(title="auditor commands", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="reconcile every Application until interrupted",
        description="Watch Applications and keep each one reconciled: resolve its Git revision, render it, "
        "compare it with the cluster by server-side-apply dry runs, and sync per its syncPolicy. Git is "
        "polled every --poll-interval seconds; a spec change reconciles at once. One log line per sync and "
        "per heal at INFO (--log-format json for a log collector).",
    )
    kube_flags(run)
    run.add_argument("--namespace", help="only Applications in this namespace (default: all namespaces)")
    run.add_argument(
        "--install-namespace",
        default=contract.DEFAULT_INSTALL_NAMESPACE,
        help="namespace of repository credential Secrets (default %(default)s)",
    )
    run.add_argument("--git-cache", type=Path, help="directory of Git mirrors (default: <cache>/git)")
    run.add_argument(
        "--poll-interval",
        type=float,
        default=120.0,
        help="seconds between Git polls of each Application (default %(default)s)",
    )
    run.add_argument(
        "--wave-timeout",
        type=float,
        default=300.0,
        help="seconds a sync waits for a wave to become healthy and its hooks to end (default %(default)s)",
    )
    run.add_argument(
        "--kubectl", type=Path, help="kubectl used for Kustomize (default: the build cache, then PATH)"
    )
    run.add_argument("--helm", type=Path, help="helm binary (default: the build cache, then PATH)")
    run.add_argument("--console-traces", action="store_true", help="also print spans to stdout")
    run.add_argument(
        "--metrics-port",
        type=int,
        default=8081,
        help="port of the plain-HTTP Prometheus /metrics server, 0 for none (default %(default)s)",
    )
    log_flags(run)
    event_loop_flag(run)
    add_flags(run)
    run.set_defaults(run=run_command)


def add_flags(run: argparse.ArgumentParser) -> None:
    """The leader-election, push-webhook and notification flags of ``auditor run``."""
    elect = run.add_argument_group("leader election (one replica reconciles, the others stand by)")
    elect.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                       help="hold a Lease before reconciling (default: on)")  # fmt: skip
    elect.add_argument(
        "--leader-election-namespace", help="the Lease's namespace (default: --install-namespace)"
    )
    elect.add_argument("--leader-id", help="this replica's identity (default: host name + random suffix)")
    elect.add_argument("--lease-duration", type=int, default=15, help="seconds before a standby takes over "
                       "a silent leader (default %(default)s)")  # fmt: skip
    elect.add_argument("--renew-deadline", type=float, help="seconds the leader may fail to renew before it "
                       "steps down (default: 2/3 of --lease-duration)")  # fmt: skip
    elect.add_argument("--retry-period", type=float, help="seconds between lease renewals and acquire "
                       "attempts (default: --lease-duration / 7.5)")  # fmt: skip
    hook = run.add_argument_group("Git push webhook (POST /api/webhook)")
    hook.add_argument("--webhook-port", type=int, help="serve the push webhook on this port (default: off)")
    hook.add_argument("--webhook-host", default="0.0.0.0", help="address to listen on (default %(default)s)")
    hook.add_argument("--webhook-secret-file", type=Path,
                      help="file with the shared secret (default: $DRIFTWARDEN_WEBHOOK_SECRET)")  # fmt: skip
    hook.add_argument("--webhook-tls-cert", type=Path, help="PEM certificate: serve HTTPS instead of HTTP")
    hook.add_argument("--webhook-tls-key", type=Path, help="PEM private key of --webhook-tls-cert")
    note = run.add_argument_group("notifications (Slack-compatible incoming webhook)")
    where = note.add_mutually_exclusive_group()
    where.add_argument("--notify-url", help="POST sync failures, degradations and heals here (default: off)")
    where.add_argument("--notify-url-file", type=Path, help="file holding the URL (it is a credential)")
    note.add_argument("--notify-blocks", action="store_true", help="also send Slack blocks, not only text")


def run_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run ``auditor run``; its module is imported only now (start-up time)."""
    from cli import auditorrun  # noqa: PLC0415  # the auditor, GitPython, telemetry: only when it runs

    return auditorrun.run_auditor(args, env)
