"""HEU (``heu.phe``, ``heu.numpy``): the only cryptography SecureBoost uses.

The label owner generates the key pair (OU by default, or HEU's ZPaillier),
encrypts one plaintext per row per tree and decrypts packed bucket sums with a
range check. Passive parties load the public key from bytes and compute select
sums, scalar multiplications by powers of two and additions. Every batch call
runs on all cores. Ciphertexts and the public key cross parties only as HEU's
serialised bytes. ``heu`` is imported where it is used, so importing the
package does not load it.

With :class:`Ahead` the label owner's key comes from helper processes
(``he_helper.py``, the label owner's own) racing on every core, and the one
that wins goes on making encryptions of zero at idle priority: a row's
encryption then takes one plaintext addition to an encryption of zero made
while the cores were idle (waiting for a passive party, or in single-threaded
Python). ``Enc(0) + m`` under fresh randomness is distributed exactly as
``Enc(m)``, and each encryption of zero is used once.
"""

from __future__ import annotations

import functools
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from models.secureboost.packing import Layout, unpack

HELPER = Path(__file__).with_name("he_helper.py")
CHUNK = 1024  # encryptions of zero per helper message
MAX_RACERS = 4
# A helper that has sent no key by then is stuck, not unlucky: HEU's OU-2048 key takes 0.3-6 s here.
KEY_TIMEOUT = 120.0
log = logging.getLogger(__name__)

Packs = list[tuple[bytes, int, int]]  # (serialised ciphertexts, how many, slots in each)


@dataclass
class OpCounts:
    """HE operations this party performed."""

    encrypt: int = 0
    ahead: int = 0  # of those encryptions, made ahead as encryptions of zero plus a plaintext addition
    add: int = 0
    mul: int = 0
    decrypt: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict."""
        return asdict(self)


def plaintext_bits(public_key: Any) -> int:
    """Bits of the largest magnitude an HEU public key's scheme decrypts unambiguously."""
    return int(str(public_key.plaintext_bound())).bit_length() - 1


def _encoder() -> Any:
    from heu import phe

    return phe.BigintEncoderParams()


