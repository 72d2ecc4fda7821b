"""Does an HTTPS endpoint answer, trusting only a given CA bundle? (the check before a webhook is installed)

Thin adapter over aiohttp: one ``GET <url>/healthz`` over TLS verified against the PEM bundle the caller
hands in (and nothing else: not the system's CAs), the host name checked as the API server checks it. Any
HTTP answer counts; what matters is that something listens there and presents a certificate the bundle
trusts. Failures raise ``driftwarden.errors``: ``TemporaryError`` when nothing answers in time,
``ConfigError`` when the certificate is not trusted. It must not retry, and never turns verification off.
"""

from __future__ import annotations

import ssl

import aiohttp

from driftwarden.errors import ConfigError, TemporaryError


def _context(ca_bundle: bytes) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cadata=ca_bundle.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"the CA bundle holds no usable PEM certificate: {exc}") from exc


async def check_answers(url: str, ca_bundle: bytes, *, within: float = 5.0) -> None:
    """Return when ``url`` answers within ``within`` seconds over TLS that ``ca_bundle`` verifies."""
    context = _context(ca_bundle)
    target = url.rstrip("/") + "/healthz"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session,
            session.get(target, ssl=context, allow_redirects=False) as response,
        ):
            await response.read()
    except aiohttp.ClientConnectorCertificateError as exc:
        raise ConfigError(
            f"{url} presents a certificate the CA bundle does not trust: {exc.certificate_error}"
        ) from exc
    except aiohttp.ClientSSLError as exc:
        raise ConfigError(f"TLS with {url} failed: {exc}") from exc
    except aiohttp.InvalidURL as exc:
        raise ConfigError(f"{url} is not a URL: {exc}") from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise TemporaryError(f"nothing answers at {url}: {exc or type(exc).__name__}") from exc
