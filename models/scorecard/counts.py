"""Per-bin (positives, rows) of a partner's features, under the label owner's HE key.

The label owner encrypts one plaintext per training row, ``(y, 1)`` in
SecureBoost's fixed-point pair layout (``g = 16 y``, ``h = 4``), and sends the
ciphertexts with its public key. The partner bins its own features, sums the
ciphertexts of each non-empty bin but each feature's last (HEU select sums),
Horner-packs the sums and returns them with the bins' non-empty mask. The
label owner decrypts with a range check and completes each feature's last bin
from its totals. It learns the partner's positives and rows per bin, by bin
index; the partner learns the public key and the row count, nothing of the
label (the ciphertexts are semantically secure) and nothing of the counts.
"""

from __future__ import annotations

import numpy as np

from models.secureboost import histogram as hg
from models.secureboost import wire
from models.secureboost.he import Evaluator, KeyOwner
from models.secureboost.packing import Layout, quantize, row_plaintexts, split_pair
from models.secureboost.wire import Msg
from models.woe import BinTable

FRAC_BITS = 4  # the smallest scale the layout admits: a bin's G is 16 x positives, its H 4 x rows
_G, _H = 1 << FRAC_BITS, 1 << (FRAC_BITS - 2)


class LabelSide:
    """The label owner: encrypts its labels once, opens the partner's per-bin sums."""

    def __init__(self, y: np.ndarray, schema: str, key_bits: int) -> None:
        y = np.asarray(y).ravel()
        if len(y) == 0 or not np.isin(y, (0, 1)).all():
            raise ValueError("the label must hold 0/1 only, on one or more rows")
        self.he = KeyOwner(schema, key_bits)
        self.layout = Layout.for_rows(len(y), self.he.plaintext_bits(), FRAC_BITS)
        self.g, self.h = quantize(y.astype("float64"), np.full(len(y), 0.25), FRAC_BITS)
        self.rows = len(y)

    def request(self) -> Msg:
        """The public key, the layout and one ciphertext per row, for the partner."""
        pt = row_plaintexts(self.g, self.h, self.layout)
        return {"pk": self.he.public_key(), "rows": self.rows, "layout": self.layout.to_wire(),
                "ct": self.he.encrypt_rows(pt)}  # fmt: skip

    def tables(self, reply: Msg) -> list[BinTable]:
        """One :class:`BinTable` per partner feature, from its reply."""
        n_bins = [int(b) for b in reply["n_bins"]]
        if not n_bins or min(n_bins) < 1:
            raise ValueError("the partner announced malformed bin counts")
        shape = (len(n_bins), max(n_bins))
        mask = wire.from_bits(reply["mask"], shape[0] * shape[1]).reshape(shape)
        for f, k in enumerate(n_bins):
            if mask[f, k:].any() or not mask[f].any():
                raise ValueError(f"the partner's non-empty mask of feature {f} does not match its bins")
        slots = hg.sent_slots(mask)
        values = [split_pair(v, self.layout) for v in self.he.open_packs(list(reply["packs"]), self.layout)]
        if len(values) != len(slots):
            raise ValueError(f"the partner sent {len(values)} bin sums; its mask announces {len(slots)}")
        g = np.array([a for a, _ in values], dtype="int64")
        h = np.array([b for _, b in values], dtype="int64")
        hist = hg.complete(mask, slots, g, h, (int(self.g.sum()), int(self.h.sum())))
        if (hist.g % _G).any() or (hist.h % _H).any() or (hist.g < 0).any() or (hist.g // _G > hist.h // _H).any():
            raise ValueError("the partner's bin sums are not counts of this job's rows")
        return [BinTable(hist.g[f, :k] // _G, hist.h[f, :k] // _H) for f, k in enumerate(n_bins)]


def reply(request: Msg, bins: np.ndarray, n_bins: list[int]) -> Msg:
    """The partner's answer: packed encrypted sums of its non-empty bins (``bins`` is rows x features)."""
    if int(request["rows"]) != bins.shape[0]:
        raise ValueError(f"the label owner has {request['rows']} rows, this party {bins.shape[0]}: align first")
    layout = Layout.of(list(request["layout"]))
    he = Evaluator(bytes(request["pk"]))
    he.load_rows(bytes(request["ct"]))
    if int(he.rows.rows) != bins.shape[0]:
        raise ValueError(f"received {he.rows.rows} row ciphertexts for {bins.shape[0]} rows")
    width = max(n_bins)
    mask = hg.nonempty(bins, np.arange(bins.shape[0]), width)
    slots = hg.sent_slots(mask)
    lists = [np.flatnonzero(bins[:, f] == b).tolist() for f, b in slots.tolist()]
    packs = he.pack(he.select_sums(None, lists), len(lists), layout) if lists else []
    return {"n_bins": [int(b) for b in n_bins], "mask": wire.to_bits(mask.ravel()), "packs": packs}