class KeyOwner:
    """The label owner's side: the key pair, row encryption, range-checked decryption.

    With ``ahead`` the key comes from :class:`Ahead`'s racing helpers, whose
    encryptions of zero :meth:`encrypt_rows` then takes; the HEU kit is built
    from the keys' bytes at first use, so the public key can be sent first.
    :meth:`close` stops the helper (idempotent; also on garbage collection and
    at exit).
    """

    def __init__(self, schema: str, key_bits: int, kit: Any = None, ahead: Ahead | None = None) -> None:
        self.ahead = ahead
        self._kit = kit
        self._keys = ahead.key() if kit is None and ahead is not None else None
        if self._kit is None and self._keys is None:
            from heu import numpy as hnp
            from heu import phe

            self._kit = hnp.setup(getattr(phe.SchemaType, schema), key_bits)
        self.counts = OpCounts()

    @property
    def kit(self) -> Any:
        """HEU's kit (``heu.numpy.HeKit``) for the key pair."""
        if self._kit is None:
            from heu import numpy as hnp
            from heu import phe

            pk, sk, _ = self._keys  # type: ignore[misc]
            self._kit = hnp.HeKit(phe.setup(phe.PublicKey.load_from(pk), phe.SecretKey.load_from(sk)))
        return self._kit

    @functools.cached_property
    def encryptor(self) -> Any:
        """HEU's encryptor."""
        return self.kit.encryptor()

    @functools.cached_property
    def decryptor(self) -> Any:
        """HEU's decryptor."""
        return self.kit.decryptor()

    def close(self) -> None:
        """Stop the helper process, if any."""
        if self.ahead is not None:
            self.ahead.close()

    def public_key(self) -> bytes:
        """The serialised public key."""
        return self._keys[0] if self._keys is not None else bytes(self.kit.public_key().serialize())

    def secret_key(self) -> bytes:
        """The serialised secret key: for the owner's own part only, never for the wire."""
        return self._keys[1] if self._keys is not None else bytes(self.kit.secret_key().serialize())

    @staticmethod
    def restore(public_key: bytes, secret_key: bytes) -> KeyOwner:
        """A key owner from its saved keys (a scorecard's partner tables are encrypted under them)."""
        from heu import numpy as hnp
        from heu import phe

        kit = hnp.HeKit(phe.setup(phe.PublicKey.load_from(public_key), phe.SecretKey.load_from(secret_key)))
        return KeyOwner("", 0, kit)

    def plaintext_bits(self) -> int:
        """Bits of the largest magnitude the scheme decrypts unambiguously."""
        if self._keys is not None:
            return self._keys[2]
        return plaintext_bits(self.kit.public_key())

    def encrypt_rows(self, plaintexts: np.ndarray) -> bytes:
        """One ciphertext per row plaintext, in batches; serialised for the wire.

        The first rows take the encryptions of zero made ahead (one plaintext
        addition each), the rest are encrypted now.
        """
        values = np.asarray(plaintexts).reshape(-1, 1)
        zeros = self.ahead.take(len(values)) if self.ahead is not None else []
        if not zeros:
            ct = self.encryptor.encrypt(self.kit.array(values, _encoder()))
        else:  # pieces of at most CHUNK rows: HEU assigns small slices far faster than large ones
            evaluator, parts, at = self.kit.evaluator(), [], 0
            for z in zeros:
                parts.append(evaluator.add(z, self.kit.array(values[at : at + int(z.rows)], _encoder())))
                at += int(z.rows)
            self.counts.ahead += at
            for a in range(at, len(values), CHUNK):
                parts.append(self.encryptor.encrypt(self.kit.array(values[a : a + CHUNK], _encoder())))
            ct = _concat(parts)
        self.counts.encrypt += len(values)
        return bytes(ct.serialize())

    def decrypt_packs(self, blob: bytes, range_bits: int) -> list[int]:
        """Decrypt serialised packs in one batch; a plaintext beyond +-2**range_bits raises."""
        from heu import numpy as hnp

        ct = hnp.CiphertextArray.load_from(blob)
        pt = self.decryptor.decrypt_in_range(ct, range_bits)
        self.counts.decrypt += int(ct.rows)
        return [int(v) for v in pt.to_numpy().ravel()]

    def open_packs(self, packs: Packs, layout: Layout) -> list[int]:
        """Every slot of a party's packs, in order: decrypted with a range check, then unpacked."""
        out: list[int] = []
        for blob, count, per in packs:
            if not 1 <= int(per) <= layout.slots:
                raise ValueError(f"a pack of {per} slots exceeds the layout's {layout.slots}")
            opened = self.decrypt_packs(bytes(blob), int(per) * layout.slot_bits)
            if len(opened) != int(count):
                raise ValueError(f"a pack batch holds {len(opened)} ciphertexts, announced {count}")
            for v in opened:
                out.extend(unpack(v, int(per), layout))
        return out


def _concat(arrays: list[Any]) -> Any:
    """One column of ciphertexts from several (HEU has no concatenation: index, then assign each)."""
    if len(arrays) == 1:
        return arrays[0]
    out = arrays[0][[0] * sum(int(a.rows) for a in arrays)]
    at = 0
    for a in arrays:
        out[at : at + int(a.rows)] = a
        at += int(a.rows)
    return out


def _frame(stream: IO[bytes]) -> tuple[bytes, bytes] | None:
    """One helper frame (tag, payload), or None at the end of the stream."""
    head = stream.read(9)
    if len(head) < 9:
        return None
    size = int.from_bytes(head[1:], "big")
    payload = stream.read(size)
    return (head[:1], payload) if len(payload) == size else None


def _fields(payload: bytes, count: int) -> list[bytes]:
    """Length-prefixed fields (8-byte big-endian lengths) of a helper frame's payload."""
    out, at = [], 0
    for _ in range(count):
        size = int.from_bytes(payload[at : at + 8], "big")
        out.append(payload[at + 8 : at + 8 + size])
        at += 8 + size
    if at != len(payload) or any(len(f) == 0 for f in out):
        raise ValueError("a malformed key frame from the HE helper")
    return out


