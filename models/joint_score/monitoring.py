"""Early warning (风险预警): what changed for a loan book since it was last scored.

At the platform: for every firm of the book it holds, each column its schema
marks ``adverse`` (enforcement cases, tax or social-insurance arrears,
penalties, ...) is compared with the value it had at the previous check for
this bank and model; a rise sets that column's catalogue category as a flag.
Only category flags go to the bank, never values. Firms without a valid
authorisation for the bank's monitoring have their authorisation-required
columns blanked before any of this (as in every job), so they raise no flag
from them. The platform keeps its last values in its own domain.

At the bank: a firm raises an alert when it crosses into the threshold band
(or a worse one), when it moves at least ``band_moves`` bands either way since
its previous scoring, or when the platform flags an adverse category.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.jobtype import JobContext
from models.joint_score.params import JointScoreParams, MonitorParams
from models.local import Aligned, LocalData
from models.scoring import band_index


def snapshot_file(ctx: JobContext) -> Path:
    p = JointScoreParams.of(ctx.spec)
    return ctx.job_dir.parent.parent / "monitoring" / f"{ctx.spec.label_party}-{p.model.name}.parquet"


def _adverse_values(local: LocalData, aligned: Aligned) -> pd.DataFrame:
    cols = [c.name for c in local.schema.columns if c.adverse and c.name in aligned.frame]
    values = aligned.frame[cols].apply(lambda s: pd.to_numeric(s, errors="coerce").astype("float64"))
    return values.set_axis(aligned.keys, axis=0)


def platform_flags(ctx: JobContext, local: LocalData, aligned: Aligned) -> pd.DataFrame:
    """Per aligned firm, whether each adverse category rose since the last check (runs at the platform)."""
    current = _adverse_values(local, aligned)
    path = snapshot_file(ctx)
    categories = sorted({local.schema.column(c).category or local.schema.name for c in current.columns})
    flags = pd.DataFrame(False, index=range(len(current)), columns=[f"{ctx.party}:{c}" for c in categories])
    if path.is_file():
        before = pd.read_parquet(path).reindex(current.index)
        rose = (current.to_numpy() > before.to_numpy()) & ~np.isnan(before.to_numpy())
        for j, col in enumerate(current.columns):
            category = local.schema.column(col).category or local.schema.name
            flags[f"{ctx.party}:{category}"] |= rose[:, j]
    merged = current if not path.is_file() else pd.concat([pd.read_parquet(path), current])
    path.parent.mkdir(parents=True, exist_ok=True)
    merged[~merged.index.duplicated(keep="last")].to_parquet(path)
    return flags


def merge_flags(flags: list[pd.DataFrame], keys: np.ndarray, pos: np.ndarray) -> pd.DataFrame:
    """Every party's flags on the label owner's rows (none where a party does not hold the firm)."""
    blocks = []
    for f in flags:
        block = pd.DataFrame(False, index=range(len(pos)), columns=f.columns)
        held = pos >= 0
        block.loc[held] = f.iloc[pos[held]].to_numpy()
        blocks.append(block)
    return pd.concat(blocks, axis=1) if blocks else pd.DataFrame(index=range(len(pos)))


def latest(scores_dir: Path) -> pd.DataFrame | None:
    """The previous scoring of this model over this table, if any."""
    files = sorted(scores_dir.glob("*.parquet")) if scores_dir.is_dir() else []
    return pd.read_parquet(files[-1]) if files else None


def compare(
    previous: pd.DataFrame | None, now: pd.DataFrame, flags: pd.DataFrame, p: MonitorParams
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The alerts table and its counts."""
    before = previous.set_index("uscc")["band"] if previous is not None else pd.Series(dtype=object)
    band_before = before.reindex(now["uscc"]).to_numpy()
    idx_now = np.array([band_index(b) for b in now["band"]])
    idx_before = np.array([band_index(b) if isinstance(b, str) else -1 for b in band_before])
    known = idx_before >= 0
    threshold = band_index(p.threshold_band)
    crossed = known & (idx_now >= threshold) & (idx_before < threshold)
    moved = np.where(known, idx_now - idx_before, 0)
    big_move = np.abs(moved) >= p.band_moves
    adverse = [""] * len(now)
    if len(flags.columns):
        adverse = [", ".join(c for c in flags.columns if row[c]) for _, row in flags.iterrows()]
    has_adverse = np.array([bool(a) for a in adverse])
    alert = crossed | big_move | has_adverse
    table = pd.DataFrame({
        "uscc": now["uscc"], "band_before": band_before, "band_now": now["band"], "bands_moved": moved,
        "crossed_threshold": crossed, "adverse_categories": adverse, "score_now": now["score"],
    })[alert].reset_index(drop=True)  # fmt: skip
    counts = {"alerts_total": float(alert.sum()), "alerts_crossed": float(crossed.sum()),
              "alerts_moved": float(big_move.sum()), "alerts_adverse": float(has_adverse.sum()),
              "alerts_compared": float(known.sum())}  # fmt: skip
    return table, counts
