"""The long-running side of ``driftwarden auditor run``: leader election, the push webhook, notifications.

Orchestration only: flags → frozen settings (``ElectionSettings``, ``PushServerSettings``,
``NotifierSettings``), then ``serve`` runs the ``AuditorLoop`` — always, or only while this replica holds
the Lease — next to the push webhook server, until asked to stop. A replica that loses the Lease cancels
its loop and stands for election again. Secrets (the webhook secret, the notification URL) are read here
from files or the environment snapshot and passed on; they are never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from auditor.heal.healer import Healer
from auditor.leadership.elector import LeaderElector
from auditor.leadership.lease import LEASE_NAME, ElectionSettings
from auditor.loop import AuditorLoop
from auditor.notify import Notifier, NotifierSettings
from auditor.push.server import PushServer, PushServerSettings, make_push_app
from auditor.reconcile import Reconciler
from driftwarden.errors import ConfigError
from driftwarden.settings import webhook_secret

log = logging.getLogger("driftwarden.auditor")


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


@dataclass(frozen=True)
class ServeOptions:
    namespace: str | None
    election: ElectionSettings | None = None
    push: PushServerSettings | None = None
    notify: NotifierSettings | None = None


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


@contextlib.asynccontextmanager
async def notifications(settings: NotifierSettings | None) -> AsyncIterator[Notifier | None]:
    """A running ``Notifier`` (None without ``--notify-url``), flushed and stopped on exit."""
    if settings is None:
        yield None
        return
    async with Notifier(settings) as notifier:
        yield notifier


class _Current:
    """The loop this replica runs right now (None while standing by): what the push webhook refreshes."""

    loop: AuditorLoop | None = None


async def _reconcile(reconciler: Reconciler, options: ServeOptions, current: _Current) -> None:
    loop = AuditorLoop(reconciler, namespace=options.namespace, healer=Healer(reconciler))
    current.loop = loop
    try:
        await loop.run()
    finally:
        current.loop = None


async def _campaign(reconciler: Reconciler, options: ServeOptions, current: _Current) -> None:
    if options.election is None:
        await _reconcile(reconciler, options, current)
        return
    elector = LeaderElector(reconciler.api, options.election)
    log.info("standing for election as %s (lease %s/%s)", elector.identity, options.election.namespace,
             options.election.name)  # fmt: skip
    while await elector.run(lambda: _reconcile(reconciler, options, current)) == "lost":
        log.warning("lost leadership; standing for election again")


async def serve(reconciler: Reconciler, options: ServeOptions, *, stop: asyncio.Event) -> int:
    """Run until ``stop`` is set (0) or the auditor fails (1); everything started is stopped on return."""
    current = _Current()
    async with contextlib.AsyncExitStack() as stack:
        if options.push is not None:
            app = make_push_app(
                secret=options.push.secret,
                applications=lambda: reconciler.store.list_applications(options.namespace),
                refresher=lambda: current.loop,
                max_body=options.push.max_body,
            )
            await stack.enter_async_context(PushServer(app, options.push))
        work = asyncio.create_task(_campaign(reconciler, options, current), name="auditor")
        stopper = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (work, stopper):
            task.cancel()
        await asyncio.wait({work, stopper})
        if not work.cancelled() and work.exception() is not None:
            log.error("the auditor failed", exc_info=work.exception())
            return 1
    return 0