def _kill(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()
        if p.stdout is not None:
            p.stdout.close()


class Ahead:
    """The label owner's helper processes: the key pair raced on every core, then encryptions of zero ahead.

    Each helper (``he_helper.py``) generates a key pair with HEU; the first
    to finish is kept and the others are killed. The kept helper then makes
    encryptions of zero under that key at idle priority; a thread here keeps
    up to ``capacity`` of them (the pipe holds the helper back beyond that).
    If every helper fails, or none sends a key within ``key_timeout`` seconds
    (stuck), :meth:`key` returns None and the label owner generates its key
    itself; if the kept one dies, rows are encrypted now.
    """

    def __init__(self, schema: str, key_bits: int, capacity: int, racers: int | None = None,
                 key_timeout: float = KEY_TIMEOUT) -> None:  # fmt: skip
        count = racers if racers is not None else max(1, min(os.cpu_count() or 1, MAX_RACERS))
        cmd = [sys.executable, "-P", str(HELPER), schema, str(int(key_bits)), str(CHUNK), str(os.getpid())]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.error = ""
        for _ in range(count):
            try:
                self.procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                   stderr=subprocess.DEVNULL))  # fmt: skip
            except OSError as e:  # no process to spare: fewer racers, or the key made in process
                self.error = f"cannot start an HE helper: {e}"
        self.capacity = int(capacity)
        self.key_timeout = float(key_timeout)
        self.cond = threading.Condition()
        self.chunks: deque[tuple[Any, int]] = deque()  # serialised bytes, or a loaded array, with its rows
        self.count = 0
        self.closed = False
        self.kept: subprocess.Popen[bytes] | None = None  # the helper that won the race
        self.kept_alive: bool | None = None  # at close: whether the kept helper was still running
        self._finalizer = weakref.finalize(self, _kill, self.procs)

    def key(self) -> tuple[bytes, bytes, int] | None:
        """The first helper's (public key, secret key, plaintext bits); the others are killed.

        None if every helper failed, or none sent a key within ``key_timeout`` seconds.
        """
        deadline = time.monotonic() + self.key_timeout
        with selectors.DefaultSelector() as sel:
            for p in self.procs:
                sel.register(p.stdout, selectors.EVENT_READ, p)  # type: ignore[arg-type]
            while sel.get_map():
                left = deadline - time.monotonic()
                events = sel.select(timeout=max(left, 0.0))
                if not events and left <= 0:
                    self.error = f"no HE helper sent a key within {self.key_timeout:g} s"
                    break
                for ready, _ in events:
                    proc: subprocess.Popen[bytes] = ready.data
                    frame = _frame(proc.stdout)  # type: ignore[arg-type]
                    if frame is not None and frame[0] == b"K":
                        self._keep(proc)
                        pk, sk, bits = _fields(frame[1], 3)
                        return pk, sk, int(bits)
                    self.error = frame[1].decode(errors="replace") if frame else "the helper ended"
                    sel.unregister(ready.fileobj)
        log.warning("no key from the HE helper processes; generating it in process: %s", self.error[-500:])
        self.close()
        return None

    def _keep(self, winner: subprocess.Popen[bytes]) -> None:
        _kill([p for p in self.procs if p is not winner])
        self.kept = winner
        if self.capacity > 0:
            threading.Thread(target=self._fill, args=(winner.stdout,), name="he-ahead", daemon=True).start()
        else:
            _kill([winner])

    def _fill(self, stream: IO[bytes]) -> None:
        """Read the kept helper's encryptions of zero while fewer than ``capacity`` are held."""
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.closed or self.count < self.capacity)
                if self.closed:
                    return
            try:
                frame = _frame(stream)
            except (OSError, ValueError):  # closed under us by close()
                return
            if frame is None or frame[0] != b"Z":
                self.error = frame[1].decode(errors="replace") if frame else "the helper ended"
                return
            rows = int.from_bytes(frame[1][:8], "big")
            with self.cond:
                self.chunks.append((frame[1][8:], rows))
                self.count += rows

    def take(self, rows: int) -> list[Any]:
        """Up to ``rows`` encryptions of zero held now (never waits), as HEU arrays; each is handed out once."""
        from heu import numpy as hnp

        got: list[tuple[Any, int]] = []
        with self.cond:
            total = 0
            while self.chunks and total < rows:
                got.append(self.chunks.popleft())
                total += got[-1][1]
            self.count -= total
            self.cond.notify_all()
        out = [hnp.CiphertextArray.load_from(x) if isinstance(x, bytes) else x for x, _ in got]
        extra = total - rows
        if extra > 0:  # the last chunk's remainder goes back, unused
            last, n = out[-1], got[-1][1]
            rest = last[n - extra : n]
            out[-1] = last[: n - extra]
            with self.cond:
                self.chunks.appendleft((rest, extra))
                self.count += extra
        return out

    def close(self) -> None:
        """Stop every helper (idempotent)."""
        if self.kept is not None and self.kept_alive is None:
            self.kept_alive = self.kept.poll() is None
        with self.cond:
            self.closed = True
            self.chunks.clear()
            self.count = 0
            self.cond.notify_all()
        self._finalizer()


