"""HEU (``heu.phe``, ``heu.numpy``): the only cryptography SecureBoost uses.

The label owner generates the key pair (OU by default, or HEU's ZPaillier),
encrypts one plaintext per row per tree and decrypts packed bucket sums with a
range check. Passive parties load the public key from bytes and compute select
sums, scalar multiplications by powers of two and additions. Every batch call
runs on all cores. Ciphertexts and the public key cross parties only as HEU's
serialised bytes. ``heu`` is imported where it is used, so importing the
package does not load it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models.secureboost.packing import Layout, unpack

Packs = list[tuple[bytes, int, int]]  # (serialised ciphertexts, how many, slots in each)


@dataclass
class OpCounts:
    """HE operations this party performed."""

    encrypt: int = 0
    add: int = 0
    mul: int = 0
    decrypt: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict."""
        return asdict(self)


def _encoder() -> Any:
    from heu import phe

    return phe.BigintEncoderParams()


class KeyOwner:
    """The label owner's side: the key pair, row encryption, range-checked decryption."""

    def __init__(self, schema: str, key_bits: int, kit: Any = None) -> None:
        from heu import numpy as hnp
        from heu import phe

        self.kit = kit if kit is not None else hnp.setup(getattr(phe.SchemaType, schema), key_bits)
        self.encryptor = self.kit.encryptor()
        self.decryptor = self.kit.decryptor()
        self.counts = OpCounts()

    def public_key(self) -> bytes:
        """The serialised public key."""
        return bytes(self.kit.public_key().serialize())

    def secret_key(self) -> bytes:
        """The serialised secret key: for the owner's own part only, never for the wire."""
        return bytes(self.kit.secret_key().serialize())

    @staticmethod
    def restore(public_key: bytes, secret_key: bytes) -> KeyOwner:
        """A key owner from its saved keys (a scorecard's partner tables are encrypted under them)."""
        from heu import numpy as hnp
        from heu import phe

        kit = hnp.HeKit(phe.setup(phe.PublicKey.load_from(public_key), phe.SecretKey.load_from(secret_key)))
        return KeyOwner("", 0, kit)

    def plaintext_bits(self) -> int:
        """Bits of the largest magnitude the scheme decrypts unambiguously."""
        return int(str(self.kit.public_key().plaintext_bound())).bit_length() - 1

    def encrypt_rows(self, plaintexts: np.ndarray) -> bytes:
        """One ciphertext per row plaintext, in one batch; serialised for the wire."""
        ct = self.encryptor.encrypt(self.kit.array(np.asarray(plaintexts).reshape(-1, 1), _encoder()))
        self.counts.encrypt += len(plaintexts)
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
