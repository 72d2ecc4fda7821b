"""``driftwarden auditor run``: flags → frozen settings → ``auditor.process.run`` → exit code.

The command line only: it declares the flags (those of leader election, the push webhook and
notifications are in ``cli.auditorrun``), builds the frozen ``ProcessSettings`` once and sets up logging.
Everything the running process does (telemetry, the API client, the loop, the servers, stopping on
SIGINT/SIGTERM) is ``auditor.process``'s; this module must not start or connect anything itself.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path

from auditor import process
from auditor.process import ProcessSettings
from auditor.settings import AuditorSettings
from auditor.source.renderers import RenderTools
from cli.auditorrun import add_flags, options_from
from driftwarden import contract
from driftwarden.settings import cache_root, helm_path, kubectl_path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("auditor", help="the drift auditor: keep Applications equal to Git")
    commands = parser.add_subparsers(title="auditor commands", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="reconcile every Application until interrupted",
        description="Watch Applications and keep each one reconciled: resolve its Git revision, render it, "
        "compare it with the cluster by server-side-apply dry runs, and sync per its syncPolicy. Git is "
        "polled every --poll-interval seconds; a spec change reconciles at once.",
    )
    run.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: in-cluster credentials)")
    run.add_argument("--context", help="kubeconfig context to use")
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
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_flags(run)
    run.set_defaults(run=run_auditor)  # fmt: skip


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> AuditorSettings:
    tools = RenderTools(
        kubectl=kubectl_path(env, explicit=args.kubectl),
        helm=helm_path(env, explicit=args.helm),
    )
    return AuditorSettings(
        git_cache=args.git_cache or cache_root(env) / "git",
        tools=tools,
        install_namespace=args.install_namespace,
        poll_interval=args.poll_interval,
    )


def process_settings(args: argparse.Namespace, env: Mapping[str, str]) -> ProcessSettings:
    """Every setting of ``auditor run``, checked before anything starts (ConfigError when invalid)."""
    return ProcessSettings(
        auditor=settings_from(args, env),
        serve=options_from(args, env),
        kubeconfig=args.kubeconfig,
        context=args.context,
        metrics_port=args.metrics_port,
        console_traces=args.console_traces,
    )


def run_auditor(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return process.run(process_settings(args, env), env)