class Evaluator:
    """A passive party's side: select sums and packing under the public key only."""

    def __init__(self, public_key: bytes) -> None:
        from heu import numpy as hnp
        from heu import phe

        self.kit = hnp.setup(phe.PublicKey.load_from(public_key))
        self.ev = self.kit.evaluator()
        self.rows: Any = None
        self.counts = OpCounts()

    def load_rows(self, blob: bytes) -> None:
        """This tree's row ciphertexts, serialised by the label owner."""
        from heu import numpy as hnp

        self.rows = hnp.CiphertextArray.load_from(blob)

    def select_sums(self, source: Any, lists: list[list[int]]) -> Any:
        """One ciphertext per index list: the sum of ``source`` (default: the rows) at those indices."""
        src = self.rows if source is None else source
        if src is None:
            raise RuntimeError("no row ciphertexts loaded for this tree")
        out = self.ev.batch_select_sum(src, lists)
        self.counts.add += sum(max(len(x) - 1, 0) for x in lists)
        return out

    def rerandomise(self, cts: Any) -> Any:
        """The same plaintexts under fresh randomness (each plus a new encryption of 0), so the
        key owner, who may have kept the ciphertexts that were summed, cannot tell which."""
        zeros = self.kit.encryptor().encrypt(self.kit.array(np.zeros((int(cts.rows), 1), dtype=object), _encoder()))
        self.counts.encrypt += int(cts.rows)
        self.counts.add += int(cts.rows)
        return self.ev.add(cts, zeros)

    def pack(self, sums: Any, count: int, layout: Layout, enabled: bool = True) -> Packs:
        """Horner-pack the first ``count`` sums, ``layout.slots`` per ciphertext (or send them one each)."""
        if count == 0:
            return []
        index = np.arange(count)
        if not enabled or layout.slots == 1:
            return [(bytes(sums[index.tolist()].serialize()), count, 1)]
        k = layout.slots
        full = count // k
        out: Packs = []
        if full:
            out.append((self._horner(sums, index[: full * k].reshape(full, k), layout), full, k))
        if count > full * k:
            rest = index[full * k :].reshape(1, -1)
            out.append((self._horner(sums, rest, layout), 1, rest.shape[1]))
        return out

    def _horner(self, sums: Any, cols: np.ndarray, layout: Layout) -> bytes:
        """``acc = acc * 2**W + c`` from the top slot down, every pack at once."""
        shift = self.kit.array(np.array([[1 << layout.slot_bits]], dtype=object), _encoder())
        acc = sums[cols[:, -1].tolist()]
        for t in range(cols.shape[1] - 2, -1, -1):
            acc = self.ev.add(self.ev.mul(acc, shift), sums[cols[:, t].tolist()])
            self.counts.mul += cols.shape[0]
            self.counts.add += cols.shape[0]
        return bytes(acc.serialize())
