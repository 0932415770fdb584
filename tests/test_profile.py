"""A party's training profile of its own features and their stability index against new rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.profile import CSI_WARNING, Profile


def _rows(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(3.0 + shift, 0.5, n)
    income[rng.random(n) < 0.1] = np.nan  # missing values have their own bin
    return pd.DataFrame({"income": income, "branches": rng.integers(0, 4, n).astype("float64")})


def test_same_population_is_stable_and_a_shifted_feature_is_flagged(tmp_path: Path) -> None:
    profile = Profile.fit(_rows(5000, 1))
    same = {r["feature"]: r["csi"] for r in profile.csi(_rows(5000, 2))}
    assert set(same) == {"income", "branches"} and max(same.values()) < 0.02
    moved = {r["feature"]: r["csi"] for r in profile.csi(_rows(5000, 3, shift=0.8))}
    assert moved["income"] > CSI_WARNING and moved["branches"] < 0.02
    # All missing now: the missing-value bin takes every row.
    gone = _rows(100, 4).assign(income=np.nan)
    assert {r["feature"]: r["csi"] for r in profile.csi(gone)}["income"] > CSI_WARNING
    profile.save(tmp_path)
    again = Profile.load(tmp_path)
    assert again is not None and again.csi(_rows(800, 5)) == profile.csi(_rows(800, 5))


def test_a_part_without_profile_and_other_features() -> None:
    assert Profile.load(Path("/nonexistent")) is None
    with pytest.raises(ValueError, match="other features"):
        Profile.fit(_rows(100, 1)).csi(_rows(100, 1)[["branches", "income"]])
    assert Profile.fit(_rows(100, 1)).csi(_rows(100, 1).iloc[:0]) == []
