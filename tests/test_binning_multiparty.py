"""The binning job type across real party processes: WOE and IV of every feature at the label
owner, from counts the platform only ever handles encrypted; its bin edges stay with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from enclave.home import Home
from models import reference, registry, woe
from models.joint_train.params import ScorecardParams
from models.scorecard.bins import FeatureWoe, PartyBins
from parties.worker.hardening import WIRE_LOG_ENV
from tests.test_multiparty import city, run_cli, spec_for
from tests.test_scorecard_multiparty import platform_received_no_label_or_count

BINNING: dict[str, Any] = {"bins": 6, "method": "chimerge", "monotone": True, "iv_min": 0.02}


def _twin_iv(home: Home, train_doc: dict) -> dict[tuple[str, str], float]:
    """IV of every feature in plaintext on pooled rows (all aligned firms), as the job's bins define it."""
    d = reference.pooled_frame(home, registry.parse_spec(train_doc))
    out = {}
    for party, feats in d.features.items():
        x = d.frame[feats].to_numpy(dtype="float64")
        bins = PartyBins.fit(x, feats, BINNING["bins"], BINNING["method"])
        fine = bins.assign(x)
        for j, k in enumerate(bins.n_bins):
            table = woe.BinTable(*woe.counts(fine[:, j], d.y, k))
            out[(party, feats[j])] = FeatureWoe.build(party, feats[j], "", table, BINNING["method"], BINNING["bins"],
                                                      BINNING["monotone"]).iv()  # fmt: skip
    return out


@pytest.mark.multiparty
def test_binning_job_gives_every_features_iv_and_the_platform_sees_no_label_or_count(
    small_city_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WIRE_LOG_ENV, "1")
    home = city(small_city_home, tmp_path)
    train_doc = yaml.safe_load(spec_for(home).to_yaml())
    doc = {k: v for k, v in train_doc.items() if k not in ("models", "split", "reference")}
    doc |= {"job": "joint_binning", "name": "iv-scan", "binning": BINNING}
    spec = tmp_path / "binning.yaml"
    spec.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out.json"
    r = run_cli("run", str(spec), "--json", str(out), home=home)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text())
    job = result["job_id"]

    # IV of every feature of both parties, equal to plaintext on the pooled rows.
    got = {(row["party"], row["feature"]): row["iv"] for row in result["iv"]}
    twin = _twin_iv(home, train_doc)
    assert set(got) == set(twin)
    assert max(abs(got[k] - twin[k]) for k in twin) < 1e-5
    assert set(result["selected"]) == {f"{p}:{f}" for (p, f), v in got.items() if v >= BINNING["iv_min"]}
    assert any(s.startswith("platform:") for s in result["selected"])
    categories = {row["category"] for row in result["iv_categories"] if row["party"] == "platform"}
    assert len(categories) > 1 and "bank" not in categories

    # The platform received ciphertexts, keys and shapes only; it keeps its own bin edges.
    rows = int(result["psi"]["intersection"])
    platform_received_no_label_or_count(home, job, rows)
    for party in ("platform", "bank"):  # each party's own edges, and only its own
        edges = json.loads((home.party(party).job_dir(job) / "bins" / "bins.json").read_text())
        assert edges["features"] == doc["parties"][party]["features"]

    # MLflow holds the tables and the plot; the bank's own WOE bins are released, no firm anywhere.
    ml = MlflowClient(result["mlflow"]["tracking_uri"])
    logged = {a.path for a in ml.list_artifacts(result["mlflow"]["run_id"], "plots")}
    assert {"plots/iv.csv", "plots/iv_categories.csv", "plots/iv.png", "plots/woe_bins.json"} <= logged
    woe_rows = json.loads(Path(ml.download_artifacts(result["mlflow"]["run_id"], "plots/woe_bins.json",
                                                     str(tmp_path))).read_text())  # fmt: skip
    assert {w["feature"] for w in woe_rows} <= set(doc["parties"]["bank"]["features"])
    firms = pd.read_parquet(home.party("bank").dataset_dir("loans") / "data.parquet")["uscc"].to_numpy()
    coordinator_text = " ".join(p.read_text(errors="replace") for p in home.coordinator.rglob("*") if p.is_file())
    assert not any(f in coordinator_text for f in firms)


def test_binning_spec_errors_name_the_field() -> None:
    base = {"name": "b", "job": "joint_binning", "parties": {"platform": {"dataset": "p", "features": ["a"]},
            "bank": {"dataset": "l", "features": ["b"]}}, "label": {"party": "bank", "column": "y"}}  # fmt: skip
    assert registry.parse_spec(base).params.to_dict()["binning"]["bins"] == ScorecardParams().bins
    with pytest.raises(Exception, match=r"binning\.method"):
        registry.parse_spec(base | {"binning": {"method": "kmeans"}})
    with pytest.raises(Exception, match=r"binning: unknown field\(s\) \['colour'\]"):
        registry.parse_spec(base | {"binning": {"colour": 1}})
    with pytest.raises(Exception, match=r"label\.column"):
        registry.parse_spec(base | {"label": {"party": "bank"}})
