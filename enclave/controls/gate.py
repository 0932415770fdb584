"""The output gate: what may leave a node after a job.

An output leaves only if its job type's description declares it, it is not a
per-firm output (those stay with the label owner, in its own domain, whatever
any policy says), and the node's policy grants its kind. Aggregate tables
obey the policy's minimum cell size: a group with fewer than k firms has its
counts suppressed. Tabular outputs are scanned for
raw USCCs and withheld if one slips through desensitisation. Everything not
released is named in the result so the node can log it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enclave.data import uscc


@dataclass(frozen=True)
class Declared:
    """An output a job type may ever release: its file name, policy kind and media type."""

    name: str
    kind: str
    media_type: str
    # One row per firm (scores, a scored list): never leaves the label owner's domain.
    per_firm: bool = False


_USCC_LIKE = re.compile(rb"[0-9A-HJ-NP-RTUWXY]{2}\d{6}[0-9A-HJ-NP-RTUWXY]{10}")


@dataclass(frozen=True)
class Released:
    name: str
    media_type: str
    data: bytes
    sha256: str


@dataclass(frozen=True)
class GateResult:
    metrics: dict[str, float]
    artifacts: tuple[Released, ...]
    model_parts: dict[str, str]
    withheld: tuple[str, ...] = ()
    suppressed_cells: int = 0
    notes: tuple[str, ...] = field(default=())


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def suppress_small_cells(
    table: list[dict[str, Any]], k: int, count_field: str = "firms"
) -> tuple[list[dict[str, Any]], int]:
    out, n = [], 0
    for row in table:
        row = dict(row)
        if int(row.get(count_field) or 0) < k:
            n += 1
            row = {key: (None if isinstance(v, int | float) and key != "band" else v) for key, v in row.items()}
            row["suppressed"] = True
        out.append(row)
    return out, n


def holds_raw_uscc(data: bytes) -> bool:
    return any(uscc.is_valid(m.decode()) for m in _USCC_LIKE.findall(data))


def release(
    declared_outputs: tuple[Declared, ...],
    allowed: tuple[str, ...],
    min_cell: int,
    metrics: Mapping[str, float],
    artifacts: Sequence[str],
    model_parts: Mapping[str, str],
    outputs_dir: Path,
) -> GateResult:
    """What of one party's job result may leave its node; everything else is named as withheld."""
    declared = {d.name: d for d in declared_outputs}
    withheld: list[str] = []
    notes: list[str] = []
    released_metrics: dict[str, float] = {}
    if "metrics" in allowed:
        released_metrics = {k: float(v) for k, v in metrics.items()}
    elif metrics:
        withheld.append("metrics")
    parts = dict(model_parts) if "model_manifest" in allowed else {}
    if model_parts and "model_manifest" not in allowed:
        withheld.append("model_manifest")
    released: list[Released] = []
    suppressed = 0
    for name in artifacts:
        if name not in declared:
            withheld.append(name)
            notes.append(f"{name}: not declared by the job type")
            continue
        kind, media = declared[name].kind, declared[name].media_type
        if declared[name].per_firm:
            withheld.append(name)
            notes.append(f"{name}: per-firm output; it stays in this party's domain")
            continue
        if kind not in allowed:
            withheld.append(name)
            notes.append(f"{name}: output kind {kind!r} not granted by policy")
            continue
        data = (outputs_dir / name).read_bytes()
        if kind == "score_bands":
            table, n = suppress_small_cells(json.loads(data), min_cell)
            suppressed += n
            data = json.dumps(table, indent=1).encode()
        if media != "image/png" and holds_raw_uscc(data):
            withheld.append(name)
            notes.append(f"{name}: holds a raw USCC")
            continue
        released.append(Released(name, media, data, _sha(data)))
    return GateResult(released_metrics, tuple(released), parts, tuple(withheld), suppressed, tuple(notes))
