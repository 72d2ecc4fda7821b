"""``certs check``'s judgement: expiry, names, key and trust problems are errors; healthy material is not."""

from __future__ import annotations

import datetime as dt

import pytest

from certs.check import Finding, check_material, failed
from certs.policy import ServingNames
from tests.certs.material import DAY, NAMES, T0, ca_at, serving_at

WARN = 30 * DAY


def errors(findings: tuple[Finding, ...]) -> list[str]:
    return [f"{f.subject}: {f.message}" for f in findings if f.severity == "error"]


def test_healthy_material_has_no_error() -> None:
    ca = ca_at(T0)
    serving = serving_at(ca, T0)
    findings = check_material(serving.cert_pem, key_pem=serving.key_pem, bundle=ca.cert_pem, names=NAMES,
                              published={"driftwarden-guard/objects": ca.cert_pem}, now=T0 + DAY,
                              warn_within=WARN)  # fmt: skip
    assert not failed(findings), errors(findings)
    assert {f.subject for f in findings} >= {
        "serving certificate",
        "CA bundle",
        "caBundle of driftwarden-guard/objects",
    }
    assert "ERROR" not in "\n".join(map(str, findings))


@pytest.mark.parametrize(
    ("now", "message"),
    [
        (T0 - DAY, "not valid before"),
        (T0 + 366 * DAY, "expired at"),
        (T0 + 350 * DAY, "expires in"),
    ],
)
def test_expiry_inside_the_window_is_an_error(now: dt.datetime, message: str) -> None:
    ca = ca_at(T0)
    serving = serving_at(ca, T0)
    findings = check_material(serving.cert_pem, bundle=ca.cert_pem, now=now, warn_within=WARN)
    assert failed(findings)
    assert any(message in e for e in errors(findings)), errors(findings)


def test_a_missing_name_a_foreign_key_and_an_untrusting_bundle_are_errors() -> None:
    ca, stranger = ca_at(T0), ca_at(T0, name="stranger")
    serving = serving_at(ca, T0)
    other_key = serving_at(ca, T0).key_pem
    wanted = ServingNames("driftwarden-webhook", "elsewhere", ip_addresses=("10.1.2.3",))
    found = errors(check_material(serving.cert_pem, key_pem=other_key, bundle=ca.cert_pem, names=wanted,
                                  published={"driftwarden-flag/scale": stranger.cert_pem}, now=T0 + DAY,
                                  warn_within=WARN))  # fmt: skip
    assert any("lacks subject alternative names" in e and "10.1.2.3" in e and "elsewhere" in e for e in found)
    assert any("private key does not belong" in e for e in found)
    assert any(e.startswith("caBundle of driftwarden-flag/scale") and "does not trust" in e for e in found)
    assert not any(e.startswith("CA bundle") for e in found)


def test_unreadable_or_missing_material_is_an_error() -> None:
    assert failed(check_material(b"", now=T0, warn_within=WARN))
    ca = ca_at(T0)
    serving = serving_at(ca, T0)
    found = errors(check_material(serving.cert_pem, bundle=b"junk", now=T0 + DAY, warn_within=WARN))
    assert found == ["CA bundle: holds no certificate"]


def test_an_expired_retired_ca_is_only_a_warning_but_an_expiring_issuer_is_an_error() -> None:
    retired = ca_at(T0, validity=2 * DAY, name="retired")
    issuer = ca_at(T0, validity=40 * DAY)
    serving = serving_at(issuer, T0, validity=30 * DAY)
    findings = check_material(serving.cert_pem, bundle=retired.cert_pem + issuer.cert_pem, now=T0 + 20 * DAY,
                              warn_within=WARN)  # fmt: skip
    assert [f.severity for f in findings if "retired" in f.subject] == ["warning"]
    assert any("CA test-ca" in e and "expires in" in e for e in errors(findings))
