"""Private set intersection on the key column: the first stage of every joint job.

Two parties run RR22 over the SPU's link; three run ECDH-PSI-3PC over a
sub-context of the cross-silo link every worker already holds (no new port,
the same mutually authenticated sidecar path). Each party writes its keys to a
file in its own job directory; the files, and the sorted key lists PSI writes
to the worker's private ``$TMPDIR``, are removed as soon as the intersection
is read back. The intersection comes sorted, so every party holds the aligned
rows in the same order.

What the parties learn: two-party RR22 reveals the intersection and each
side's set size. ECDH-PSI-3PC reveals the final intersection to every party
(the label owner, its master, broadcasts it), every party's set size, and to
the label owner and the next party in the job's order the size of that party's
intersection with the third.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.jobtype import JobContext
from models.local import KEY_FILES, PSI_IN, PSI_OUT, PSI_REPORT, LocalData, write_key_file
from protocols.errors import JobFailedError, SpecError


def intersect(spu: Any, pyus: Mapping[str, Any], ctx: JobContext, local: LocalData, minimum: int = 20) -> np.ndarray:
    """The aligned keys, identical at every party; fail if fewer than ``minimum``."""
    spec = ctx.spec
    try:
        write_key_file(ctx.job_dir / PSI_IN, local.keys, spec.key)
        if len(spec.party_names) == 2:
            count = _two_party(spu, ctx)
        elif len(spec.party_names) == 3:
            count = _three_party(pyus, ctx)
        else:
            raise SpecError(f"PSI runs with two or three parties, not {len(spec.party_names)}")
        psi_out = ctx.job_dir / PSI_OUT
        keys = pd.read_csv(psi_out, dtype=str)[spec.key].to_numpy() if count else np.array([], dtype=object)
    finally:
        for name in KEY_FILES:
            (ctx.job_dir / name).unlink(missing_ok=True)
    if count < minimum:
        raise JobFailedError(f"PSI intersection holds only {count} keys; at least {minimum} are needed")
    return np.sort(keys)


def _two_party(spu: Any, ctx: JobContext) -> int:
    spec = ctx.spec
    names = spec.party_names
    reports = spu.psi(
        keys={p: [spec.key] for p in names},
        input_path={p: str(ctx.job_dir / PSI_IN) for p in names},
        output_path={p: str(ctx.job_dir / PSI_OUT) for p in names},
        receiver=spec.label_party,
        table_keys_duplicated={p: False for p in names},
        protocol="PROTOCOL_RR22",
        broadcast_result=True,
    )
    return int(next(r["intersection_count"] for r in reports if r["party"] == ctx.party))


def _fed_link() -> tuple[Any, dict[str, int]]:
    """A new sub-context of this worker's cross-silo link (SecretFlow 1.11 internals).

    It shares the link's channels but prefixes its messages with its own id, so
    they never reach SecretFlow's receive path. The n-th spawn has the same id at
    every party, so every party spawns in the same order; it is never stopped,
    which would stop the shared channels.
    """
    from secretflow.distributed.fed.global_context import get_global_context

    proxy = get_global_context()._proxy
    if not hasattr(proxy, "_linker"):
        raise RuntimeError("three-party PSI needs SecretFlow's brpc link")
    return proxy._linker.spawn(), dict(proxy._parties_rank)


def _three_party(pyus: Mapping[str, Any], ctx: JobContext) -> int:
    import secretflow as sf

    spec, job_dir = ctx.spec, ctx.job_dir

    def run() -> None:
        import spu.psi as psi

        lctx, ranks = _fed_link()
        config = psi.BucketPsiConfig(
            psi_type=psi.PsiType.Value("ECDH_PSI_3PC"),
            broadcast_result=True,
            receiver_rank=ranks[spec.label_party],
            input_params=psi.InputParams(path=str(job_dir / PSI_IN), select_fields=[spec.key], precheck=True),
            output_params=psi.OutputParams(path=str(job_dir / PSI_OUT), need_sort=True),
            curve_type=psi.CurveType.Value("CURVE_25519"),
            bucket_size=1 << 20,
        )
        # ic_mode skips bucket_psi's exchange of an unsalted hash of every party's whole key list.
        report = psi.bucket_psi(lctx, config, ic_mode=True)
        (job_dir / PSI_REPORT).write_text(json.dumps({"intersection": report.intersection_count}))

    # The same device calls at every party; each runs only where it is local.
    sf.wait([pyus[p](run)() for p in spec.party_names])
    return int(json.loads((job_dir / PSI_REPORT).read_text())["intersection"])
