"""``driftwarden certs issue|check|rotate``: the flags and help of the certificate commands.

Registration only, run whenever the parser is built: it imports nothing heavy, and what each command does
is ``cli.certsrun``'s (cryptography, the Kubernetes client), imported when a certs command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from cli.flags import kube_flags, log_flags
from driftwarden import contract


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("certs", help="the webhook's CA and serving certificate: issue, check, rotate")
    commands = parser.add_subparsers(title="certs commands", metavar="COMMAND", required=True)
    issue_cmd = commands.add_parser(
        "issue",
        help="write a CA and a serving certificate to files (local use)",
        description="Write ca.crt, ca.key, tls.crt and tls.key for the webhook "
        "Service's names (and any --ip) into --out-dir.",
    )
    issue_cmd.add_argument("--out-dir", type=Path, required=True, help="directory for the PEM files")
    issue_cmd.add_argument("--ca-cert", type=Path, help="sign with this existing CA certificate ...")
    issue_cmd.add_argument("--ca-key", type=Path, help="... and its key (default: make a new CA)")
    _name_flags(issue_cmd)
    _policy_flags(issue_cmd)
    issue_cmd.set_defaults(run=run, certs_command="issue")

    check = commands.add_parser(
        "check",
        help="report expiry, name and trust problems (exit 1 if any)",
        description="Check the serving certificate from files (--cert-file) or from "
        "the cluster (the TLS Secret and both webhook configurations' caBundle).",
    )
    check.add_argument(
        "--cert-file", type=Path, help="serving certificate to check (default: from the cluster)"
    )
    check.add_argument("--key-file", type=Path, help="its private key (with --cert-file)")
    check.add_argument("--ca-file", type=Path, help="CA bundle that should trust it (with --cert-file)")
    check.add_argument(
        "--warn-days",
        type=float,
        default=30.0,
        help="fail when a certificate expires within this many days (default %(default)s)",
    )
    _name_flags(check)
    _cluster_flags(check)
    check.set_defaults(run=run, certs_command="check")

    rotate = commands.add_parser(
        "rotate",
        help="create or renew the certificates and inject the caBundle",
        description="Reconcile the CA Secret, the kubernetes.io/tls Secret and the "
        "caBundle of both webhook configurations; renew ahead of expiry, keeping old and "
        "new CA in the bundle while they overlap. See docs/certs.md.",
    )
    rotate.add_argument("--watch", action="store_true", help="keep running, renewing when due")
    rotate.add_argument(
        "--interval-seconds",
        type=float,
        default=3600.0,
        help="with --watch, re-check at least this often (default %(default)s)",
    )
    rotate.add_argument(
        "--max-wait-seconds",
        type=float,
        default=600.0,
        help="how long one run may wait for a new CA to propagate (default %(default)s)",
    )
    log_flags(rotate)
    _name_flags(rotate)
    _policy_flags(rotate)
    _cluster_flags(rotate)
    rotate.set_defaults(run=run, certs_command="rotate")


def _name_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--service", default=contract.WEBHOOK_SERVICE, help="webhook Service (default %(default)s)"
    )
    parser.add_argument(
        "--namespace",
        default=contract.DEFAULT_INSTALL_NAMESPACE,
        help="its namespace, also of the Secrets (default %(default)s)",
    )
    parser.add_argument("--ip", action="append", default=[], metavar="IP", help="IP SAN (repeatable)")
    parser.add_argument(
        "--dns-name", action="append", default=[], metavar="NAME", help="extra DNS SAN (repeatable)"
    )
    parser.add_argument("--cluster-domain", default="cluster.local", help="(default %(default)s)")


def _policy_flags(parser: argparse.ArgumentParser) -> None:
    for flag, default, what in (
        ("--ca-validity-days", 3650.0, "CA lifetime"),
        ("--serving-validity-days", 365.0, "serving certificate lifetime"),
        ("--ca-renew-before-days", 365.0, "renew the CA at the latest this long before it expires"),
        ("--serving-renew-before-days", 30.0, "renew the serving certificate at the latest this long before"),
    ):
        parser.add_argument(flag, type=float, default=default, help=f"{what} (default %(default)s)")
    parser.add_argument(
        "--propagation-seconds",
        type=float,
        default=300.0,
        help="a new CA must be published this long before it signs what is served (default %(default)s)",
    )


def _cluster_flags(parser: argparse.ArgumentParser) -> None:
    kube_flags(parser)
    parser.add_argument("--tls-secret", default=contract.WEBHOOK_TLS_SECRET, help="(default %(default)s)")
    parser.add_argument("--ca-secret", default=contract.WEBHOOK_CA_SECRET, help="(default %(default)s)")
    parser.add_argument(
        "--validating-configuration",
        action="append",
        metavar="NAME",
        help=f"(repeatable; default {contract.VALIDATING_WEBHOOK_CONFIGURATION})",
    )
    parser.add_argument(
        "--mutating-configuration",
        action="append",
        metavar="NAME",
        help=f"(repeatable; default {contract.MUTATING_WEBHOOK_CONFIGURATION})",
    )


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run the chosen certs command; its module is imported only now (start-up time)."""
    from cli import certsrun  # noqa: PLC0415  # cryptography and the Kubernetes client: when it runs

    return certsrun.COMMANDS[args.certs_command](args, env)
