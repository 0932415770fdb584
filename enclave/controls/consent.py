"""Firm authorisations (企业授权) for columns pulled by interface call (接口调用).

An authorisation lets one grantee (a bank) use one firm's authorisation-required
columns for one purpose until it expires. Records are signed with Ed25519 by
the platform's consent service and kept in the data owner's domain; a signed
revocation withdraws one from its time on. A job reads the book once, at its
start, so a revocation applies from the next job. Firms without a valid
authorisation have those columns treated as missing before any computation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from enclave.controls import keys
from enclave.data import uscc
from enclave.data.schema import Schema
from protocols.errors import DataError

CONSENT_DIR = "consent"
GRANTS = "authorisations.jsonl"
REVOCATIONS = "revocations.jsonl"
SIGNER = "consent"


@dataclass(frozen=True)
class Authorisation:
    id: str
    uscc: str
    grantee: str
    purpose: str
    issued: str  # ISO timestamps, UTC
    expires: str


@dataclass(frozen=True)
class Revocation:
    id: str  # the authorisation revoked
    revoked: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _signed(record: Mapping[str, Any], signer: keys.Signer) -> str:
    body = json.dumps(dict(record), sort_keys=True, ensure_ascii=False)
    sig = signer.sign(body.encode())
    return json.dumps({"record": dict(record), "key_id": signer.key_id, "sig": sig}, sort_keys=True) + "\n"


def consent_signer(key_dir: Path, trust_dir: Path) -> keys.Signer:
    """The consent service's key, kept in its own key directory apart from any trail."""
    return keys.load_or_create(key_dir, SIGNER, trust_dir)


def authorise_all(
    party_root: Path, signer: keys.Signer, firms: Iterable[str], grantee: str, purpose: str, days: int = 365
) -> list[Authorisation]:
    """Replace the consent book with one signed authorisation per firm (demo and test cities)."""
    book = party_root / CONSENT_DIR
    for name in (GRANTS, REVOCATIONS):
        (book / name).unlink(missing_ok=True)
    return grant(party_root, signer, firms, grantee, purpose, days)


def grant(
    party_root: Path,
    signer: keys.Signer,
    firms: Iterable[str],
    grantee: str,
    purpose: str,
    days: int,
    now: dt.datetime | None = None,
) -> list[Authorisation]:
    now = now or _now()
    out = []
    lines = []
    for code in firms:
        why = uscc.problem(code)
        if why is not None:
            raise DataError(f"cannot authorise {code!r}: {why}")
        a = Authorisation(secrets.token_hex(8), code, grantee, purpose, now.isoformat(),
                          (now + dt.timedelta(days=days)).isoformat())  # fmt: skip
        out.append(a)
        lines.append(_signed(asdict(a), signer))
    d = party_root / CONSENT_DIR
    d.mkdir(parents=True, exist_ok=True)
    with (d / GRANTS).open("a", encoding="utf-8") as f:
        f.writelines(lines)
    return out


def revoke(party_root: Path, signer: keys.Signer, auth_id: str, now: dt.datetime | None = None) -> Revocation:
    r = Revocation(auth_id, (now or _now()).isoformat())
    d = party_root / CONSENT_DIR
    d.mkdir(parents=True, exist_ok=True)
    with (d / REVOCATIONS).open("a", encoding="utf-8") as f:
        f.write(_signed(asdict(r), signer))
    return r


@dataclass(frozen=True)
class _Verified:
    """A prefix of a consent file whose every line verified: its length, its hash, its lines and records."""

    size: int
    sha256: str
    lines: int
    records: tuple[dict[str, Any], ...]


# The files are append-only and every line costs an Ed25519 verification (about 0.1 ms): a process
# (a node) verifies each line once and, on the next read, only what was appended since, if the
# prefix it verified is byte for byte unchanged (any other change means a full check again).
_VERIFIED: dict[tuple[str, str], _Verified] = {}
_VERIFIED_LOCK = threading.Lock()


def _trust_id(trust: Mapping[str, tuple[str, Ed25519PublicKey]]) -> str:
    h = hashlib.sha256()
    for kid in sorted(trust):
        role, public = trust[kid]
        h.update(f"{kid}:{role}:".encode() + public.public_bytes(Encoding.Raw, PublicFormat.Raw))
    return h.hexdigest()


