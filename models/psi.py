"""Private set intersection on the key column (SPU, RR22): the first stage of every joint job.

Each party writes its keys to a file in its own job directory, SPU's PSI
reveals the intersection (and nothing else) to every party, and the key files
are removed as soon as the intersection is read back. The intersection comes
sorted, so every party holds the aligned rows in the same order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.jobtype import JobContext
from models.local import LocalData, write_key_file
from protocols.errors import JobFailedError

PSI_IN = "psi_in.csv"
PSI_OUT = "psi_out.csv"
# SPU leaves a digest of the input keys beside the input file.
KEY_FILES = (PSI_IN, PSI_OUT, PSI_IN + ".meta")


def intersect(spu: Any, ctx: JobContext, local: LocalData, minimum: int = 20) -> np.ndarray:
    """The aligned keys, identical at every party; fail if fewer than ``minimum``."""
    spec = ctx.spec
    names = spec.party_names
    psi_in, psi_out = ctx.job_dir / PSI_IN, ctx.job_dir / PSI_OUT
    try:
        write_key_file(psi_in, local.keys, spec.key)
        reports = spu.psi(
            keys={p: [spec.key] for p in names},
            input_path={p: str(psi_in) for p in names},
            output_path={p: str(psi_out) for p in names},
            receiver=spec.label_party,
            table_keys_duplicated={p: False for p in names},
            protocol="PROTOCOL_RR22",
            broadcast_result=True,
        )
        count = int(next(r["intersection_count"] for r in reports if r["party"] == ctx.party))
        keys = pd.read_csv(psi_out, dtype=str)[spec.key].to_numpy() if count else np.array([], dtype=object)
    finally:
        for name in KEY_FILES:
            (ctx.job_dir / name).unlink(missing_ok=True)
    if count < minimum:
        raise JobFailedError(f"PSI intersection holds only {count} keys; at least {minimum} are needed")
    return keys
