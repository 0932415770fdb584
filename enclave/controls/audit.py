"""Append-only, hash-chained, signed audit trails, and their verification.

Every node and the coordinator keeps ``audit.jsonl`` in its own home (a
party's scoring service, a process of its own, keeps ``audit-serving.jsonl``). Each line
is one entry: ``seq``, time, signer, kind, job id, a body of facts (never rows),
the previous entry's hash, its own hash (SHA-256 over the canonical JSON of all
of that) and an Ed25519 signature over the hash. Changing a byte breaks the
entry's hash or signature; removing an entry breaks the chain (``seq`` and
``prev``); an entry signed by a key outside the trust directory is rejected.
The coordinator's entries name the nodes' entry hashes, so truncating a node's
tail is caught by the cross-reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from enclave.controls import keys
from enclave.home import Home

AUDIT_FILE = "audit.jsonl"
SERVING_AUDIT_FILE = "audit-serving.jsonl"  # a party's scoring service: a process of its own, a chain of its own
GENESIS = "0" * 64
HASHED_FIELDS = ("seq", "ts", "signer", "key_id", "kind", "job_id", "body", "prev")


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical({k: entry.get(k) for k in HASHED_FIELDS})).hexdigest()


def serialise(entry: Mapping[str, Any]) -> str:
    """The one textual form of an entry; verification insists on it byte for byte."""
    return json.dumps(dict(entry), sort_keys=True, ensure_ascii=False)


class AuditLog:
    """One signer's append-only trail. Thread-safe within a process."""

    def __init__(self, path: Path, signer: keys.Signer) -> None:
        self.path = path
        self.signer = signer
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._seq, self._prev = self._tail()

    def _tail(self) -> tuple[int, str]:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return 0, GENESIS
        last = self.path.read_text(encoding="utf-8").rstrip("\n").rsplit("\n", 1)[-1]
        doc = json.loads(last)
        return int(doc["seq"]), str(doc["hash"])

    def append(self, kind: str, job_id: str, body: Mapping[str, Any]) -> str:
        """Write one entry durably; return its hash."""
        with self._lock:
            entry: dict[str, Any] = {
                "seq": self._seq + 1,
                "ts": round(time.time(), 6),
                "signer": self.signer.name,
                "key_id": self.signer.key_id,
                "kind": kind,
                "job_id": job_id,
                "body": dict(body),
                "prev": self._prev,
            }
            h = entry_hash(entry)
            entry["hash"] = h
            entry["sig"] = self.signer.sign(bytes.fromhex(h))
            line = serialise(entry) + "\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._seq, self._prev = entry["seq"], h
            return h


def party_log(home: Home, party: str, key_dir: Path | None = None) -> AuditLog:
    return AuditLog(home.party(party).root / AUDIT_FILE, keys.party_signer(home, party, key_dir))


def coordinator_log(home: Home) -> AuditLog:
    return AuditLog(home.coordinator / AUDIT_FILE, keys.coordinator_signer(home))


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    seq: int | None
    what: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "entry ?"
        return f"{self.file}: line {self.line} ({where}): {self.what}"


def read_entries(path: Path) -> list[tuple[int, dict[str, Any] | None, str]]:
    """(line number, parsed entry or None, raw text) for every line."""
    out: list[tuple[int, dict[str, Any] | None, str]] = []
    # Split on "\n" only: str.splitlines() would also split on other control
    # characters and hide a changed line separator.
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, raw in enumerate(lines, start=1):
        try:
            doc = json.loads(raw)
            out.append((i, doc if isinstance(doc, dict) else None, raw))
        except json.JSONDecodeError:
            out.append((i, None, raw))
    return out


