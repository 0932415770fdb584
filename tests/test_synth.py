"""The synthetic city: deterministic, valid, realistically incomplete, and
with public data that carries signal beyond the bank's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from enclave.data import catalogue as cat
from enclave.data import dataset, synth, uscc
from enclave.home import Home
from models import trees
from models.joint_train.params import SgbParams
from models.prep import holdout_mask


def test_same_seed_same_city_other_seed_other_city() -> None:
    a, b, c = synth.generate(400, seed=3), synth.generate(400, seed=3), synth.generate(400, seed=4)
    for party, sets in a.tables.items():
        for name, (schema, df) in sets.items():
            pd.testing.assert_frame_equal(df, b.tables[party][name][1])
            assert schema == b.tables[party][name][0]
    assert not a.tables["bank"]["loans"][1].equals(c.tables["bank"]["loans"][1])


def test_written_city_is_valid_and_fingerprints_repeat(home: Home, tmp_path: object) -> None:
    fps = synth.write_city(home, synth.generate(300, seed=5))
    assert set(fps["platform"]) == {*(t[0] for t in cat.PLATFORM_TABLES), cat.PROFILE}
    for party, sets in fps.items():
        for name in sets:
            dataset.load(home.party(party).dataset_dir(name))  # raises on any schema fault
    again = synth.write_city(home, synth.generate(300, seed=5))
    assert again == fps


def test_keys_overlap_partially_and_are_valid_usccs() -> None:
    city = synth.generate(1000, seed=9)
    plat = set(city.tables["platform"][cat.PROFILE][1][cat.KEY])
    bank = set(city.tables["bank"][cat.LOANS][1][cat.KEY])
    assert all(uscc.is_valid(k) for k in plat | bank)
    shared = plat & bank
    assert 0.8 * len(bank) < len(shared) < len(bank)  # some borrowers are not on the platform
    assert len(plat - bank) > 0.2 * len(bank)  # and most platform firms have no loan here


def test_catalogue_columns_missingness_and_authorisation_marks() -> None:
    city = synth.generate(2000, seed=2)
    schema, df = city.tables["platform"][cat.PROFILE]
    rates = df.isna().mean()
    assert rates["founded_on"] == 0
    assert 0.2 < rates["hf_contributors"] < 0.6  # many small firms pay no housing fund
    assert rates["customs_grade"] > 0.7  # only importers have a customs grade
    interface = {c.name for c in schema.columns if c.access == "interface"}
    assert {"tax_arrears", "vat_paid_12m_10k", "si_arrears"} <= interface
    assert "tax_credit_grade" not in interface  # collected in bulk per the catalogue
    # Every platform column names its catalogue category, and every category has columns.
    features = [schema.column(c) for c in schema.features]
    assert {c.category for c in features} == set(cat.CATEGORIES)
    assert schema.column("enforcement_cases_3y").category == "judicial"
    assert set(df["tax_credit_grade"].dropna()) <= set(cat.TAX_GRADES)
    loans = city.tables["bank"][cat.LOANS][1]
    assert 0.08 < loans[cat.LABEL].mean() < 0.25


def test_public_data_adds_signal_beyond_the_bank() -> None:
    city = synth.generate(4000, seed=21)
    ps, pdf = city.tables["platform"][cat.PROFILE]
    bs, bdf = city.tables["bank"][cat.LOANS]
    px = dataset.encode_features(ps, pdf, ps.features).assign(uscc=pdf[cat.KEY])
    bx = dataset.encode_features(bs, bdf, bs.features).assign(uscc=bdf[cat.KEY], y=bdf[cat.LABEL].astype(int))
    df = px.merge(bx, on="uscc")
    mask = holdout_mask(df["uscc"], 1, 0.3)
    p = SgbParams(num_boost_round=25)
    aucs = {}
    for name, cols in {"bank": bs.features, "pooled": ps.features + bs.features}.items():
        _, s = trees.fit_predict(df.loc[~mask, cols], df.y[~mask].to_numpy(), df.loc[mask, cols], p, 1)
        aucs[name] = roc_auc_score(df.y[mask], s)
    assert aucs["pooled"] - aucs["bank"] > 0.04, aucs


def test_too_few_rows_rejected() -> None:
    with pytest.raises(ValueError, match="at least 50"):
        synth.generate(10)


def test_split_is_deterministic_and_near_fraction() -> None:
    keys = [uscc.from_index(i) for i in range(5000)]
    m1, m2 = holdout_mask(keys, 7, 0.3), holdout_mask(list(reversed(keys)), 7, 0.3)
    assert np.array_equal(m1, m2[::-1])
    assert 0.27 < m1.mean() < 0.33
    assert not np.array_equal(m1, holdout_mask(keys, 8, 0.3))