def _verify_line(path: Path, i: int, raw: str, trust: Mapping[str, tuple[str, Ed25519PublicKey]]) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
        record, kid, sig = doc["record"], doc["key_id"], doc["sig"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DataError(f"{path}: line {i}: not a signed consent record") from None
    if kid not in trust or trust[kid][0] != SIGNER:
        raise DataError(f"{path}: line {i}: signed by a key that is not the consent service's")
    body = json.dumps(record, sort_keys=True, ensure_ascii=False).encode()
    if not keys.verify(trust[kid][1], sig, body):
        raise DataError(f"{path}: line {i}: signature does not verify (altered or forged)")
    return dict(record)


def _read(path: Path, data: bytes, trust: Mapping[str, tuple[str, Ed25519PublicKey]]) -> list[dict[str, Any]]:
    """Every record of the signed consent file ``path`` (its bytes: ``data``), each line verified
    (lines verified before by this process, in an unchanged prefix, are not verified again)."""
    if not data:
        return []
    key = (str(path.resolve()), _trust_id(trust))
    with _VERIFIED_LOCK:
        seen = _VERIFIED.get(key)
    if seen is None or len(data) < seen.size or hashlib.sha256(data[: seen.size]).hexdigest() != seen.sha256:
        seen = _Verified(0, hashlib.sha256(b"").hexdigest(), 0, ())
    cut = data.rfind(b"\n") + 1  # a last line without its newline may still grow: verified, not remembered
    out, i = list(seen.records), seen.lines
    for raw in data[seen.size :].decode("utf-8").splitlines():
        i += 1
        out.append(_verify_line(path, i, raw, trust))
    if cut > seen.size:
        done = data[:cut].count(b"\n")
        with _VERIFIED_LOCK:
            _VERIFIED[key] = _Verified(cut, hashlib.sha256(data[:cut]).hexdigest(), done, tuple(out[:done]))
    return out


@dataclass(frozen=True)
class ConsentBook:
    authorisations: tuple[Authorisation, ...]
    revocations: tuple[Revocation, ...]
    sha256: str

    @staticmethod
    def load(party_root: Path, trust_dir: Path) -> ConsentBook:
        trust = keys.trusted(trust_dir)
        d = party_root / CONSENT_DIR
        data = {name: (d / name).read_bytes() if (d / name).is_file() else b"" for name in (GRANTS, REVOCATIONS)}
        grants = tuple(Authorisation(**r) for r in _read(d / GRANTS, data[GRANTS], trust))
        revs = tuple(Revocation(**r) for r in _read(d / REVOCATIONS, data[REVOCATIONS], trust))
        return ConsentBook(grants, revs, hashlib.sha256(data[GRANTS] + data[REVOCATIONS]).hexdigest())

    def authorised(self, grantee: str, purpose: str, at: dt.datetime | None = None) -> set[str]:
        """Firms whose authorisation for (grantee, purpose) is valid at ``at``."""
        at = at or _now()
        revoked = {r.id: dt.datetime.fromisoformat(r.revoked) for r in self.revocations}
        ok = set()
        for a in self.authorisations:
            if a.grantee != grantee or a.purpose != purpose:
                continue
            if not dt.datetime.fromisoformat(a.issued) <= at < dt.datetime.fromisoformat(a.expires):
                continue
            if a.id in revoked and revoked[a.id] <= at:
                continue
            ok.add(a.uscc)
        return ok

    def next_change(self, grantee: str, purpose: str, at: dt.datetime | None = None) -> dt.datetime | None:
        """The first moment after ``at`` when :meth:`authorised` for (grantee, purpose) may change
        (an authorisation starts or expires, a revocation takes effect); None if none is due."""
        at = at or _now()
        times = [dt.datetime.fromisoformat(r.revoked) for r in self.revocations]
        for a in self.authorisations:
            if a.grantee == grantee and a.purpose == purpose:
                times += [dt.datetime.fromisoformat(a.issued), dt.datetime.fromisoformat(a.expires)]
        later = [t for t in times if t > at]
        return min(later) if later else None


def gated_columns(schema: Schema, features: Iterable[str]) -> list[str]:
    """The features of a dataset that need a firm's authorisation."""
    return [c for c in features if schema.column(c).access == "interface"]


def withhold(frame: pd.DataFrame, key: str, columns: list[str], authorised: set[str]) -> tuple[pd.DataFrame, int]:
    """Blank authorisation-required ``columns`` for firms not in ``authorised``."""
    if not columns:
        return frame, 0
    out = frame.copy()
    unauth = ~out[key].isin(authorised).to_numpy()
    for c in columns:
        if pd.api.types.is_bool_dtype(out[c]) or str(out[c].dtype) in ("Int64", "boolean"):
            out.loc[unauth, c] = pd.NA
        else:
            out.loc[unauth, c] = np.nan if pd.api.types.is_float_dtype(out[c]) else None
    return out, int(unauth.sum())