def verify_file(path: Path, trust: Mapping[str, tuple[str, Ed25519PublicKey]]) -> tuple[list[Problem], set[str]]:
    """Check one trail; return its problems and the hashes of its intact entries."""
    problems: list[Problem] = []
    good: set[str] = set()
    expected_seq, prev = 1, GENESIS
    signer_name: str | None = None
    for line, doc, raw in read_entries(path):
        if doc is None:
            problems.append(Problem(path, line, None, "not a JSON entry (altered)"))
            expected_seq += 1
            continue
        seq = doc.get("seq") if isinstance(doc.get("seq"), int) else None
        ok = True
        if raw != serialise(doc):
            problems.append(Problem(path, line, seq, "text differs from the entry's signed form (altered)"))
            ok = False
        if seq != expected_seq:
            problems.append(
                Problem(path, line, seq, f"sequence jumps from {expected_seq - 1} to {seq}: entries removed")
            )
            ok = False
        if doc.get("prev") != prev:
            problems.append(Problem(path, line, seq, "does not chain to the previous entry (removed or reordered)"))
            ok = False
        h = entry_hash(doc)
        if h != doc.get("hash"):
            problems.append(Problem(path, line, seq, "content does not match its hash (altered)"))
            ok = False
        kid = str(doc.get("key_id"))
        if kid not in trust:
            problems.append(Problem(path, line, seq, f"signed by unknown key {kid!r} (forged)"))
            ok = False
        else:
            name, pub = trust[kid]
            if doc.get("signer") != name:
                problems.append(Problem(path, line, seq, f"claims signer {doc.get('signer')!r} but key is {name!r}"))
                ok = False
            if not keys.verify(pub, str(doc.get("sig", "")), bytes.fromhex(h)):
                problems.append(Problem(path, line, seq, "signature does not verify (altered or forged)"))
                ok = False
        if signer_name is None:
            signer_name = doc.get("signer")
        elif doc.get("signer") != signer_name:
            problems.append(Problem(path, line, seq, f"entry of {doc.get('signer')!r} inside {signer_name!r}'s trail"))
            ok = False
        if ok:
            good.add(h)
        expected_seq = (seq or expected_seq) + 1
        prev = str(doc.get("hash"))
    return problems, good


def trails(home: Home) -> list[Path]:
    parties = home.root / "parties"
    found = sorted([*parties.glob(f"*/{AUDIT_FILE}"), *parties.glob(f"*/{SERVING_AUDIT_FILE}")])
    coord = home.coordinator / AUDIT_FILE
    return [*found, *([coord] if coord.is_file() else [])]


def verify_home(home: Home) -> list[Problem]:
    """Verify every trail under a home and the coordinator's cross-references."""
    trust = keys.trusted(home.root / "trust")
    problems: list[Problem] = []
    good: dict[str, set[str]] = {}
    for path in trails(home):
        p, g = verify_file(path, trust)
        problems += p
        good.setdefault(path.parent.name, set()).update(g)
    coord = home.coordinator / AUDIT_FILE
    if coord.is_file():
        for line, doc, _ in read_entries(coord):
            if doc is None:
                continue
            for party, hashes in (doc.get("body", {}).get("node_entries") or {}).items():
                for h in hashes:
                    if h not in good.get(party, set()):
                        problems.append(
                            Problem(coord, line, doc.get("seq"), f"names {party}'s entry {h[:12]}…, "
                                    f"which {party}'s trail no longer holds intact (removed or altered)")
                        )  # fmt: skip
    return problems


def story(home: Home, job_id: str) -> list[dict[str, Any]]:
    """Every entry about one job, from every trail, in time order."""
    out: list[dict[str, Any]] = []
    for path in trails(home):
        out += [doc for _, doc, _ in read_entries(path) if doc is not None and doc.get("job_id") == job_id]
    return sorted(out, key=lambda d: (d.get("ts", 0), d.get("signer", "")))


def describe(entry: Mapping[str, Any]) -> str:
    body = entry.get("body", {})
    facts = ", ".join(f"{k}={_short(v)}" for k, v in body.items())
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(entry.get("ts", 0))))
    return f"{when}  {entry.get('signer', '?'):<12} #{entry.get('seq')} {entry.get('kind')}: {facts}"


def _short(v: Any) -> str:
    if isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v):
        return v[:12] + "…"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_short(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    return str(v)
