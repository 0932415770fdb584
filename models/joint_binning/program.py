"""The ``joint_binning`` program: PSI, then binning and WOE/IV across parties (no model).

Every party's worker runs this same program. After PSI every party bins its own
aligned rows; the label owner encrypts each row's (label, 1) under its HE key
and each partner returns packed encrypted sums per non-empty bin
(``models.scorecard.protocol.binning``), so a partner never sees a label or a
count. The label owner computes WOE and IV of every feature, selects by IV and
writes the tables; each partner keeps its own bin edges in its job directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enclave.files import write_atomic, write_json
from models import combine, metrics, psi
from models.federation import Federation
from models.jobtype import JobContext, ProgramResult, StageClock, read_outputs
from models.joint_binning import description as D
from models.joint_binning.params import BinningParams
from models.local import LocalData

OWN_BINS = "bins"  # this party's own bin edges, kept in its job directory


def run(ctx: JobContext, devices: Mapping[str, Any]) -> ProgramResult:
    import secretflow as sf

    from models.scorecard import protocol
    from models.scorecard.points import Scaling

    spec, p = ctx.spec, BinningParams.of(ctx.spec)
    clock = StageClock(ctx.emit)
    local = LocalData.load(ctx)
    fed = Federation(spec.party_names, spec.label_party)
    with clock.stage(D.STAGE_PSI, f"PSI on {spec.key}"):
        keys = psi.intersect(devices["spu"], fed.pyus, ctx, local)
    ctx.emit(D.STAGE_PSI, f"intersection: {len(keys)} firms")
    aligned = local.align(keys)
    x = local.x(aligned).to_numpy(dtype="float64")
    y = local.y(aligned) if local.label is not None else None
    # The regression fields are unused here: binning stops before any model.
    settings = protocol.Settings(p.bins, p.method, p.monotone, p.iv_min, p.top_k, Scaling(600.0, 50.0, 20.0), 1, 1.0,
                                 1, 0.0, protocol.SCHEMES[p.he], p.key_bits)  # fmt: skip
    categories = combine.reporting_categories(local.schema, local.features)
    with clock.stage(D.STAGE_BINNING, f"{p.method} bins ({p.bins}), counts under encryption, WOE and IV"):
        found, bins = protocol.binning(fed.pyus, spec.label_party, ctx.party, settings, list(local.features),
                                       categories, x, y)  # fmt: skip
        bins.save(ctx.job_dir / OWN_BINS)
        sf.wait([fed.label(lambda f: _write(ctx, f, len(keys)))(found)])
    result, artifacts = read_outputs(ctx)
    result["psi_intersection"] = float(len(keys))
    return ProgramResult(ctx.party, result, artifacts, {}, clock.seconds, local.withheld_firms)


def _write(ctx: JobContext, found: Mapping[str, Any], rows: int) -> None:
    """At the label owner: the IV tables, their plot and its own bins' WOE."""
    out = ctx.outputs_dir
    out.mkdir(parents=True, exist_ok=True)
    table, by = metrics.iv_tables(found["iv"])
    table.to_csv(out / D.IV_TABLE, index=False)
    by.to_csv(out / D.IV_CATEGORIES, index=False)
    write_atomic(out / D.IV_PLOT, metrics.iv_plot(table))
    write_json(out / D.WOE_TABLE, found["own_woe"])
    found_metrics = {"rows": float(rows), "features": float(len(table)), "selected": float(table["selected"].sum()),
                     "iv_max": float(table["iv"].max()) if len(table) else 0.0}  # fmt: skip
    artifacts = [D.IV_TABLE, D.IV_CATEGORIES, D.IV_PLOT, D.WOE_TABLE]
    write_json(out / "metrics.json", {"metrics": found_metrics, "artifacts": artifacts})
