"""``safehouse demo`` at its default size, as a user runs it: the joint model
must beat the bank's own and come close to the pooled reference, the MLflow
run named in the JSON must hold the metrics and the plots, every link was
mutually authenticated with no dealer party, and no per-firm value reached the
coordinator or MLflow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from parties.client.local import safehouse_command

pytestmark = pytest.mark.multiparty


def test_demo_default_size(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    r = subprocess.run(
        [*safehouse_command(), "--home", str(tmp_path / "home"), "demo", "--rows", "5000", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads(out.read_text())
    m = doc["models"]
    assert set(m) == {"sgb", "sslr", "bank_only", "pooled"}
    assert m["sgb"]["auc"] - m["bank_only"]["auc"] >= 0.03, m
    assert abs(m["sgb"]["auc"] - m["pooled"]["auc"]) <= 0.01, m
    assert doc["psi"]["intersection"] > 4000 and doc["psi"]["seconds"] > 0
    # Progress was shown, and the table printed.
    assert "sgb: tree 1/" in r.stdout and "simulation only" in r.stdout
    # The demo writes audit trails and verifies them at the end.
    assert "signed entries in 3 trails verified" in r.stdout
    ml = MlflowClient(doc["mlflow"]["tracking_uri"])
    run = ml.get_run(doc["mlflow"]["run_id"])
    for kind in ("sgb", "sslr", "bank_only", "pooled"):
        assert run.data.metrics[f"{kind}_auc"] == pytest.approx(m[kind]["auc"])
        assert run.data.metrics[f"{kind}_ks"] == pytest.approx(m[kind]["ks"])
    plots = {a.path for a in ml.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/roc.png", "plots/ks_sgb.png"} <= plots and "plots/scored_list.csv" not in plots
    sec = doc["security"]
    assert sec["tls"].startswith("mutual TLS") and sec["spu_protocol"] == "CHEETAH" and "no dealer" in sec["beaver"]
    assert sec["he_schema"] == "ou" and int(sec["he_key_bits"]) >= 2048
    assert "Links: mutual TLS" in r.stdout
    assert_per_firm_values_stay_with_the_bank(tmp_path / "home", doc["job_id"])


def assert_per_firm_values_stay_with_the_bank(root: Path, job_id: str) -> None:
    scored = root / "parties" / "bank" / "jobs" / job_id / "outputs" / "scored_list.csv"
    rows = [line.split(",") for line in scored.read_text().splitlines()[1:]]
    assert len(rows) == 50
    firms = set(pq.read_table(root / "parties" / "bank" / "data" / "loans" / "data.parquet").column("uscc").to_pylist())
    needles = [t for t, _, _ in rows] + [m for _, m, _ in rows] + sorted(firms)[:300]
    outside = [root / "coordinator", root / "mlartifacts", root / "mlflow.db"]
    for place in outside:
        files = [place] if place.is_file() else [f for f in place.rglob("*") if f.is_file()]
        assert files, place
        for f in files:
            data = f.read_bytes()
            found = [n for n in needles if n.encode() in data]
            assert not found, f"{f} holds per-firm values {found[:3]}"
