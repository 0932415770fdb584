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


def pooled(home: Home, spec: JobSpec) -> ReferenceResult:
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
    feats = [c for p in spec.parties for c in p.features]
    y = joined[spec.label_column].to_numpy()
    _, score = trees.fit_predict(
        joined.loc[~mask, feats], y[~mask], joined.loc[mask, feats], params.tree_params, params.seed
    )
    return ReferenceResult(
        auc=metrics.auc(y[mask], score), ks=metrics.ks(y[mask], score), rows=len(joined), test_rows=int(np.sum(mask))
    )
