"""The deployment's CA and the broker's server certificate (deploy/certificates.py), without a broker.

Checked with `cryptography`'s own RFC 5280 path validation (chain, names, serverAuth) and with
Python's ssl under strict X.509 checks, and on disk: modes, idempotence, re-issue on expiry-soon,
a new name or a key that does not match, and refusals that write nothing.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from deploy import certificates
from deploy.certificates import BrokerCerts, CertificateError, ensure_broker_certs, issue_server_cert


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _files(certs: BrokerCerts) -> dict[str, bytes]:
    d = certs.ca_cert.parent
    return {n: (d / n).read_bytes() for n in (certificates.CA_CERT, certificates.CA_KEY,
                                              certificates.SERVER_CERT, certificates.SERVER_KEY)}


def _verify(certs: BrokerCerts, name: x509.DNSName | x509.IPAddress) -> None:
    """cryptography's RFC 5280 path validation of the broker certificate for name (EKU serverAuth included)."""
    verifier = PolicyBuilder().store(Store([_load(certs.ca_cert)])).build_server_verifier(name)
    verifier.verify(_load(certs.server_cert), [])


# --- the certificates ---------------------------------------------------------------------------------

def test_the_server_certificate_chains_to_the_ca_for_every_name_and_no_other(tmp_path: Path) -> None:
    certs = ensure_broker_certs(tmp_path, names=("localhost", "127.0.0.1", "mqtt.gemeente.example"))
    for name in (x509.DNSName("localhost"), x509.DNSName("mqtt.gemeente.example"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        _verify(certs, name)
    with pytest.raises(VerificationError):
        _verify(certs, x509.DNSName("other.example"))
    with pytest.raises(VerificationError):
        _verify(certs, x509.IPAddress(ipaddress.ip_address("127.0.0.2")))
    ca, server = _load(certs.ca_cert), _load(certs.server_cert)
    # A CA that signs server certificates only; a leaf for serverAuth.
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value == x509.BasicConstraints(True, 0)
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert list(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]

    def days(c: x509.Certificate) -> int:
        return (c.not_valid_after_utc - c.not_valid_before_utc).days

    assert 3650 <= days(ca) <= 3653 and 729 <= days(server) <= 731
    # The files mosquitto and Python's ssl load, under the strict X.509 checks.
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_cert_chain(certs.server_cert, certs.server_key)


def test_keys_are_0600_and_certificates_0644_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        certificates.create_ca(tmp_path / "tls")
        issue_server_cert(tmp_path / "tls")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "tls").iterdir()}
    assert modes == {"ca.key": 0o600, "broker.key": 0o600, "ca.crt": 0o644, "broker.crt": 0o644}
    # A key made readable by others is put back to 0600 by the next run.
    certs = ensure_broker_certs(tmp_path / "tls")
    certs.server_key.chmod(0o644)
    ensure_broker_certs(tmp_path / "tls")
    assert stat.S_IMODE(certs.server_key.stat().st_mode) == 0o600


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    certs = ensure_broker_certs(tmp_path)
    before = _files(certs)
    again = ensure_broker_certs(tmp_path, names=["127.0.0.1"])  # a subset of the names: still covered
    assert again == certs and _files(again) == before


def test_a_certificate_expiring_within_30_days_is_issued_again_and_the_ca_kept(tmp_path: Path) -> None:
    certs = ensure_broker_certs(tmp_path)
    issue_server_cert(tmp_path, validity=datetime.timedelta(days=40))  # outside the renewal window: kept
    kept = _files(certs)
    ensure_broker_certs(tmp_path)
    assert _files(certs) == kept
    issue_server_cert(tmp_path, validity=datetime.timedelta(days=20))
    soon = _files(certs)
    ensure_broker_certs(tmp_path)
    after = _files(certs)
    assert after["ca.crt"] == soon["ca.crt"] and after["ca.key"] == soon["ca.key"]
    assert after["broker.crt"] != soon["broker.crt"] and after["broker.key"] != soon["broker.key"]
    renewed = _load(certs.server_cert)
    assert renewed.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=700)
    renewed.verify_directly_issued_by(_load(certs.ca_cert))


def test_a_new_name_issues_the_certificate_again_under_the_same_ca(tmp_path: Path) -> None:
    certs = ensure_broker_certs(tmp_path)
    ca_before = certs.ca_cert.read_bytes()
    old_serial = _load(certs.server_cert).serial_number
    ensure_broker_certs(tmp_path, names=("localhost", "127.0.0.1", "broker.lan", "10.0.0.5"))
    assert certs.ca_cert.read_bytes() == ca_before
    cert = _load(certs.server_cert)
    assert cert.serial_number != old_serial
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "broker.lan"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "10.0.0.5"]


def test_a_key_that_does_not_match_its_certificate_is_issued_again(tmp_path: Path) -> None:
    # What a crash between writing the new key and the new certificate leaves.
    certs = ensure_broker_certs(tmp_path)
    stale = certs.server_cert.read_bytes()
    issue_server_cert(tmp_path)
    certs.server_cert.write_bytes(stale)
    assert certificates.reissue_reason(tmp_path, certificates.DEFAULT_NAMES) == "its key does not match it"
    ensure_broker_certs(tmp_path)
    assert certificates.reissue_reason(tmp_path, certificates.DEFAULT_NAMES) is None


def test_bad_names_and_a_ca_without_its_key_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    for bad in (["bad name"], ["-x.example"], ["a" * 64 + ".example"], []):
        with pytest.raises(CertificateError):
            ensure_broker_certs(tmp_path / "none", names=bad)
    assert not (tmp_path / "none").exists()
    certs = ensure_broker_certs(tmp_path / "tls")
    (tmp_path / "tls" / "ca.key").unlink()
    before = certs.server_cert.read_bytes()
    with pytest.raises(CertificateError, match="restore the key"):
        ensure_broker_certs(tmp_path / "tls", names=("new.example",))
    assert certs.server_cert.read_bytes() == before  # the CA the gateways trust was not replaced either
    assert certs.ca_cert.exists()
