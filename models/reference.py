"""The pooled plaintext reference: SIMULATION ONLY.

It joins every party's rows in one process, which no real deployment may do.
It exists so a demo or benchmark on locally held data can show how close the
joint models come to the unattainable pooled model, on the same split, with
the same trees, depth and learning rate as SecureBoost, and on the same
values: firms' authorisation-required columns are withheld here exactly as
the data owner's node withholds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from enclave.controls import consent
from enclave.data import dataset
from enclave.home import Home
from enclave.jobspec import JobSpec
from models import metrics, trees
from models.joint_train.params import JointTrainParams
from models.prep import holdout_mask


@dataclass(frozen=True)
class ReferenceResult:
    auc: float
    ks: float
    rows: int
    test_rows: int


@dataclass(frozen=True)
class Pooled:
    """Every party's rows joined on the key, sorted as PSI sorts them, and the job's split."""

    frame: pd.DataFrame
    test: np.ndarray
    features: dict[str, list[str]]  # per party
    y: np.ndarray


def pooled_frame(home: Home, spec: JobSpec) -> Pooled:
    params = JointTrainParams.of(spec)
    frames = []
    for p in spec.parties:
        schema, df = dataset.load(home.party(p.name).dataset_dir(p.dataset), spec.columns(p.name))
        gated = consent.gated_columns(schema, p.features) if p.name != spec.label_party else []
        if gated:
            # Like for like: the reference sees only what the joint job may use.
            book = consent.ConsentBook.load(home.party(p.name).root, home.trust_dir)
            df, _ = consent.withhold(df, schema.key, gated, book.authorised(spec.label_party, spec.purpose))
        x = dataset.encode_features(schema, df, list(p.features))
        x[spec.key] = df[schema.key].to_numpy()
        if p.name == spec.label_party:
            x[spec.label_column] = dataset.label_array(schema, df, spec.label_column)
        frames.append(x)
    joined = frames[0]
    for f in frames[1:]:
        joined = joined.merge(f, on=spec.key, how="inner")
    # PSI output is sorted by key; sort the same way so the split matches.
    joined = joined.sort_values(spec.key).reset_index(drop=True)
    mask = holdout_mask(joined[spec.key], params.seed, params.test_fraction)
    feats = {p.name: list(p.features) for p in spec.parties}
    return Pooled(joined, np.asarray(mask), feats, joined[spec.label_column].to_numpy())


def pooled(home: Home, spec: JobSpec) -> ReferenceResult:
    params = JointTrainParams.of(spec)
    d = pooled_frame(home, spec)
    feats = [c for cs in d.features.values() for c in cs]
    x, y, mask = d.frame, d.y, d.test
    _, score = trees.fit_predict(x.loc[~mask, feats], y[~mask], x.loc[mask, feats], params.tree_params, params.seed)
    return ReferenceResult(
        auc=metrics.auc(y[mask], score), ks=metrics.ks(y[mask], score), rows=len(x), test_rows=int(np.sum(mask))
    )


def pooled_scorecard(home: Home, spec: JobSpec) -> np.ndarray:
    """The scorecard's held-out probabilities of default computed in plaintext on pooled rows: the same
    bins, WOE groups, selection and gradient steps as the joint job, without encryption or the SPU."""
    import jax.numpy as jnp

    from models import woe
    from models.scorecard import lr
    from models.scorecard.bins import FeatureWoe, PartyBins, select_by_iv
    from models.woe import BinTable

    q = JointTrainParams.of(spec).scorecard
    if q is None:
        raise ValueError("the spec has no scorecard")
    d = pooled_frame(home, spec)
    train, y = ~d.test, d.y[~d.test]
    columns: dict[str, list[np.ndarray]] = {}
    ivs: list[tuple[float, str, int]] = []
    for party, feats in d.features.items():
        x = d.frame[feats].to_numpy(dtype="float64")
        b = PartyBins.fit(x[train], feats, q.bins, q.method)
        fine = b.assign(x)
        columns[party] = []
        for j, k in enumerate(b.n_bins):
            fw = FeatureWoe.build(party, feats[j], "", BinTable(*woe.counts(fine[train, j], y, k)), q.method, q.bins,
                                  q.monotone)  # fmt: skip
            columns[party].append(fw.fine_woe()[fine[:, j]])
            ivs.append((fw.iv(), party, j))
    keep = select_by_iv(ivs, q.iv_min, q.top_k)
    cols = [columns[p][j] for p in sorted(keep) for j in keep[p]]
    a = np.column_stack([*cols, np.ones(len(d.y))]).astype("float32")
    w = jnp.zeros((a.shape[1], 1), dtype=jnp.float32)
    every = jnp.ones_like(w)
    batch = min(q.batch_size, int(train.sum()))
    for _ in range(q.epochs):
        w = lr.epoch(a[train], y.astype("float32"), w, every, q.learning_rate, q.l2_norm, batch)
    logit = a[d.test] @ np.asarray(w, dtype="float64").ravel()
    return np.asarray(1.0 / (1.0 + np.exp(-logit)))
