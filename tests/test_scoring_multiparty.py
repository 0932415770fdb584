"""Using the models across real party processes: batch scoring, online scoring, early warning.

One module-scoped training job (SecureBoost and SS-LR) on a 600-loan city;
every test copies its home and starts its own processes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from enclave.controls import audit, policy
from enclave.controls.pki import TlsFiles
from enclave.data import dataset, synth, uscc
from enclave.data import schema as sch
from enclave.home import Home
from models import registry
from parties.client import api, scoring
from parties.client.local import LocalCluster
from parties.serving.client import OnlineError, client_for
from parties.transport.grpc_links import GrpcScoringLink
from protocols.errors import ForbiddenError, RefusedError
from protocols.messages import ContributionRequest
from tests.test_multiparty import run_cli

pytestmark = pytest.mark.multiparty
KINDS = ("sgb", "sslr")  # served online too
BATCH_KINDS = (*KINDS, "scorecard")


@dataclass(frozen=True)
class Trained:
    home: Home
    job_id: str
    holdout: pd.DataFrame  # the training job's own held-out predictions (uscc, score_sgb, score_sslr)


@pytest.fixture(scope="module")
def trained(small_city_home: Home, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    home = Home.resolve(tmp_path_factory.mktemp("trained") / "home")
    shutil.copytree(small_city_home.root, home.root)
    platform = sch.read_schema(home.party("platform").dataset_dir(synth.PROFILE))
    bank = sch.read_schema(home.party("bank").dataset_dir(synth.LOANS))
    spec = registry.parse_spec({
        "name": "t",
        "parties": {"platform": {"dataset": synth.PROFILE, "features": platform.features},
                    "bank": {"dataset": synth.LOANS, "features": bank.features}},
        "label": {"party": "bank", "column": synth.LABEL},
        "models": {"sgb": {"num_boost_round": 4, "max_depth": 3, "sketch_eps": 0.1},
                   "sslr": {"epochs": 2, "batch_size": 128},
                   "scorecard": {"bins": 8, "epochs": 4, "max_corr": 0.9, "max_vif": 20}},
    })  # fmt: skip
    result = api.run(spec, home, None)
    holdout = next(home.party("bank").root.rglob("holdout_scores.parquet"))
    return Trained(home, result["job_id"], pd.read_parquet(holdout))


@pytest.fixture
def copy(trained: Trained, tmp_path: Path) -> Home:
    """A private copy of the trained home (MLflow's artifacts stay where training wrote them)."""
    home = Home.resolve(tmp_path / "home")
    shutil.copytree(trained.home.root, home.root)
    return home


def latest_table(directory: Path) -> pd.DataFrame:
    return pd.read_parquet(sorted(directory.glob("*.parquet"))[-1])


@pytest.mark.parametrize("kind", BATCH_KINDS)
def test_batch_scores_every_loan_and_keep_them_with_the_bank(
    trained: Trained, copy: Home, tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "s.json"
    r = run_cli("score", "--model", f"t-{kind}", "--dataset", "loans", "--json", str(out), home=copy)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(out.read_text())
    _, loans = dataset.load(copy.party("bank").dataset_dir(synth.LOANS), [])
    assert doc["rows_scored"] == len(loans) and 0 < doc["held_by_all_parties"] < len(loans)
    table_path = Path(doc["scores_table"])
    assert table_path.is_relative_to(copy.party("bank").root) and table_path.is_file()
    assert 0.5 < doc["book"]["auc"] <= 1.0 and doc["stability_psi"] >= 0.0
    table = pd.read_parquet(table_path)
    assert list(table.columns[:6]) == ["uscc", "score", "band", "reason_1", "reason_2", "reason_3"]
    assert set(table["uscc"]) == set(loans[synth.KEY]) and table["band"].isin(list("ABCDEF")).all()
    if kind == "scorecard":  # points on the card's own scale: fewer points, more risk
        assert np.corrcoef(table["points"], table["score"])[0, 1] < -0.9
        assert table["reason_1"].str.startswith("platform:").any() and table["reason_1"].notna().all()

    # The training job's held-out firms get that job's own predictions back.
    joined = trained.holdout.merge(table, on="uscc")
    assert len(joined) == len(trained.holdout)
    # SecureBoost routes the same splits in plaintext: equal to 1e-6. SS-LR trained and predicted in
    # SPU fixed point (2^-18 resolution per term); batch scoring adds plaintext weights. A scorecard
    # sums the same encrypted points (2^-10 each) in training and scoring.
    tolerance = {"sgb": 1e-6, "sslr": 2e-3, "scorecard": 1e-3}[kind]
    assert np.abs(joined["score"] - joined[f"score_{kind}"]).max() < tolerance

    # The platform's home holds no score: no file there carries a score column or the bank's results.
    platform = copy.party("platform").root
    assert not (platform / "scores").exists() and not (platform / "alerts").exists()
    for f in platform.rglob("*.parquet"):
        assert "score" not in pd.read_parquet(f).columns, f
    # The scoring run in MLflow names the model version it used.
    ml = MlflowClient(copy.tracking_uri)
    run = ml.get_run(doc["mlflow"]["run_id"])
    assert run.data.tags["safehouse.model_version"] == f"t-{kind}:1"
    assert run.data.metrics["bank.rows_scored"] == len(loans)
    assert run.data.metrics["bank.auc"] == pytest.approx(doc["book"]["auc"])
    assert "bank.stability_psi" in run.data.metrics
    logged = {a.path for a in ml.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/score_bands.json", "plots/score_bands.png"} <= logged and not [p for p in logged if "parquet" in p]
    # Each party's own features' stability since training, computed where the features live.
    assert {"plots/csi.csv", "plots/csi.png"} <= logged
    features = {(p, f) for p in ("platform", "bank") for f in sch.read_schema(
        copy.party(p).dataset_dir(synth.PROFILE if p == "platform" else synth.LOANS)).features}  # fmt: skip
    assert {(r["party"], r["feature"]) for r in doc["csi"]} == features
    assert all(r["csi"] >= 0 for r in doc["csi"])
    assert {r["rows"] for r in doc["csi"] if r["party"] == "bank"} == {len(loans)}


@pytest.fixture
def serving(copy: Home, cluster_factory: Any) -> Iterator[LocalCluster]:
    cluster: LocalCluster = cluster_factory(copy, ["platform", "bank"])
    cluster.serve(["platform", "bank"])
    yield cluster


def test_online_scores_equal_batch_scores_and_errors_have_codes(copy: Home, serving: LocalCluster) -> None:
    batch = {k: scoring.score(copy, f"t-{k}", "loans", None) for k in KINDS}
    client = client_for(copy, "bank")
    for kind in KINDS:
        table = pd.read_parquet(batch[kind]["scores_table"]).set_index("uscc")
        firms = list(table[table["held_by_all"]].index[:15]) + list(table[~table["held_by_all"]].index[:5])
        for code in firms:
            got = client.score(code, f"t-{kind}")
            want = table.loc[code]
            assert got["score"] == pytest.approx(want["score"], abs=1e-9), (kind, code)
            assert got["band"] == want["band"] and got["held_by_all"] == bool(want["held_by_all"])
            assert got["reasons"] == [r for r in want[["reason_1", "reason_2", "reason_3"]] if r is not None]
            assert (got["model"], got["version"], got["kind"]) == (f"t-{kind}", "1", kind)
    # Reasons name the bank's own features and only the platform's categories.
    bank_features = set(sch.read_schema(copy.party("bank").dataset_dir(synth.LOANS)).features)
    reasons = {r for kind in KINDS for r in client.score(firms[0], f"t-{kind}")["reasons"]}
    assert all(r in bank_features or r.startswith("platform:") for r in reasons)

    stranger = uscc.from_index(987_654)  # a valid code the bank does not hold
    wrong = stranger[:-1] + ("1" if stranger[-1] != "1" else "2")
    cases = [("x" * 18, "t-sgb", "INVALID_USCC"), (wrong, "t-sgb", "INVALID_USCC"),
             (stranger, "t-sgb", "UNKNOWN_FIRM"), (firms[0], "t-xgb", "MODEL_NOT_LOADED")]  # fmt: skip
    for code, model, expected in cases:
        with pytest.raises(OnlineError) as e:
            client.score(code, model)
        assert e.value.error_code == expected, e.value
    # An applicant not in the table is scored from the values sent; unknown names are refused.
    applicant = client.score(stranger, "t-sslr", features={"loan_amount_10k": 50, "guarantee": "mortgage"})
    assert 0 < applicant["score"] < 1
    with pytest.raises(OnlineError, match="INVALID_FEATURES"):
        client.score(firms[0], "t-sslr", features={"loan_amount_10k": "lots"})
    assert client.call("GET", "/health")[0] == 200  # still up
    client.close()


def test_partners_answer_the_label_owner_only_under_their_policy(copy: Home, serving: LocalCluster) -> None:
    client = client_for(copy, "bank")
    firm = _book(copy)[0]
    before = client.score(firm, "t-sslr")
    manifest = json.loads(next(copy.artifact_root.rglob("sslr/manifest.json")).read_text())
    req = ContributionRequest("t-sslr", "1", manifest["job_id"], "sslr", manifest["parties"]["platform"]["part_sha256"],
                              firm)  # fmt: skip
    # The coordinator is authenticated, but it is not the model's label owner.
    with pytest.raises(ForbiddenError, match="coordinator is not a party of the federation"):
        GrpcScoringLink("platform", serving.scoring["platform"], _tls(copy, "coordinator")).contribute(req)
    # A changed part hash is refused, not used.
    with pytest.raises(RefusedError, match="differs from the registered one"):
        GrpcScoringLink("platform", serving.scoring["platform"], _tls(copy, "bank")).contribute(
            dataclasses.replace(req, part_sha256="0" * 64)
        )

    # The platform withdraws scoring from its policy: the bank's calls are refused, the service stays up.
    root = copy.party("platform").root
    saved = (root / policy.POLICY_FILE).read_text()
    doc = policy.load(root, "platform")
    policy.write(root, {"min_cell_size": doc.min_cell_size, "grants": [
        policy.grant(["bank"], ["joint_train", "joint_score"], {synth.PROFILE: "*"}, "*",
                     purposes=["credit_risk_model"])]})  # fmt: skip
    with pytest.raises(OnlineError) as e:
        client.score(firm, "t-sslr")
    assert e.value.error_code == "PARTNER_REFUSED" and "purpose 'scoring' not granted" in str(e.value)
    (root / policy.POLICY_FILE).write_text(saved)
    assert client.score(firm, "t-sslr")["score"] == pytest.approx(before["score"])
    client.close()


def _tls(home: Home, identity: str) -> TlsFiles:
    return TlsFiles.in_dir(home.tls_dir(identity))


def _book(home: Home) -> list[str]:
    """Firms of the bank's book the platform also holds."""
    _, loans = dataset.load(home.party("bank").dataset_dir(synth.LOANS), [])
    _, profile = dataset.load(home.party("platform").dataset_dir(synth.PROFILE), [])
    both = set(loans[synth.KEY]) & set(profile[synth.KEY])
    return [k for k in loans[synth.KEY] if k in both]


def change_records(home: Home, firms: list[str]) -> None:
    """New adverse public records for ``firms``: enforcement cases and an administrative penalty."""
    ds = home.party("platform").dataset_dir(synth.PROFILE)
    schema, df = dataset.load(ds)
    hit = df[synth.KEY].isin(firms)
    df.loc[hit, "enforcement_cases_3y"] = df.loc[hit, "enforcement_cases_3y"].fillna(0) + 3
    df.loc[hit, "admin_penalties_3y"] = df.loc[hit, "admin_penalties_3y"].fillna(0) + 2
    dataset.write(ds, schema, df)


def test_online_scores_follow_changed_records_and_calls_are_tallied(copy: Home, serving: LocalCluster) -> None:
    client = client_for(copy, "bank")
    firms = _book(copy)[:20]
    before = {f: client.score(f, "t-sslr")["score"] for f in firms}
    change_records(copy, firms[:3])
    after = {f: client.score(f, "t-sslr")["score"] for f in firms}
    assert [f for f in firms if after[f] != before[f]] == firms[:3]  # reloaded, no restart
    client.close()
    serving.stop()  # the tallies are written on shutdown

    trail = copy.party("platform").root / audit.SERVING_AUDIT_FILE
    entries = [json.loads(line) for line in trail.read_text().splitlines()]
    tallies = [e["body"] for e in entries if e["kind"] == "online_scoring"]
    assert sum(t["calls"] for t in tallies) == 40 and {t["caller"] for t in tallies} == {"bank"}
    text = trail.read_text()
    assert not [f for f in firms if f in text]  # counts, never firm codes
    assert audit.verify_home(copy) == []


def test_monitor_alerts_for_changed_firms_and_no_others(copy: Home, tmp_path: Path) -> None:
    first = scoring.monitor(copy, "t-sgb", "loans", progress=None)[0]
    assert first["alerts"]["total"] == 0  # nothing to compare with yet
    changed = _book(copy)[5:11]
    change_records(copy, changed)
    out = tmp_path / "m.json"
    r = run_cli("monitor", "--model", "t-sgb", "--dataset", "loans", "--json", str(out), home=copy)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(out.read_text())
    alerts = pd.read_parquet(doc["alerts_table"])
    assert sorted(alerts["uscc"]) == sorted(changed)
    assert alerts["adverse_categories"].str.contains("platform:judicial").all()
    assert doc["alerts"]["total"] == len(changed) and Path(doc["alerts_table"]).is_relative_to(copy.party("bank").root)
    # The platform keeps its last values in its own domain; the bank's alerts carry categories, no values.
    assert list((copy.party("platform").root / "monitoring").glob("bank-t-sgb.parquet"))
    assert set(alerts.columns) == {"uscc", "band_before", "band_now", "bands_moved", "crossed_threshold",
                                   "adverse_categories", "score_now"}  # fmt: skip
