"""Plaintext LightGBM configured as SecureBoost's twin (same trees, depth, rate).

Used for the bank-only baseline (inside the bank's domain) and for the
simulation-only pooled reference.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.joint_train.params import SgbParams
from models.prep import TreePrep


def lgbm_params(p: SgbParams, seed: int) -> dict[str, object]:
    return {
        "objective": "binary",
        "n_estimators": p.num_boost_round,
        "max_depth": p.max_depth,
        "num_leaves": 2**p.max_depth,
        "learning_rate": p.learning_rate,
        "reg_lambda": p.reg_lambda,
        "min_split_gain": p.gamma,
        "max_bin": max(round(1.0 / p.sketch_eps), 4),
        # SecureBoost starts every firm at score 0 and has no minimum leaf size
        # beyond the hessian; mirror that so the comparison is like for like.
        "boost_from_average": False,
        "min_child_samples": 1,
        "min_child_weight": 1e-3,
        "subsample": 1.0,
        "colsample_bytree": 1.0,
        "random_state": seed,
        "n_jobs": 1,
        "verbose": -1,
    }


def fit_predict(
    x_train: pd.DataFrame, y_train: np.ndarray, x_test: pd.DataFrame, p: SgbParams, seed: int
) -> tuple[lgb.LGBMClassifier, np.ndarray]:
    # The same missing-value sentinel SecureBoost sees, so the comparison is
    # of the protocols, not of two ways to treat gaps.
    prep = TreePrep.fit(x_train)
    model = lgb.LGBMClassifier(**lgbm_params(p, seed))  # type: ignore[arg-type]
    model.fit(prep.apply(x_train), np.asarray(y_train).ravel())
    proba = np.asarray(model.predict_proba(prep.apply(x_test)))
    return model, proba[:, 1]
