"""``driftwarden webhook serve|install|uninstall``: the flags and help of the webhook commands.

Registration only, run whenever the parser is built: it imports nothing heavy (the decision profiles are
plain data), and what each command does is ``cli.webhookrun``'s, imported when a webhook command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from cli.flags import event_loop_flag, kube_flags, log_flags
from driftwarden import contract
from driftwarden.connections import ConnectionLimits
from webhook.admission.profiles import PROFILES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("webhook", help="the admission webhook: serve it, install its configurations")
    commands = parser.add_subparsers(title="webhook commands", metavar="COMMAND", required=True)
    _register_serve(commands)
    _register_install(commands)
    remove = commands.add_parser("uninstall", help="delete the webhook configurations (ends any lockout)")
    kube_flags(remove)
    remove.set_defaults(run=run, webhook_command="uninstall")


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
    # serve decides with these; install builds from them the condition under which the API server may
    # skip the mutating call (webhook.registration.stamp_conditions): give both commands the same values.
    parser.add_argument(
        "--breakglass-user",
        action="append",
        default=[],
        metavar="USER",
        help="user allowed through with a warning and an audit annotation (repeatable; the same for "
        "serve and install)",
    )
    parser.add_argument(
        "--breakglass-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="group allowed through with a warning and an audit annotation (repeatable; the same for "
        "serve and install)",
    )
    parser.add_argument(
        "--default-mode",
        default="enforce",
        choices=contract.GUARD_MODES,
        help="mode for objects without a driftwarden.io/guard annotation (default %(default)s; the same "
        "for serve and install)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _register_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve /validate and /mutate over HTTPS",
        description="Serve the admission webhook over HTTPS (TLS 1.2+): POST /validate and /mutate only. The "
        "certificate, key and client CA are reloaded when they change on disk. /healthz, /readyz and "
        "/metrics (Prometheus) are served over plain HTTP on --metrics-port. Traces and metrics follow the "
        "standard OTEL_* variables. One log line per admission decision at INFO (--log-format json for a "
        "log collector). See docs/security.md for the limits and for caller authentication.",
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default %(default)s)")
    serve.add_argument("--port", type=int, default=8443, help="port to listen on (default %(default)s)")
    serve.add_argument("--tls-cert-file", type=Path, required=True, help="PEM serving certificate")
    serve.add_argument("--tls-key-file", type=Path, required=True, help="PEM private key")
    serve.add_argument(
        "--client-ca-file",
        type=Path,
        help="PEM CA bundle: require every caller to present a client certificate signed by it (the API "
        "server does, given an AdmissionConfiguration with webhook credentials; docs/security.md)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=8081,
        help="plain-HTTP port of /healthz, /readyz and /metrics, 0 for none (default %(default)s)",
    )
    serve.add_argument(
        "--max-connections",
        type=_positive_int,
        default=ConnectionLimits.max_connections,
        help="open connections kept on the admission port; beyond it the longest-idle one is closed "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=ConnectionLimits.idle_timeout,
        help="seconds an idle keep-alive connection is kept; keep it above the API server's 90 "
        "(default %(default)s)",
    )
    _decision_flags(serve)
    serve.add_argument(
        "--strict",
        action="store_true",
        help="treat any out-of-band change to a managed object as a violation, owned by Git or not",
    )
    serve.add_argument("--console-traces", action="store_true", help="also print spans to stdout")
    log_flags(serve)
    event_loop_flag(serve)
    serve.set_defaults(run=run, webhook_command="serve")


def _register_install(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inst = commands.add_parser(
        "install",
        help="apply the Validating and Mutating webhook configurations",
        description="Apply driftwarden's ValidatingWebhookConfiguration and MutatingWebhookConfiguration, "
        "pointing the API server at --url (outside the cluster) or --service (inside it), "
        "trusting --ca-file. A --url is checked first: it must answer over TLS verified with --ca-file "
        "(--skip-check to install anyway).",
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
        help="namespace never sent to the webhook (repeatable); kube-system and --install-namespace "
        "are never sent in any case",
    )
    inst.add_argument(
        "--skip-check",
        action="store_true",
        help="install even if nothing answers at --url (by default the URL must answer over TLS trusting "
        "--ca-file: with failurePolicy Fail an unreachable webhook refuses every write to managed objects)",
    )
    _decision_flags(inst)
    kube_flags(inst)
    inst.set_defaults(run=run, webhook_command="install")


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run the chosen webhook command; its module is imported only now (start-up time)."""
    from cli import webhookrun  # noqa: PLC0415  # aiohttp, the Kubernetes client, telemetry: when it runs

    return webhookrun.COMMANDS[args.webhook_command](args, env)
