"""The federation's PKI: one CA, and a certificate per party and for the coordinator.

A certificate's identity is its subject-alternative-name DNS entry: a party's
name, or ``coordinator``. Every link (gRPC control plane, SecretFlow's
cross-silo link, SPU's link) presents these certificates and accepts only peers
whose certificate the federation CA signed; the control plane also maps the
peer's identity to a party and authorises each call by it.

``init_ca`` makes the CA (its key stays with whoever runs the federation);
``issue`` makes a key (mode 0600) and certificate for one identity. A real
deployment may bring its own CA and certificates instead: nodes read the paths
from their configuration (``TlsFiles``). Keys are EC P-256, which every link
accepts; certificates carry both server and client use, since each role both
listens and dials.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from enclave.home import Home, check_name
from protocols.errors import SpecError

CA_KEY = "ca.key"
CA_CERT = "ca.pem"
CERT = "cert.pem"
KEY = "key.pem"
COORDINATOR = "coordinator"


@dataclass(frozen=True)
class TlsFiles:
    """Where one role's TLS material lives: the federation CA, its certificate and key."""

    ca: Path
    cert: Path
    key: Path

    @staticmethod
    def in_dir(d: Path) -> TlsFiles:
        return TlsFiles(d / CA_CERT, d / CERT, d / KEY)

    def check(self) -> TlsFiles:
        missing = [str(p) for p in (self.ca, self.cert, self.key) if not p.is_file()]
        if missing:
            raise SpecError(f"TLS material missing: {missing}; run `safehouse pki issue` or set the paths")
        return self

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(CA certificate, certificate chain, private key) as PEM bytes."""
        self.check()
        return self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    tmp.replace(path)


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Safehouse federation"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])  # fmt: skip


def init_ca(pki_dir: Path, days: int = 3650, force: bool = False) -> Path:
    """Create the federation CA in ``pki_dir``; refuse to replace one unless ``force``."""
    if (pki_dir / CA_CERT).exists() and not force:
        raise SpecError(f"{pki_dir / CA_CERT} exists: the federation already has a CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Safehouse federation CA"))
        .issuer_name(_name("Safehouse federation CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # key_cert_sign, crl_sign
        .sign(key, hashes.SHA256())
    )
    _write_private(pki_dir / CA_KEY, key)
    (pki_dir / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pki_dir / CA_CERT


def _load_ca(pki_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if not (pki_dir / CA_KEY).is_file():
        raise SpecError(f"{pki_dir / CA_KEY}: no federation CA here; run `safehouse pki init` first")
    cert = x509.load_pem_x509_certificate((pki_dir / CA_CERT).read_bytes())
    key = serialization.load_pem_private_key((pki_dir / CA_KEY).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SpecError(f"{pki_dir / CA_KEY}: not an EC private key")
    return cert, key


def issue(pki_dir: Path, identity: str, out_dir: Path, hosts: Sequence[str] = (), days: int = 825) -> TlsFiles:
    """A key and certificate for ``identity`` (a party name or ``coordinator``) in ``out_dir``.

    ``hosts`` adds DNS names or IP addresses the holder is reached at; the
    identity itself is always the first DNS name.
    """
    check_name("identity", identity)
    ca_cert, ca_key = _load_ca(pki_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = [x509.DNSName(identity)]
    for h in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            alt.append(x509.DNSName(h))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(identity))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles.in_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_private(files.key, key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.ca.write_bytes((pki_dir / CA_CERT).read_bytes())
    return files


def identity_of(cert_pem: bytes) -> str:
    """The identity a certificate carries: its first SAN DNS name."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise SpecError("certificate has no subject alternative name: it names no identity") from None
    dns = names.get_values_for_type(x509.DNSName)
    if not dns:
        raise SpecError("certificate has no DNS name: it names no identity")
    return str(dns[0])


def holder_tls(home: Home, name: str, insecure_dev: bool = False) -> TlsFiles | None:
    """The certificate ``name`` (a party's operator, a service) calls other roles with; None in
    ``--insecure-dev``."""
    return None if insecure_dev else TlsFiles.in_dir(home.tls_dir(name)).check()
