"""The webhook's TLS: 1.2+ only, with the certificate, key and client CA reloaded when they change on disk.

Adapter: reads files (in a thread) and builds ``ssl.SSLContext`` objects. The listening socket keeps one
context whose SNI callback hands every new handshake the newest context, so a rotation takes effect for the
next connection while open connections carry on untouched. With a client CA file every context requires a
client certificate that chains to it (``CERT_REQUIRED``): a client without one fails the handshake. It must
not decide anything about admission.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from driftwarden.errors import ConfigError
from driftwarden.serving import LogThrottle

log = logging.getLogger(__name__)


def _server_context(cert_file: Path, key_file: Path, client_ca_file: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate {cert_file} with key {key_file}: {exc}") from exc
    if client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(client_ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the client CA {client_ca_file}: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _fingerprint(*paths: Path | None) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path is None:
            continue
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<missing>")
    return digest.hexdigest()


@dataclass
class ReloadingTLS:
    """The server's SSL context plus the watcher that swaps in new certificate material."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    interval: float = 2.0
    _current: ssl.SSLContext = field(init=False)
    _fingerprint: str = field(init=False, default="")
    reloads: int = field(init=False, default=0)
    # A file that stays unreadable (out of descriptors, a rotation stuck half-way) is retried every tick
    # and reported once a minute.
    _complaints: LogThrottle = field(init=False, default_factory=lambda: LogThrottle(log))

    def __post_init__(self) -> None:
        self._current = self._load()
        self._fingerprint = _fingerprint(*self._files)

    @property
    def _files(self) -> tuple[Path, Path, Path | None]:
        return self.cert_file, self.key_file, self.client_ca_file

    def _load(self) -> ssl.SSLContext:
        return _server_context(self.cert_file, self.key_file, self.client_ca_file)

    def server_context(self) -> ssl.SSLContext:
        """The context to listen with; it delegates each handshake to the current material."""
        listener = self._load()
        listener.sni_callback = self._pick
        return listener

    def _pick(self, sslobj: ssl.SSLObject, _server_name: str | None, _ctx: ssl.SSLContext) -> None:
        sslobj.context = self._current

    async def check(self) -> bool:
        """Reload when the files changed; True when new material is now in use."""
        fingerprint = await asyncio.to_thread(_fingerprint, *self._files)
        if fingerprint == self._fingerprint:
            return False
        try:
            context = await asyncio.to_thread(self._load)
        except ConfigError as exc:
            # A half-written pair (cert updated, key not yet) fails to load: keep serving the old
            # material and try again on the next tick rather than dropping TLS.
            self._complaints.warning(
                f"TLS material changed but does not load yet; keeping the previous one: {exc}", key="load"
            )
            return False
        self._current, self._fingerprint = context, fingerprint
        self.reloads += 1
        log.info("reloaded TLS certificate from %s", self.cert_file)
        return True

    async def watch(self) -> None:
        """Poll the files every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception as exc:  # never let the watcher die; the next tick tries again
                self._complaints.warning("checking TLS files for changes failed", exc=exc)
