"""The output gate: what may leave a node after a job.

An output leaves only if its job type declares it and the node's policy grants
its kind. Aggregate tables obey the policy's minimum cell size: a group with
fewer than k firms has its counts suppressed. Tabular outputs are scanned for
raw USCCs and withheld if one slips through desensitisation. Everything not
released is named in the result so the node can log it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enclave import uscc

# What each job type may ever emit, by artifact name -> (kind, media type).
DECLARED: dict[str, dict[str, tuple[str, str]]] = {
    "joint_train": {
        "roc.png": ("plots", "image/png"),
        "ks_sgb.png": ("plots", "image/png"),
        "ks_sslr.png": ("plots", "image/png"),
        "ks_bank_only.png": ("plots", "image/png"),
        "score_bands.json": ("score_bands", "application/json"),
        "scored_list.csv": ("scored_list", "text/csv"),
    }
}
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
    job_type: str, allowed: tuple[str, ...], min_cell: int, result: dict[str, Any], outputs_dir: Path
) -> GateResult:
    declared = DECLARED.get(job_type, {})
    withheld: list[str] = []
    notes: list[str] = []
    metrics: dict[str, float] = {}
    if "metrics" in allowed:
        metrics = {k: float(v) for k, v in result.get("metrics", {}).items()}
        if "psi" in result:
            metrics["psi_intersection"] = float(result["psi"]["intersection"])
    elif result.get("metrics"):
        withheld.append("metrics")
    parts = {k: str(v) for k, v in result.get("model_parts", {}).items()} if "model_manifest" in allowed else {}
    if result.get("model_parts") and "model_manifest" not in allowed:
        withheld.append("model_manifest")
    artifacts: list[Released] = []
    suppressed = 0
    for name in result.get("artifacts", []):
        if name not in declared:
            withheld.append(name)
            notes.append(f"{name}: not declared by job type {job_type!r}")
            continue
        kind, media = declared[name]
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
        artifacts.append(Released(name, media, data, _sha(data)))
    return GateResult(metrics, tuple(artifacts), parts, tuple(withheld), suppressed, tuple(notes))
