"""``safehouse demo`` at its default size, as a user runs it: the joint model
must beat the bank's own and come close to the pooled reference, and the MLflow
run named in the JSON must hold the metrics and the plots."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

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
    assert {"plots/roc.png", "plots/ks_sgb.png"} <= plots
