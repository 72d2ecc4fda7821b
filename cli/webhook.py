"""``driftwarden webhook serve|install|uninstall``: flags → settings → the webhook package.

Flags and output only: ``serve`` builds the frozen settings once, sets up logging and hands them to the
webhook's composition root (webhook.process) until SIGINT/SIGTERM; ``install``/``uninstall`` apply or
delete the webhook configurations (webhook.registration, webhook.install).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from driftwarden import contract
from driftwarden.kube.client import api_client
from driftwarden.signals import stop_on_signals
from webhook.admission.profiles import PROFILES, get_profile
from webhook.admission.settings import make_settings
from webhook.install import install, uninstall
from webhook.process import WebhookSettings, serve
from webhook.registration import Endpoint, mutating_configuration, selection_for, validating_configuration
from webhook.server import ServerSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("webhook", help="the admission webhook: serve it, install its configurations")
    commands = parser.add_subparsers(title="webhook commands", metavar="COMMAND", required=True)
    _register_serve(commands)
    _register_install(commands)
    remove = commands.add_parser("uninstall", help="delete the webhook configurations (ends any lockout)")
    _kube_flags(remove)
    remove.set_defaults(run=run_uninstall)


def _decision_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        default="driftwarden",
        choices=sorted(PROFILES),
        help="whose objects to guard: driftwarden's own, Argo CD's or Flux's (default %(default)s)",
    )
    parser.add_argument(
        "--gitops-user",
        action="append",
        default=None,
        metavar="USER",
        help="identity allowed to change managed objects (repeatable; default: the profile's "
        "controller, for driftwarden system:serviceaccount:<install-namespace>:driftwarden-auditor)",
    )
    parser.add_argument("--install-namespace", default=contract.DEFAULT_INSTALL_NAMESPACE,
                        help="namespace of the auditor's service account (default %(default)s)")  # fmt: skip


def _gitops_users(args: argparse.Namespace) -> list[str]:
    if args.gitops_user:
        return list(args.gitops_user)
    if args.profile == "driftwarden":
        return [contract.auditor_identity(args.install_namespace)]
    return sorted(get_profile(args.profile).default_identities)


def _register_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve /validate and /mutate over HTTPS",
        description="Serve the admission webhook over HTTPS (TLS 1.2+). The certificate and key are "
        "reloaded when they change on disk. GET /metrics serves Prometheus metrics on the same port. Traces "
        "and metrics follow the standard OTEL_* variables.",
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default %(default)s)")
    serve.add_argument("--port", type=int, default=8443, help="port to listen on (default %(default)s)")
    serve.add_argument("--tls-cert-file", type=Path, required=True, help="PEM serving certificate")
    serve.add_argument("--tls-key-file", type=Path, required=True, help="PEM private key")
    _decision_flags(serve)
    serve.add_argument(
        "--breakglass-user",
        action="append",
        default=[],
        metavar="USER",
        help="user allowed through with a warning and an audit annotation (repeatable)",
    )
    serve.add_argument(
        "--breakglass-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="group allowed through with a warning and an audit annotation (repeatable)",
    )
    serve.add_argument(
        "--default-mode",
        default="enforce",
        choices=contract.GUARD_MODES,
        help="mode for objects without a driftwarden.io/guard annotation (default %(default)s)",
    )
    serve.add_argument(
        "--strict",
        action="store_true",
        help="treat any out-of-band change to a managed object as a violation, owned by Git or not",
    )
    serve.add_argument("--console-traces", action="store_true", help="also print spans to stdout")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(run=run_serve)  # fmt: skip


def run_serve(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
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
            cert_file=args.tls_cert_file, key_file=args.tls_key_file, host=args.host, port=args.port
        ),
        telemetry_env=env,
        console_traces=args.console_traces,
    )

    async def serve_until_signalled() -> None:
        with stop_on_signals() as stop:
            await serve(settings, stop=stop)

    asyncio.run(serve_until_signalled())
    return 0


def _kube_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: in-cluster credentials)")
    parser.add_argument("--context", help="kubeconfig context to use")


def _register_install(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inst = commands.add_parser(
        "install",
        help="apply the Validating and Mutating webhook configurations",
        description="Apply driftwarden's ValidatingWebhookConfiguration and MutatingWebhookConfiguration, "
        "pointing the API server at --url (outside the cluster) or --service (inside it), "
        "trusting --ca-file.",
    )
    where = inst.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="base URL the API server calls, e.g. https://127.0.0.1:8443")
    where.add_argument("--service", metavar="NAMESPACE/NAME", help="in-cluster Service of the webhook")
    inst.add_argument(
        "--ca-file", type=Path, required=True, help="PEM CA bundle that signed the serving certificate"
    )
    inst.add_argument(
        "--timeout-seconds", type=int, default=5, help="API server call timeout (default %(default)s)"
    )
    inst.add_argument(
        "--failure-policy",
        default="Fail",
        choices=["Fail", "Ignore"],
        help="what the API server does when the webhook cannot be reached (default %(default)s)",
    )
    inst.add_argument(
        "--exclude-namespace",
        action="append",
        default=[],
        metavar="NAMESPACE",
        help="namespace never sent to the webhook (repeatable)",
    )
    _decision_flags(inst)
    _kube_flags(inst)
    inst.set_defaults(run=run_install)  # fmt: skip


def run_install(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    ca = args.ca_file.read_bytes()
    if args.url:
        endpoint = Endpoint(ca_bundle=ca, url=args.url)
    else:
        namespace, _, name = args.service.partition("/")
        endpoint = Endpoint(ca_bundle=ca, service_namespace=namespace, service_name=name)
    selection = selection_for(
        get_profile(args.profile),
        skip_users=_gitops_users(args),
        excluded_namespaces=args.exclude_namespace,
        timeout_seconds=args.timeout_seconds,
        failure_policy=args.failure_policy,
    )
    validating = validating_configuration(endpoint=endpoint, selection=selection)
    mutating = mutating_configuration(endpoint=endpoint, selection=selection)

    async def apply() -> None:
        async with await api_client(kubeconfig=args.kubeconfig, context=args.context) as api:
            await install(api, validating=validating, mutating=mutating)

    asyncio.run(apply())
    print(f"installed {validating['metadata']['name']} and {mutating['metadata']['name']}")
    return 0


def run_uninstall(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    async def remove() -> None:
        async with await api_client(kubeconfig=args.kubeconfig, context=args.context) as api:
            await uninstall(api)

    asyncio.run(remove())
    print("webhook configurations deleted")
    return 0
