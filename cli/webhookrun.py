"""What ``driftwarden webhook serve|install|uninstall`` do: flags (``cli.webhook``) → settings → the webhook.

Orchestration only, imported when a webhook command runs: ``serve`` builds the frozen settings once, sets
up logging (driftwarden.logs) and hands them to the webhook's composition root (webhook.process) until
SIGINT/SIGTERM; ``install`` checks that a ``--url`` answers (driftwarden.probe) and applies the webhook
configurations, ``uninstall`` deletes them (webhook.registration, webhook.install), both with kubectl's
credentials (cli.kube).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping

from cli.flags import Command
from driftwarden import contract, eventloop, logs
from driftwarden.connections import ConnectionLimits
from driftwarden.errors import ConfigError, DriftwardenError
from driftwarden.probe import check_answers
from driftwarden.settings import event_loop
from driftwarden.signals import stop_on_signals
from webhook.admission.profiles import get_profile
from webhook.admission.settings import make_settings
from webhook.process import WebhookSettings, serve
from webhook.registration import Endpoint, mutating_configuration, selection_for, validating_configuration
from webhook.server import ServerSettings


def _gitops_users(args: argparse.Namespace) -> list[str]:
    if args.gitops_user:
        return list(args.gitops_user)
    if args.profile == "driftwarden":
        return [contract.auditor_identity(args.install_namespace)]
    return sorted(get_profile(args.profile).default_identities)


def run_serve(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    loop = event_loop(env, explicit=args.event_loop)
    logs.configure(level=args.log_level, fmt=args.log_format)
    settings = WebhookSettings(
        decision=make_settings(
            profile=args.profile,
            gitops_identities=_gitops_users(args),
            breakglass_users=args.breakglass_user,
            breakglass_groups=args.breakglass_group,
            default_mode=args.default_mode,
            strict=args.strict,
        ),
        server=ServerSettings(
            cert_file=args.tls_cert_file,
            key_file=args.tls_key_file,
            host=args.host,
            port=args.port,
            client_ca_file=args.client_ca_file,
            metrics_port=args.metrics_port or None,
            limits=ConnectionLimits(max_connections=args.max_connections, idle_timeout=args.idle_timeout),
        ),
        telemetry_env=env,
        console_traces=args.console_traces,
    )

    async def serve_until_signalled() -> None:
        with stop_on_signals() as stop:
            await serve(settings, stop=stop)

    eventloop.run(serve_until_signalled(), loop=loop)
    return 0


def _check(url: str, ca: bytes, *, timeout: float, failure_policy: str) -> None:
    """ConfigError unless ``url`` answers over TLS verified with ``ca``: what the API server will need."""
    try:
        asyncio.run(check_answers(url, ca, within=timeout))
    except DriftwardenError as exc:
        stake = (
            "with failurePolicy Fail the API server would refuse every write to managed objects"
            if failure_policy == "Fail"
            else "with failurePolicy Ignore edits to managed objects would go through unguarded"
        )
        raise ConfigError(
            f"not installing: {exc}; {stake}. Start the webhook first (driftwarden webhook serve), check "
            "--url and --ca-file, or pass --skip-check to install anyway"
        ) from exc


def _excluded_namespaces(args: argparse.Namespace) -> list[str]:
    """kube-system and the install namespace always, as the manifests do: with failurePolicy Fail and the
    webhook down, the control plane and driftwarden's own Deployment, Secrets and Applications can still be
    repaired (issue 18); then any ``--exclude-namespace``."""
    always = ["kube-system", args.install_namespace]
    return always + [ns for ns in args.exclude_namespace if ns not in always]


def run_install(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    try:
        ca = args.ca_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read --ca-file {args.ca_file}: {exc.strerror or exc}") from exc
    if args.url:
        if not args.skip_check:
            _check(args.url, ca, timeout=args.timeout_seconds, failure_policy=args.failure_policy)
        endpoint = Endpoint(ca_bundle=ca, url=args.url)
    else:
        namespace, _, name = args.service.partition("/")
        endpoint = Endpoint(ca_bundle=ca, service_namespace=namespace, service_name=name)
    selection = selection_for(
        get_profile(args.profile),
        skip_users=_gitops_users(args),
        excluded_namespaces=_excluded_namespaces(args),
        timeout_seconds=args.timeout_seconds,
        failure_policy=args.failure_policy,
        default_mode=args.default_mode,
        breakglass_users=args.breakglass_user,
        breakglass_groups=args.breakglass_group,
    )
    validating = validating_configuration(endpoint=endpoint, selection=selection)
    mutating = mutating_configuration(endpoint=endpoint, selection=selection)

    async def apply() -> None:
        # The Kubernetes client is imported by install and uninstall only: serve never calls the API, and
        # the client is about 37 MB of a serving process's memory (docs/benchmarks.md, "Memory").
        from cli.kube import connect  # noqa: PLC0415
        from webhook.install import install  # noqa: PLC0415

        async with connect(args, env) as api:
            await install(api, validating=validating, mutating=mutating)

    asyncio.run(apply())
    print(f"installed {validating['metadata']['name']} and {mutating['metadata']['name']}")
    return 0


def run_uninstall(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    async def remove() -> None:
        from cli.kube import connect  # noqa: PLC0415  # as in run_install
        from webhook.install import uninstall  # noqa: PLC0415

        async with connect(args, env) as api:
            await uninstall(api)

    asyncio.run(remove())
    print("webhook configurations deleted")
    return 0


COMMANDS: Mapping[str, Command] = {"serve": run_serve, "install": run_install, "uninstall": run_uninstall}
