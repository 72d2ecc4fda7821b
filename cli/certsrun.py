"""What ``driftwarden certs issue|check|rotate`` do: flags (``cli.certs``) → settings → the certs package.

Orchestration only, imported when a certs command runs: it builds the frozen policy and names once, picks
files or the cluster (kubectl's credentials, cli.kube), prints what happened, and turns findings into the
exit code (``check`` exits 1 when anything is wrong).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from collections.abc import Mapping

from certs.check import check_material, failed
from certs.files import read_file, write_pairs
from certs.pki import KeyPair, issue, new_ca
from certs.policy import DAY, Policy, ServingNames
from certs.rotate import CA_COMMON_NAME, Report, RotateSettings, reconcile, watch
from certs.store import CertStore, Location
from cli.flags import Command
from cli.kube import connect
from driftwarden import contract, logs
from driftwarden.errors import ConfigError
from driftwarden.signals import stop_on_signals


def _names(args: argparse.Namespace) -> ServingNames:
    return ServingNames(
        args.service, args.namespace, tuple(args.ip), tuple(args.dns_name), args.cluster_domain
    )


def _policy(args: argparse.Namespace) -> Policy:
    return Policy(
        ca_validity=args.ca_validity_days * DAY,
        serving_validity=args.serving_validity_days * DAY,
        ca_renew_before=args.ca_renew_before_days * DAY,
        serving_renew_before=args.serving_renew_before_days * DAY,
        propagation=dt.timedelta(seconds=args.propagation_seconds),
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


def run_check(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    names, warn = _names(args), dt.timedelta(days=args.warn_days)
    if args.cert_file:
        key = read_file(args.key_file) if args.key_file else None
        bundle = read_file(args.ca_file) if args.ca_file else b""
        findings = check_material(
            read_file(args.cert_file), key_pem=key, bundle=bundle, names=names, now=_now(), warn_within=warn
        )
    else:

        async def read() -> tuple[bytes, bytes | None, bytes, dict[str, bytes]]:
            async with connect(args, env) as api:
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


def run_rotate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    logs.configure(level=args.log_level, fmt=args.log_format)
    settings = RotateSettings(
        names=_names(args),
        policy=_policy(args),
        max_wait=dt.timedelta(seconds=args.max_wait_seconds),
        interval=dt.timedelta(seconds=args.interval_seconds),
    )
    return asyncio.run(_rotate(args, env, settings, location=_location(args)))


def _print(report: Report) -> None:
    for step in report.steps:
        print(step, flush=True)
    if report.waiting_until is not None:
        print(f"serving certificate switches to the new CA on a run after {report.waiting_until.isoformat()}")
    elif report.next_due is not None:
        print(f"certificates are current; next renewal due {report.next_due.isoformat()}", flush=True)


async def _rotate(
    args: argparse.Namespace, env: Mapping[str, str], settings: RotateSettings, *, location: Location
) -> int:
    async with connect(args, env) as api:
        store = CertStore(api, location)
        if not args.watch:
            _print(await reconcile(store, settings))
            return 0
        with stop_on_signals() as stop:
            await watch(store, settings, stop=stop, on_report=_print)
    return 0


COMMANDS: Mapping[str, Command] = {"issue": run_issue, "check": run_check, "rotate": run_rotate}
