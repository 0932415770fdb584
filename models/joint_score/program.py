"""The ``joint_score`` program: what every party's worker runs to score a table of firms.

PSI aligns the label owner's table with every other party's rows (the
platform reads the dataset the model was trained on afresh: public records
change). Each party applies its own saved preparation and model part to its
own aligned rows: a tree part sends the label owner one decision bit per row
and own split node; a linear part sends its partial log-odds and their sums
per reporting category (its own feature names never leave it). The label owner
scores every firm of its table: a firm another party does not hold is scored
with that party's features treated as missing, and flagged. Scores, bands and
reasons stay with the label owner; a monitoring job also compares them with
the previous scoring and with the platform's adverse-record flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models import combine, psi
from models.federation import Federation
from models.jobtype import JobContext, ProgramResult, StageClock, read_outputs
from models.joint_score import assemble, monitoring
from models.joint_score import description as D
from models.joint_score.params import JointScoreParams
from models.linear import LinearPart
from models.local import LocalData
from models.profile import Profile


def run(ctx: JobContext, devices: dict[str, Any]) -> ProgramResult:
    spec, p = ctx.spec, JointScoreParams.of(ctx.spec)
    clock = StageClock(ctx.emit)
    local = LocalData.load(ctx)
    fed = Federation(spec.party_names, spec.label_party)
    with clock.stage(D.STAGE_PSI, f"PSI on {spec.key}"):
        keys = psi.intersect(devices["spu"], fed.pyus, ctx, local, minimum=1)
    ctx.emit(D.STAGE_PSI, f"held by every party: {len(keys)} firms")
    aligned = local.align(keys)
    part = D.part_dir(ctx.models_root, p.model)
    with clock.stage(D.STAGE_SCORE, f"{p.model.name} version {p.model.version} ({p.model.kind})"):
        if p.model.kind == "sgb":
            received = _trees(fed, ctx, local, aligned, part)
        elif p.model.kind == "scorecard":
            received = {name: _points(fed, local, aligned, part, name) for name in spec.party_names
                        if name != spec.label_party}  # fmt: skip
        else:
            received = [_linear(fed, ctx, local, aligned, part, name) for name in spec.party_names
                        if name != spec.label_party]  # fmt: skip
        partners = [n for n in spec.party_names if n != spec.label_party]
        csi = [fed.pyus[n](_own_csi)(ctx, local, aligned, part).to(fed.label) for n in partners]
    flags = None
    if p.monitor is not None:
        with clock.stage(D.STAGE_MONITOR, "adverse public records since the last check"):
            flags = [fed.pyus[n](monitoring.platform_flags)(ctx, local, aligned).to(fed.label)
                     for n in spec.party_names if n != spec.label_party]  # fmt: skip
    with clock.stage(D.STAGE_SAVE, "scores, bands and reasons at the label owner"):
        import secretflow as sf

        sf.wait([fed.label(assemble.at_label_owner)(ctx, local, keys, part, received, flags, csi)])
    found, artifacts = read_outputs(ctx)
    found["psi_intersection"] = float(len(keys))
    return ProgramResult(ctx.party, found, artifacts, {}, clock.seconds, local.withheld_firms)


def _own_csi(ctx: JobContext, local: LocalData, aligned: Any, part: Path) -> list[dict[str, Any]]:
    """A partner's stability index of each of its own features (its aligned rows against its
    training profile): only these numbers go to the label owner."""
    profile = Profile.load(part)
    return [] if profile is None else [{"party": ctx.party, **r} for r in profile.csi(local.x(aligned))]


def _linear(fed: Federation, ctx: JobContext, local: LocalData, aligned: Any, part: Path, party: str) -> Any:
    """A non-label party's linear piece, moved to the label owner."""

    def piece() -> dict[str, Any]:
        return combine.linear_piece(
            LinearPart.load(part, ctx.party),
            local.x(aligned),
            combine.reporting_categories(local.schema, local.features),
        ).to_wire()

    return fed.pyus[party](piece)().to(fed.label)


def _points(fed: Federation, local: LocalData, aligned: Any, part: Path, party: str) -> Any:
    """A partner's scorecard points per category (encrypted, re-randomised), moved to the label owner."""

    def piece() -> dict[str, Any]:
        from models.scorecard.part import partner_sums

        return partner_sums(part, local.x(aligned).to_numpy(dtype="float64"))

    return fed.pyus[party](piece)().to(fed.label)


def _trees(fed: Federation, ctx: JobContext, local: LocalData, aligned: Any, part: Path) -> Any:
    """Every party routes its own rows; the label owner gets raw scores and contributions."""
    from models import secureboost
    from models.prep import TreePrep

    model = secureboost.load_part(part)
    x = TreePrep.load(part).apply(local.x(aligned)).to_numpy(dtype="float64")
    return secureboost.predict(fed.pyus, ctx.spec.label_party, ctx.party, model, x, contributions=True)
