"""Facts about PEM certificates: dates, names, fingerprints, who signed what, and CA bundles.

Pure core of ``certs``: bytes in, frozen dataclasses out. The renewal plan and ``certs check`` decide
on these facts. It must not read files or the clock, talk to Kubernetes, or log; unreadable input is
reported as ``CertificateFormatError`` for the caller to treat as "missing or broken".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from certs.pki import KeyPair

_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL)


class CertificateFormatError(ValueError):
    """Bytes that should hold a certificate (or key) do not."""


@dataclass(frozen=True)
class CertFacts:
    """What the renewal decisions need to know about one certificate."""

    pem: bytes
    fingerprint: str
    """SHA-256 of the DER encoding, lower-case hex: the identity of a certificate in a bundle."""
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    is_ca: bool
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before

    def valid_at(self, now: dt.datetime) -> bool:
        return self.not_before <= now < self.not_after

    def expired_at(self, now: dt.datetime) -> bool:
        return now >= self.not_after


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def _load(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertificateFormatError(f"not a PEM certificate: {exc}") from exc


def facts(pem: bytes) -> CertFacts:
    """Facts of the first certificate in ``pem``; ``CertificateFormatError`` when there is none."""
    blocks = split_bundle(pem)
    if not blocks:
        raise CertificateFormatError("no PEM certificate found")
    cert = _load(blocks[0])
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(sans.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    return CertFacts(
        pem=blocks[0],
        fingerprint=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        subject=_common_name(cert.subject),
        issuer=_common_name(cert.issuer),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=is_ca,
        dns_names=dns,
        ip_addresses=ips,
    )


def split_bundle(pem: bytes) -> tuple[bytes, ...]:
    """Each certificate block of a PEM bundle, normalised to end with one newline."""
    return tuple(m.group(0).replace(b"\r\n", b"\n") + b"\n" for m in _PEM_BLOCK.finditer(pem))


def bundle_facts(pem: bytes) -> tuple[CertFacts, ...]:
    """Facts of every readable certificate in a bundle; unreadable blocks are left out."""
    found = []
    for block in split_bundle(pem):
        try:
            found.append(facts(block))
        except CertificateFormatError:
            continue
    return tuple(found)


def join_bundle(certs: Iterable[CertFacts]) -> bytes:
    """A PEM bundle of ``certs`` in the given order, without duplicates."""
    seen: set[str] = set()
    out = b""
    for cert in certs:
        if cert.fingerprint not in seen:
            seen.add(cert.fingerprint)
            out += cert.pem
    return out


def signed_by(leaf_pem: bytes, *, ca_pem: bytes) -> bool:
    """True when the CA certificate ``ca_pem`` issued and signed ``leaf_pem``."""
    try:
        leaf, ca = _load(leaf_pem), _load(ca_pem)
    except CertificateFormatError:
        return False
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def issuer_in(leaf_pem: bytes, *, among: Iterable[CertFacts]) -> CertFacts | None:
    """The CA ``among`` those given that signed ``leaf_pem``, if any."""
    return next((ca for ca in among if signed_by(leaf_pem, ca_pem=ca.pem)), None)


def pair_matches(pair: KeyPair) -> bool:
    """True when the pair's private key belongs to its certificate."""
    try:
        cert_key = pair.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        own_key = pair.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, TypeError):
        return False
    return cert_key == own_key
