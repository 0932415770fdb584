"""The plain shapes SecureBoost's messages take between parties.

Workers unpickle peer messages against an exact allow-list, so every message
is built from dicts, lists, str, int, float, bytes and numeric numpy arrays only:
row memberships travel as ``numpy.packbits`` arrays, ciphertexts and the public
key as HEU's serialised bytes. The receiving side checks each shape here and
raises ``ValueError`` on anything malformed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Msg = dict[str, Any]
Decisions = list[dict[int, np.ndarray]]  # per tree: own split node -> True where a row goes left


def to_bits(mask: np.ndarray) -> np.ndarray:
    """A boolean vector as packed bits (uint8)."""
    return np.packbits(np.asarray(mask, dtype=bool))


def from_bits(packed: Any, count: int) -> np.ndarray:
    """Packed bits back to a boolean vector of ``count`` entries, checking the length."""
    if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8 or packed.ndim != 1:
        raise ValueError("row bits must be a 1-d uint8 array")
    if len(packed) != (count + 7) // 8:
        raise ValueError(f"row bits hold {len(packed) * 8} entries for {count} rows")
    return np.unpackbits(packed, count=count).astype(bool)


def node_bits(msg: Msg, key: str) -> dict[int, np.ndarray]:
    """A ``{node: packed bits}`` entry of a message (empty if absent)."""
    value = msg.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(n, int) for n in value):
        raise ValueError(f"message entry {key!r} must map node ids to row bits")
    return value


def splits(msg: Msg) -> np.ndarray:
    """The ``splits`` entry: (k, 3) int64 rows of [node, feature, bucket]."""
    value = msg.get("splits", np.zeros((0, 3), dtype="int64"))
    if not isinstance(value, np.ndarray) or value.ndim != 2 or value.shape[1] != 3:
        raise ValueError("splits must be a (k, 3) integer array")
    return value.astype("int64")


def pack_decisions(dec: Decisions, rows: int) -> Msg:
    """A passive party's decision bits for the wire: node ids and one bit matrix per tree."""
    nodes = [sorted(int(n) for n in t) for t in dec]
    bits = [np.packbits(np.column_stack([t[n] for n in ns]).astype(bool), axis=0) if ns
            else np.zeros((0, 0), dtype="uint8") for t, ns in zip(dec, nodes, strict=True)]  # fmt: skip
    return {"rows": int(rows), "nodes": nodes, "bits": bits}


def unpack_decisions(msg: Msg, rows: int) -> Decisions:
    """Inverse of :func:`pack_decisions`, checking the row count and shapes."""
    if int(msg.get("rows", -1)) != rows:
        raise ValueError(f"decisions are for {msg.get('rows')} rows, expected {rows}: align the rows first")
    nodes, mats = msg.get("nodes"), msg.get("bits")
    if not isinstance(nodes, list) or not isinstance(mats, list) or len(nodes) != len(mats):
        raise ValueError("malformed decisions message")
    out: Decisions = []
    for ns, m in zip(nodes, mats, strict=True):
        if not ns:
            out.append({})
            continue
        if not isinstance(m, np.ndarray) or m.dtype != np.uint8 or m.shape != ((rows + 7) // 8, len(ns)):
            raise ValueError("decision bits do not match their node list")
        bits = np.unpackbits(m, axis=0, count=rows).astype(bool)
        out.append({int(n): bits[:, i] for i, n in enumerate(ns)})
    return out


def node_categories(msg: Msg) -> list[dict[int, str]]:
    """The ``categories`` entry of a decisions message: per tree, own split node -> category."""
    value = msg["categories"]
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ValueError("categories must be a list of {node: category} per tree")
    return value
