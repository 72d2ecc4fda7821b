"""The flags of ``driftwarden auditor run`` for leader election, the push webhook and notifications.

Flags → frozen settings only (``ElectionSettings``, ``PushServerSettings``, ``NotifierSettings``, in one
``auditor.process.ServeOptions``), checked before anything starts; running them is ``auditor.process``'s
job. Secrets (the webhook secret, the notification URL) are read here from files or the environment
snapshot and passed on; they are never logged. It must not start, connect or serve anything.
"""

from __future__ import annotations

import argparse
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path

from auditor.leadership.lease import LEASE_NAME, ElectionSettings
from auditor.notify import NotifierSettings
from auditor.process import ServeOptions
from auditor.push.server import PushServerSettings
from driftwarden.errors import ConfigError
from driftwarden.settings import webhook_secret


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
    """Every setting of this module, checked before anything starts (ConfigError when invalid)."""
    return ServeOptions(args.namespace, election_from(args), push_from(args, env), notify_from(args))
