"""``driftwarden auditor run``: flags → settings → the auditor loop, until SIGINT/SIGTERM.

Orchestration only: it builds the frozen settings once, sets up logging and telemetry, and runs
``auditor.loop.AuditorLoop`` with the API client of the given kubeconfig (or in-cluster credentials).
Leader election, the Git push webhook and notifications are wired in ``cli.auditorrun``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from opentelemetry import trace

from auditor.reconcile import Reconciler
from auditor.settings import AuditorSettings
from auditor.source.renderers import RenderTools
from cli.auditorrun import ServeOptions, add_flags, notifications, options_from, serve
from driftwarden import contract
from driftwarden.kube.client import api_client
from driftwarden.settings import cache_root, helm_path, kubectl_path
from driftwarden.signals import stop_on_signals
from driftwarden.telemetry.metrics import Instruments, metrics_server
from driftwarden.telemetry.setup import Metering, meter_provider, tracer_provider

log = logging.getLogger("driftwarden.auditor")


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


def run_auditor(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = settings_from(args, env)
    options = options_from(args, env)
    provider = tracer_provider("driftwarden-auditor", env=env, console=args.console_traces)
    metering = meter_provider("driftwarden-auditor", env=env)
    try:
        return asyncio.run(
            _serve(args, settings, options, provider.get_tracer("driftwarden.auditor"), metering)
        )
    finally:
        metering.shutdown()
        provider.shutdown()


async def _serve(
    args: argparse.Namespace,
    settings: AuditorSettings,
    options: ServeOptions,
    tracer: trace.Tracer,
    metering: Metering,
) -> int:
    with stop_on_signals() as stop:
        return await _serve_until(args, settings, options, tracer, metering, stop=stop)


async def _serve_until(
    args: argparse.Namespace,
    settings: AuditorSettings,
    options: ServeOptions,
    tracer: trace.Tracer,
    metering: Metering,
    *,
    stop: asyncio.Event,
) -> int:
    async with (
        await api_client(kubeconfig=args.kubeconfig, context=args.context, tracer=tracer) as api,
        notifications(options.notify) as notifier,
        metrics_server(metering.scrape, port=args.metrics_port) as metrics,
    ):
        instruments = Instruments.from_meter(metering.provider.get_meter("driftwarden.auditor"))
        reconciler = Reconciler(
            api, settings=settings, tracer=tracer, instruments=instruments, notifier=notifier
        )
        if metrics is not None:
            log.info("serving Prometheus metrics on %s/metrics", metrics.url)
        log.info(
            "auditor starting (namespace %s, poll every %ss, leader election %s, push webhook %s, "
            "notifications %s)", args.namespace or "*", settings.poll_interval,
            "on" if options.election else "off", "on" if options.push else "off", "on" if notifier else "off",
        )  # fmt: skip
        code = await serve(reconciler, options, stop=stop)
        log.info("auditor stopped")
    return code
