"""``driftwarden certs issue|check|rotate``: flags → settings → the certs package.

Orchestration only: it builds the frozen policy and names once, picks files or the cluster, prints what
happened, and turns findings into the exit code (``check`` exits 1 when anything is wrong).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path

from certs.check import check_material, failed
from certs.files import read_file, write_pairs
from certs.pki import KeyPair, issue, new_ca
from certs.policy import DAY, Policy, ServingNames
from certs.rotate import CA_COMMON_NAME, Report, RotateSettings, reconcile, watch
from certs.store import CertStore, Location
from driftwarden import contract
from driftwarden.errors import ConfigError
from driftwarden.kube.client import api_client
from driftwarden.signals import stop_on_signals


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
    issue_cmd.set_defaults(run=run_issue)

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
    check.set_defaults(run=run_check)

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
    rotate.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    _name_flags(rotate)
    _policy_flags(rotate)
    _cluster_flags(rotate)
    rotate.set_defaults(run=run_rotate)


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


def _names(args: argparse.Namespace) -> ServingNames:
    return ServingNames(
        args.service, args.namespace, tuple(args.ip), tuple(args.dns_name), args.cluster_domain
    )


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


def _policy(args: argparse.Namespace) -> Policy:
    return Policy(
        ca_validity=args.ca_validity_days * DAY,
        serving_validity=args.serving_validity_days * DAY,
        ca_renew_before=args.ca_renew_before_days * DAY,
        serving_renew_before=args.serving_renew_before_days * DAY,
        propagation=dt.timedelta(seconds=args.propagation_seconds),
    )


def _cluster_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: in-cluster credentials)")
    parser.add_argument("--context", help="kubeconfig context to use")
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


def _location(args: argparse.Namespace) -> Location:
    return Location(
        namespace=args.namespace,
        tls_secret=args.tls_secret,
        ca_secret=args.ca_secret,
        validating=tuple(args.validating_configuration or (contract.VALIDATING_WEBHOOK_CONFIGURATION,)),
        mutating=tuple(args.mutating_configuration or (contract.MUTATING_WEBHOOK_CONFIGURATION,)),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_issue(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    policy, now = _policy(args), _now()
    files: dict[str, bytes] = {}
    if args.ca_cert or args.ca_key:
        if not (args.ca_cert and args.ca_key):
            raise ConfigError("--ca-cert and --ca-key go together")
        ca = KeyPair(read_file(args.ca_cert), read_file(args.ca_key))
    else:
        ca = new_ca(CA_COMMON_NAME, now=now, validity=policy.ca_validity)
        files["ca.key"] = ca.key_pem
    serving = issue(_names(args).request(validity=policy.serving_validity), ca=ca, now=now)
    files.update({"ca.crt": ca.cert_pem, "tls.crt": serving.cert_pem, "tls.key": serving.key_pem})
    for path in write_pairs(args.out_dir, files=files):
        print(f"wrote {path}")
    return 0


def run_check(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    names, warn = _names(args), dt.timedelta(days=args.warn_days)
    if args.cert_file:
        key = read_file(args.key_file) if args.key_file else None
        bundle = read_file(args.ca_file) if args.ca_file else b""
        findings = check_material(
            read_file(args.cert_file), key_pem=key, bundle=bundle, names=names, now=_now(), warn_within=warn
        )
    else:

        async def read() -> tuple[bytes, bytes | None, bytes, dict[str, bytes]]:
            async with await api_client(kubeconfig=args.kubeconfig, context=args.context) as api:
                snap = await CertStore(api, _location(args)).read()
            published = {
                f"{c.name}/{hook}": b
                for c in snap.configurations
                for hook, b in zip(c.hooks, c.bundles, strict=True)
            }
            serving = snap.stored.serving
            return (
                serving.cert_pem if serving else b"",
                serving.key_pem if serving else None,
                snap.stored.serving_bundle or b"",
                published,
            )

        cert, key, bundle, published = asyncio.run(read())
        findings = check_material(
            cert, key_pem=key, bundle=bundle, names=names, published=published, now=_now(), warn_within=warn
        )
    for finding in findings:
        print(finding)
    return 1 if failed(findings) else 0


def run_rotate(args: argparse.Namespace, _env: Mapping[str, str]) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = RotateSettings(
        names=_names(args),
        policy=_policy(args),
        max_wait=dt.timedelta(seconds=args.max_wait_seconds),
        interval=dt.timedelta(seconds=args.interval_seconds),
    )
    return asyncio.run(_rotate(args, settings, location=_location(args)))


def _print(report: Report) -> None:
    for step in report.steps:
        print(step, flush=True)
    if report.waiting_until is not None:
        print(f"serving certificate switches to the new CA on a run after {report.waiting_until.isoformat()}")
    elif report.next_due is not None:
        print(f"certificates are current; next renewal due {report.next_due.isoformat()}", flush=True)


async def _rotate(args: argparse.Namespace, settings: RotateSettings, *, location: Location) -> int:
    async with await api_client(kubeconfig=args.kubeconfig, context=args.context) as api:
        store = CertStore(api, location)
        if not args.watch:
            _print(await reconcile(store, settings))
            return 0
        with stop_on_signals() as stop:
            await watch(store, settings, stop=stop, on_report=_print)
    return 0
