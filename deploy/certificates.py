"""The deployment's private CA and the broker's TLS server certificate, made with `cryptography`.

Gateways and services reach the broker over TLS and verify it against this CA alone (their
``ca_file`` / ``SMARTCITY_MQTT_TLS_CA``), not the system's bundle: only a certificate this
deployment issued is accepted, and hostname verification stays on, so the server certificate
names every host name and address clients connect to (its subjectAltName).

``ensure_broker_certs`` is idempotent, so the setup and the demo can call it at every start: it
keeps an existing CA (the gateways trust it: replacing it would cut them all off) and issues the
server certificate again only when it is missing, does not match its key, was not issued by the
CA, expires within ``RENEW_BEFORE`` or does not name every requested host. Keys are 0600 from
their first byte (core/private_file.py), certificates 0644; every file is replaced atomically.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.errors import ConfigError
from core.private_file import atomic_writer, write_private

log = logging.getLogger(__name__)

CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "broker.crt", "broker.key"
DEFAULT_NAMES = ("localhost", "127.0.0.1")
CA_VALIDITY = datetime.timedelta(days=3652)  # ten years: gateways in cabinets keep it that long
SERVER_VALIDITY = datetime.timedelta(days=730)  # two years, re-issued by the setup before it ends
RENEW_BEFORE = datetime.timedelta(days=30)
# Clocks of gateways that only just synchronised may run a little behind the server's.
BACKDATE = datetime.timedelta(minutes=5)
CERT_MODE = 0o644
_DNS_NAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


class CertificateError(ConfigError):
    """A host name that cannot go into a certificate, or a CA that cannot issue (its key is missing)."""


@dataclass(frozen=True, slots=True)
class BrokerCerts:
    """The files a TLS listener needs; ca_cert is also what gateways and services are given to trust."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def subject_names(names: Iterable[str]) -> list[x509.GeneralName]:
    """subjectAltName entries: an IP address entry for an address, a DNS entry for a host name."""
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        if not _DNS_NAME.match(name):
            raise CertificateError(f"not a host name nor an IP address for the broker certificate: {name!r}")
        entries.append(x509.DNSName(name.lower()))
    if not entries:
        raise CertificateError("the broker certificate needs at least one host name or IP address")
    return list(dict.fromkeys(entries))  # in order, without repeats


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_private(path, pem.decode("ascii"))


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    with atomic_writer(path, CERT_MODE) as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))


def create_ca(directory: Path, common_name: str | None = None) -> x509.Certificate:
    """A new self-signed CA (EC P-256, ten years) in directory; replaces one that is there.

    The default name has a random part: two deployments' CAs (or an old and a new one) must not
    share a subject, or verifiers pick the wrong one by name and report a confusing error.
    """
    directory.mkdir(parents=True, exist_ok=True)
    common_name = common_name or f"smartcity deployment CA {secrets.token_hex(4)}"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smartcity"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + CA_VALIDITY)
            # path length 0: it signs server certificates only, never another CA.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))
    # Key first: a crash between the two leaves a key without a certificate, which the next
    # ensure_broker_certs replaces (nobody can trust a CA whose certificate was never written).
    _write_key(directory / CA_KEY, key)
    _write_cert(directory / CA_CERT, cert)
    log.info("created the deployment CA %s (valid until %s)", directory / CA_CERT, cert.not_valid_after_utc.date())
    return cert


def issue_server_cert(directory: Path, names: Iterable[str] = DEFAULT_NAMES, *,
                      validity: datetime.timedelta = SERVER_VALIDITY) -> x509.Certificate:
    """A new broker key and certificate for names, signed by the CA in directory (which must be there)."""
    alt_names = subject_names(names)
    ca_cert, ca_key = _load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    first = alt_names[0].value
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smartcity"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, f"smartcity broker {first}")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            # What clients match the host against (RFC 6125: the CN is not looked at). Not critical:
            # RFC 5280 requires that only of a certificate with an empty subject.
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    # Key first: a crash between the two leaves a key that does not match the old certificate,
    # which the next ensure_broker_certs notices and issues again.
    _write_key(directory / SERVER_KEY, key)
    _write_cert(directory / SERVER_CERT, cert)
    log.info("issued the broker certificate %s for %s (valid until %s)", directory / SERVER_CERT,
             ", ".join(str(n.value) for n in alt_names), cert.not_valid_after_utc.date())
    return cert


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    except ValueError as exc:
        raise CertificateError(f"{directory / CA_CERT} holds no PEM certificate: {exc}") from None
    try:
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
    except ValueError as exc:
        raise CertificateError(f"{directory / CA_KEY} holds no unencrypted PEM key: {exc}") from None
    except FileNotFoundError:
        raise CertificateError(f"{directory / CA_CERT} is there but its key {directory / CA_KEY} is not: restore the "
                               "key from the backup (the gateways trust this CA), or remove the certificate to "
                               "start a new CA and give every gateway the new one") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertificateError(f"{directory / CA_KEY} is not the key of {directory / CA_CERT}")
    return cert, key


def reissue_reason(directory: Path, names: Iterable[str], *, renew_before: datetime.timedelta = RENEW_BEFORE,
                   now: datetime.datetime | None = None) -> str | None:
    """Why the broker certificate in directory must be issued again, or None when it is good for names."""
    cert_path, key_path = directory / SERVER_CERT, directory / SERVER_KEY
    if not cert_path.exists() or not key_path.exists():
        return "missing"
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError as exc:
        return f"unreadable ({exc})"
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return "its key does not match it"
    ca_cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not issued by the deployment CA"
    if cert.not_valid_after_utc - (now or _now()) < renew_before:
        return f"it expires on {cert.not_valid_after_utc.isoformat()}"
    try:
        have = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        have = set()
    missing = [str(n.value) for n in subject_names(names) if n not in have]
    if missing:
        return f"it does not name {', '.join(missing)}"
    return None


def ensure_broker_certs(directory: Path, names: Iterable[str] = DEFAULT_NAMES) -> BrokerCerts:
    """The CA (kept if there, created if not) and a broker certificate good for names, in directory."""
    wanted = list(names)
    subject_names(wanted)  # a bad name fails before anything is written
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / CA_CERT).exists():
        create_ca(directory)
    else:
        ca_cert, _ = _load_ca(directory)  # a CA whose key is missing or wrong is an error, never replaced here
        if ca_cert.not_valid_after_utc - _now() < RENEW_BEFORE:
            # Server certificates end with it, so each run issues one again; only a new CA, given to
            # every gateway, helps.
            log.warning("the deployment CA %s expires on %s: create a new one and give it to every gateway",
                        directory / CA_CERT, ca_cert.not_valid_after_utc.date())
    reason = reissue_reason(directory, wanted)
    if reason is not None:
        log.info("broker certificate %s: issuing it again: %s", directory / SERVER_CERT, reason)
        issue_server_cert(directory, wanted)
    for key in (CA_KEY, SERVER_KEY):
        path = directory / key
        if path.stat().st_mode & 0o077:
            log.warning("%s was readable by others: made 0600", path)
            path.chmod(0o600)
    return BrokerCerts(directory / CA_CERT, directory / SERVER_CERT, directory / SERVER_KEY)
