"""What the label owner computes from its own part and what the other parties sent.

Every firm of the label owner's table gets a probability of default, a band
and its reasons. A firm the other parties hold is scored with their parts; one
they do not hold is scored with their features treated as missing, and the
``held_by_all`` column says which is which. The table is written to the label
owner's own ``scores/`` directory; only counts, bands and metrics go to the
job's outputs.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from enclave.data import dataset
from enclave.files import write_atomic, write_json
from models import combine, metrics, scoring
from models.combine import LinearPiece
from models.jobtype import JobContext
from models.joint_score import description as D
from models.joint_score import monitoring
from models.joint_score.params import JointScoreParams
from models.linear import LinearPart
from models.local import LocalData
from models.profile import CSI_WARNING, Profile

BANDS_PLOT = "score_bands.png"
POPULATION = "population.npy"  # the training population's scores, kept in the label owner's part


def scores_dir(ctx: JobContext) -> Path:
    """The label owner's scores of one model over one of its tables, one file per job."""
    p = JointScoreParams.of(ctx.spec)
    return ctx.job_dir.parent.parent / "scores" / p.model.name / ctx.spec.party(ctx.party).dataset


def at_label_owner(
    ctx: JobContext, local: LocalData, keys: np.ndarray, part: Path, received: Any, flags: list[Any] | None,
    csi: list[list[dict[str, Any]]],
) -> None:  # fmt: skip
    p = JointScoreParams.of(ctx.spec)
    frame = local.frame.reset_index(drop=True)
    firms = frame[local.schema.key].to_numpy()
    pos = pd.Index(keys).get_indexer(firms)  # -1: a firm some party does not hold
    x = dataset.encode_features(local.schema, frame, list(local.features))
    points = None
    if p.model.kind == "sslr":
        raw, contributions = _linear(part, ctx.party, x, pos, received)
        link = LinearPart.load(part, ctx.party).link
    elif p.model.kind == "scorecard":
        from models.scorecard.part import LabelPart, label_scores

        raw, contributions, points = label_scores(LabelPart.load(part, ctx.party), part, x, pos, received, len(keys))
        link = "logistic"
    else:
        raw, contributions = _trees(part, x, pos, received)
        link = "logistic"
    pd_ = scoring.probability(raw, link)
    population = np.load(part / POPULATION) if (part / POPULATION).is_file() else None
    table = pd.DataFrame({"uscc": firms, "score": pd_, "band": scoring.bands(pd_, scoring.band_edges(population))})
    table = pd.concat([table, scoring.reasons(contributions, p.reasons)], axis=1)
    if points is not None:
        table["points"] = np.round(points, 1)  # the scorecard's own scale: higher is safer
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    table = table.assign(model=p.model.name, version=p.model.version, scored_at=now, held_by_all=pos >= 0)
    found = _metrics(local, frame, table, part)
    files = {"score_bands.json": json.dumps(scoring.band_counts(table["band"].to_numpy()), indent=1).encode(),
             BANDS_PLOT: _bands_plot(table, population, p.model.name)}  # fmt: skip
    out_dir = scores_dir(ctx)
    previous = monitoring.latest(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_dir / f"{now.replace(':', '')}-{ctx.job_id}.parquet", index=False)
    if p.monitor is not None and flags is not None:
        alerts, counts = monitoring.compare(previous, table, monitoring.merge_flags(flags, keys, pos), p.monitor)
        alerts_dir = ctx.job_dir.parent.parent / "alerts" / p.model.name
        alerts_dir.mkdir(parents=True, exist_ok=True)
        alerts.to_parquet(alerts_dir / f"{now.replace(':', '')}-{ctx.job_id}.parquet", index=False)
        found.update(counts)
    own = Profile.load(part)
    stability = [
        *([{"party": ctx.party, **r} for r in own.csi(x)] if own is not None else []),
        *(r for c in csi for r in c),
    ]
    if stability:
        files |= _stability_files(stability, p.model.name)
        found["csi_max"] = max(r["csi"] for r in stability)
    for name, data in files.items():
        write_atomic(ctx.outputs_dir / name, data)
    artifacts = [*files, D.SCORES, *([D.ALERTS] if p.monitor is not None else [])]
    write_json(ctx.outputs_dir / "metrics.json", {"metrics": found, "artifacts": artifacts})


def _stability_files(rows: list[dict[str, Any]], model: str) -> dict[str, bytes]:
    """Each party's features' stability against their training profile: a table and a plot."""
    table = pd.DataFrame(rows).sort_values("csi", ascending=False)
    plot = metrics.bars_plot(table, "csi", (0.1, CSI_WARNING), "Characteristic stability index",
                             f"Feature stability since training: {model}")  # fmt: skip
    return {D.CSI_TABLE: table.to_csv(index=False).encode(), D.CSI_PLOT: plot}


def _bands_plot(table: pd.DataFrame, population: np.ndarray | None, model: str) -> bytes:
    """This scoring's band shares beside the training population's (by construction 20/20/20/20/15/5)."""
    shares = {"this scoring": [float(np.mean(table["band"] == b)) for b in scoring.BAND_NAMES]}
    if population is not None:
        edges = scoring.band_edges(population)
        trained = scoring.bands(population, edges)
        shares = {"training population": [float(np.mean(trained == b)) for b in scoring.BAND_NAMES], **shares}
    return metrics.bands_plot(shares, scoring.BAND_NAMES, f"Risk bands: {model}")


def _metrics(local: LocalData, frame: pd.DataFrame, table: pd.DataFrame, part: Path) -> dict[str, float]:
    found = {"rows_scored": float(len(table)), "rows_held_by_all": float(table["held_by_all"].sum())}
    label = local.label
    if label is not None and label in frame:
        y = dataset.label_array(local.schema, frame, label)
        if len(np.unique(y)) == 2:
            found |= {"auc": metrics.auc(y, table["score"]), "ks": metrics.ks(y, table["score"]),
                      "default_rate": float(np.mean(y))}  # fmt: skip
    if (part / POPULATION).is_file():
        found["stability_psi"] = scoring.stability(np.load(part / POPULATION), table["score"].to_numpy())
    return found


def _linear(part: Path, party: str, x: pd.DataFrame, pos: np.ndarray, received: list[dict[str, Any]]) -> Any:
    pieces = [LinearPiece.from_wire(r) for r in received]
    return combine.linear_scores(LinearPart.load(part, party), x, pos, pieces)


def _trees(part: Path, x: pd.DataFrame, pos: np.ndarray, prediction: Any) -> Any:
    from models import secureboost
    from models.prep import TreePrep

    own = TreePrep.load(part).apply(x).to_numpy(dtype="float64")
    return combine.tree_scores(secureboost.load_part(part), own, pos, prediction)
