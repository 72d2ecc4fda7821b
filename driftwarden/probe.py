"""Does an HTTPS endpoint answer, trusting only a given CA bundle? (the check before a webhook is installed)

Thin adapter over asyncio's TLS streams: one TLS handshake with the URL's host and port, verified against
the PEM bundle the caller hands in (and nothing else: not the system's CAs), the host name checked as the
API server checks it. A completed handshake is the answer: something listens there and presents a
certificate the bundle trusts. No HTTP request is needed for that, and none could be made to a webhook run
with ``--client-ca-file``, which closes the connection of a caller without a client certificate right
after the handshake. Failures raise ``driftwarden.errors``: ``TemporaryError`` when nothing answers in
time, ``ConfigError`` when the certificate is not trusted or the URL is not an https URL. It must not
retry, and never turns verification off.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

from driftwarden.errors import ConfigError, TemporaryError


def _context(ca_bundle: bytes) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cadata=ca_bundle.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"the CA bundle holds no usable PEM certificate: {exc}") from exc


def _host_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise ConfigError(f"{url} is not a URL: {exc}") from exc
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"{url} is not an https:// URL with a host")
    return parts.hostname, port


async def _handshake(host: str, port: int, context: ssl.SSLContext) -> None:
    _reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


async def check_answers(url: str, ca_bundle: bytes, *, within: float = 5.0) -> None:
    """Return when ``url`` completes a TLS handshake within ``within`` seconds that ``ca_bundle`` verifies."""
    context = _context(ca_bundle)
    host, port = _host_port(url)
    try:
        async with asyncio.timeout(within):
            await _handshake(host, port, context)
    except ssl.SSLCertVerificationError as exc:
        raise ConfigError(
            f"{url} presents a certificate the CA bundle does not trust: {exc.verify_message}"
        ) from exc
    except ssl.SSLError as exc:
        raise ConfigError(f"TLS with {url} failed: {exc.reason or exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise TemporaryError(f"nothing answers at {url}: {exc or type(exc).__name__}") from exc
