"""Ed25519 identities of nodes, the coordinator and the consent service.

Each signer keeps its private key (``<name>.key``, mode 0600) in a key
directory apart from the audit trail it signs, and publishes the public half to
the trust directory (``trust/<name>.pub``) that auditors verify against. Trust
entries are pinned: a different key under a name already trusted is refused,
so nobody replaces the consent service's or the coordinator's key by
publishing under their names. A key id is the first 16 hex characters of the
SHA-256 of the raw public key.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from enclave.home import Home, check_name
from protocols.errors import SpecError


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    name: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, data: bytes) -> str:
        return self.private.sign(data).hex()


def verify(public: Ed25519PublicKey, signature_hex: str, data: bytes) -> bool:
    try:
        public.verify(bytes.fromhex(signature_hex), data)
        return True
    except (InvalidSignature, ValueError):
        return False


def load_or_create(key_dir: Path, name: str, trust_dir: Path | None) -> Signer:
    """This signer's key, created on first use; its public half is published."""
    check_name("signer", name)
    path = key_dir / f"{name}.key"
    if path.is_file():
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise SpecError(f"{path}: not an Ed25519 private key")
    else:
        key_dir.mkdir(parents=True, exist_ok=True)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    signer = Signer(name, private)
    if trust_dir is not None:
        publish(trust_dir, name, signer.public)
    return signer


class PinnedKeyError(SpecError):
    """A different key was offered under a name the trust directory already holds."""


def publish(trust_dir: Path, name: str, public: Ed25519PublicKey) -> None:
    """Trust ``public`` under ``name``; refuse if another key is already trusted under it."""
    trust_dir.mkdir(parents=True, exist_ok=True)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    target = trust_dir / f"{name}.pub"
    if target.is_file():
        if target.read_bytes() != pem:
            raise PinnedKeyError(f"{target}: another key is already trusted as {name!r}; refusing to replace it")
        return
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def trusted(trust_dir: Path) -> dict[str, tuple[str, Ed25519PublicKey]]:
    """Trusted public keys by key id: key id -> (signer name, key)."""
    out: dict[str, tuple[str, Ed25519PublicKey]] = {}
    if not trust_dir.is_dir():
        return out
    for f in sorted(trust_dir.glob("*.pub")):
        pub = serialization.load_pem_public_key(f.read_bytes())
        if not isinstance(pub, Ed25519PublicKey):
            raise SpecError(f"{f}: not an Ed25519 public key")
        out[key_id(pub)] = (f.stem, pub)
    return out


def party_signer(home: Home, party: str, key_dir: Path | None = None) -> Signer:
    check_name("party", party)
    return load_or_create(key_dir or home.key_dir(party), party, home.trust_dir)


def coordinator_signer(home: Home) -> Signer:
    return load_or_create(home.key_dir("coordinator"), "coordinator", home.trust_dir)
