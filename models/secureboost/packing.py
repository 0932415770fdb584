"""Fixed-point gradients and the plaintext layout of every ciphertext.

Row plaintext (one per row per tree, encrypted once by the label owner)::

    m_i = g_i * 2**W_h + h_i      g_i = round(grad * 2**f)   (|g_i| <= 2**f)
                                  h_i = round(hess * 2**f)   (0 <= h_i <= 2**(f-2))

(rounded stochastically in training: see ``quantize``).

Any sum over a set S of at most N rows is ``v_S = G_S * 2**W_h + H_S`` with
``0 <= H_S <= N * 2**(f-2) < 2**W_h`` (so H never borrows from G) and
``|G_S| <= N * 2**f``; hence ``|v_S| < 2**(W_p - 1)`` for the slot width
``W_p = W_h + f + bits(N) + 1``.

A passive party packs k bucket-sum ciphertexts into one by Horner's rule
(``acc = acc * 2**W_p + c``: scalar multiplications by a power of two and
additions), so the label owner decrypts::

    P = sum_t v_t * 2**(t * W_p),   t < k,   each |v_t| < 2**(W_p - 1)

and ``|P| < 2**(k * W_p - 1)``. ``k * W_p <= plaintext_bits - margin`` keeps P
inside the scheme's plaintext space; the label owner decrypts with a range
check of ``k * W_p`` bits (which also blocks OU's plaintext-overflow attack)
and unpacking refuses any bit above the slots. What it reads is therefore k
bucket sums (G_b, H_b) side by side and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Gradients at 2**-12, rounded stochastically (``quantize``): AUC equals that of 2**-20 (sgb_v's
# fixed_point_parameter) on the demo city, UCI Taiwan and Give Me Some Credit, while each row
# plaintext is 16 bits shorter (HEU's OU encrypts with a table of 10-bit windows and skips zero
# windows: about two windows fewer per row) and each packed slot 16 bits narrower (Horner packing
# squares once per slot bit; 12 slots per pack instead of 9).
FRAC_BITS = 12
MARGIN_BITS = 16  # headroom between the packed plaintext and the plaintext bound


def bits_for(n: int) -> int:
    """Bits to hold any integer in [0, n]."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return max(int(n).bit_length(), 1)


@dataclass(frozen=True)
class Layout:
    """Fixed-point scale and slot widths for sums of at most some number of rows."""

    frac_bits: int
    h_bits: int
    slot_bits: int
    slots: int

    @staticmethod
    def for_rows(max_rows: int, plaintext_bits: int, frac_bits: int = FRAC_BITS) -> Layout:
        """The tightest layout under which no sum of ``max_rows`` rows overflows its slot."""
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        if not 4 <= frac_bits <= 40:
            raise ValueError(f"frac_bits must be in [4, 40], got {frac_bits}")
        row_bits = bits_for(max_rows)
        h_bits = frac_bits - 2 + row_bits + 1
        slot_bits = h_bits + frac_bits + row_bits + 1
        slots = (plaintext_bits - MARGIN_BITS) // slot_bits
        if slots < 1:
            raise ValueError(f"a plaintext space of {plaintext_bits} bits cannot hold one {slot_bits}-bit slot")
        return Layout(frac_bits, h_bits, slot_bits, slots)

    @staticmethod
    def for_values(value_bits: int, plaintext_bits: int) -> Layout:
        """Slots for signed integers of magnitude below ``2**value_bits`` (no gradient pair inside)."""
        slot_bits = value_bits + 2
        slots = (plaintext_bits - MARGIN_BITS) // slot_bits
        if slots < 1:
            raise ValueError(f"a plaintext space of {plaintext_bits} bits cannot hold one {slot_bits}-bit slot")
        return Layout(FRAC_BITS, 0, slot_bits, slots)

    @staticmethod
    def of(values: list[int]) -> Layout:
        """A layout from its wire form (four ints), checked for sanity."""
        if len(values) != 4 or any(int(v) < 1 for v in values):
            raise ValueError(f"malformed layout {values!r}")
        lay = Layout(*(int(v) for v in values))
        if lay.slot_bits <= lay.h_bits + lay.frac_bits:
            raise ValueError(f"layout slot of {lay.slot_bits} bits cannot hold a gradient pair")
        return lay

    def to_wire(self) -> list[int]:
        """The four ints the passive parties receive."""
        return [self.frac_bits, self.h_bits, self.slot_bits, self.slots]

    @property
    def scale(self) -> float:
        """The fixed-point scale 2**frac_bits."""
        return float(2**self.frac_bits)

    @property
    def row_plaintext_bits(self) -> int:
        """Bits of one row's plaintext (sign excluded)."""
        return self.h_bits + self.frac_bits + 1


def quantize(grad: np.ndarray, hess: np.ndarray, frac_bits: int = FRAC_BITS,
             rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Fixed-point g and h (int64); g clipped to [-1, 1] and h to [0, 1/4], the logistic loss's ranges.

    With ``rng`` each value rounds up with probability equal to its fraction
    (stochastic rounding: unbiased, so a bucket sum's error grows with the
    square root of its rows, not with their count). Rounding to nearest is
    biased wherever many rows share a score, as all rows of a leaf do after
    the first tree: with 12 fractional bits that moved Give Me Some Credit's
    AUC by 0.002; stochastic rounding gives 2**-20's AUC. (LightGBM's quantised
    training rounds stochastically for the same reason.) Without ``rng``: to
    nearest (exact values stay exact either way).
    """
    scale = float(2**frac_bits)
    g, h = np.clip(grad, -1.0, 1.0) * scale, np.clip(hess, 0.0, 0.25) * scale
    if rng is None:
        return np.rint(g).astype("int64"), np.rint(h).astype("int64")
    return np.floor(g + rng.random(len(g))).astype("int64"), np.floor(h + rng.random(len(h))).astype("int64")


def row_plaintexts(g: np.ndarray, h: np.ndarray, layout: Layout) -> np.ndarray:
    """``g * 2**W_h + h`` per row (int64 while it fits, Python ints beyond)."""
    if layout.row_plaintext_bits <= 62:
        return g.astype("int64") * (1 << layout.h_bits) + h.astype("int64")
    return np.array([int(a) * (1 << layout.h_bits) + int(b) for a, b in zip(g, h, strict=True)], dtype=object)


def split_pair(v: int, layout: Layout) -> tuple[int, int]:
    """A decrypted pair value back to (G, H)."""
    h = v & ((1 << layout.h_bits) - 1)  # & on a negative int is two's complement: H is the low bits
    return (v - h) >> layout.h_bits, h


def pack(values: list[int], layout: Layout) -> int:
    """What Horner packing computes under encryption, in plaintext (tests)."""
    if len(values) > layout.slots:
        raise ValueError(f"{len(values)} values exceed {layout.slots} slots")
    acc = 0
    for v in reversed(values):
        acc = (acc << layout.slot_bits) + int(v)
    return acc


def unpack(p: int, count: int, layout: Layout) -> list[int]:
    """Signed slots of a decrypted packed plaintext, lowest first."""
    width = layout.slot_bits
    full, half = 1 << width, 1 << (width - 1)
    out = []
    for _ in range(count):
        low = p & (full - 1)
        if low >= half:
            low -= full
        out.append(low)
        p = (p - low) >> width
    if p != 0:
        raise ValueError("packed plaintext has bits above its slots: overflow or tampering")
    return out
