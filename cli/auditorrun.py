"""What ``driftwarden auditor run`` does: flags (``cli.auditor``) → frozen settings → ``auditor.process``.

Flags → frozen settings only (``AuditorSettings``, ``ElectionSettings``, ``PushServerSettings``,
``NotifierSettings``, the credentials by kubectl's order, in one ``auditor.process.ProcessSettings``),
checked before anything starts; then logging (driftwarden.logs) and ``auditor.process.run``, whose exit code
it returns. Secrets (the webhook secret, the notification URL) are read here from files or the environment
snapshot and passed on; they are never logged. Everything the running process does is
``auditor.process``'s: this module must not start, connect or serve anything itself.
"""

from __future__ import annotations

import argparse
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path

from auditor import process
from auditor.leadership.lease import LEASE_NAME, ElectionSettings
from auditor.notify import NotifierSettings
from auditor.process import ProcessSettings, ServeOptions
from auditor.push.server import PushServerSettings
from auditor.settings import AuditorSettings
from auditor.source.renderers import RenderTools
from driftwarden import logs
from driftwarden.errors import ConfigError
from driftwarden.settings import cache_root, event_loop, helm_path, kube_access, kubectl_path, webhook_secret


def default_identity() -> str:
    """The host (pod) name with a random suffix, so two processes on one host never share an identity."""
    return f"{socket.gethostname()}_{secrets.token_hex(4)}"


def _read_secret(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} from {path}: {exc.strerror}") from exc


def election_from(args: argparse.Namespace) -> ElectionSettings | None:
    if not args.leader_elect:
        return None
    duration = args.lease_duration
    return ElectionSettings(
        identity=args.leader_id or default_identity(),
        namespace=args.leader_election_namespace or args.install_namespace,
        name=LEASE_NAME,
        lease_duration=duration,
        renew_deadline=args.renew_deadline if args.renew_deadline is not None else duration * 2 / 3,
        retry_period=args.retry_period if args.retry_period is not None else duration * 2 / 15,
    )


def push_from(args: argparse.Namespace, env: Mapping[str, str]) -> PushServerSettings | None:
    if args.webhook_port is None:
        return None
    if args.webhook_secret_file is not None:
        secret = _read_secret(args.webhook_secret_file, "webhook secret")
    else:
        secret = (webhook_secret(env) or "").encode()
    return PushServerSettings(
        secret=secret, host=args.webhook_host, port=args.webhook_port,
        tls_cert=args.webhook_tls_cert, tls_key=args.webhook_tls_key,
    )  # fmt: skip


def notify_from(args: argparse.Namespace) -> NotifierSettings | None:
    url = args.notify_url
    if args.notify_url_file is not None:
        url = _read_secret(args.notify_url_file, "notification URL").decode("utf-8", "replace").strip()
    return NotifierSettings(url=url, blocks=args.notify_blocks) if url else None


def options_from(args: argparse.Namespace, env: Mapping[str, str]) -> ServeOptions:
    """Leader election, the push webhook and notifications, checked before anything starts (ConfigError)."""
    return ServeOptions(args.namespace, election_from(args), push_from(args, env), notify_from(args))


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
        wave_timeout=args.wave_timeout,
    )


def process_settings(args: argparse.Namespace, env: Mapping[str, str]) -> ProcessSettings:
    """Every setting of ``auditor run``, checked before anything starts (ConfigError when invalid)."""
    return ProcessSettings(
        auditor=settings_from(args, env),
        serve=options_from(args, env),
        kube=kube_access(env, kubeconfig=args.kubeconfig, context=args.context),
        metrics_port=args.metrics_port,
        console_traces=args.console_traces,
    )


def run_auditor(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    settings = process_settings(args, env)
    loop = event_loop(env, explicit=args.event_loop)
    logs.configure(level=args.log_level, fmt=args.log_format)
    return process.run(settings, env, event_loop=loop)
