"""A scorecard trained by real party processes: WOE/IV from encrypted counts, LR in the SPU, points kept apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from enclave.home import Home
from models import metrics, reference, registry
from parties.report import validation
from parties.worker.hardening import WIRE_LOG_ENV
from tests import browser
from tests.test_multiparty import city, run_cli, spec_for


def leaves(shape: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every leaf of a wire-log shape with its path."""
    if isinstance(shape, dict) and not ({"bytes"} == set(shape) or "dtype" in shape or "type" in shape):
        return [x for k, v in shape.items() for x in leaves(v, f"{path}.{k}")]
    if isinstance(shape, list):
        return [x for i, v in enumerate(shape) for x in leaves(v, f"{path}[{i}]")]
    return [(path, shape)]


def test_a_scorecard_equals_its_plaintext_twin_and_the_platform_sees_no_label_or_count(
    small_city_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scorecard only (no SecureBoost in the job), every peer message's shape logged at each worker."""
    monkeypatch.setenv(WIRE_LOG_ENV, "1")
    home = city(small_city_home, tmp_path)
    doc = yaml.safe_load(spec_for(home).to_yaml())
    doc["models"] = {"bank_only": {}, "scorecard": {"bins": 8, "iv_min": 0.02, "epochs": 4, "uplift": True}}
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out.json"
    r = run_cli("run", str(spec), "--json", str(out), home=home)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text())
    job, models = result["job_id"], result["models"]
    assert models["scorecard"]["auc"] > models["bank_only"]["auc"], models
    assert "pooled" not in models  # the spec asks for no pooled reference
    # The same bins, WOE, selection and gradient steps in plaintext on pooled rows give the same scores.
    twin = reference.pooled_scorecard(home, registry.parse_spec(doc))
    held = pd.read_parquet(home.party("bank").job_dir(job) / "outputs" / "holdout_scores.parquet")
    pooled = reference.pooled_frame(home, registry.parse_spec(doc))
    assert np.abs(held["score_scorecard"].to_numpy() - twin).max() < 0.01
    assert abs(metrics.auc(pooled.y[pooled.test], twin) - models["scorecard"]["auc"]) < 0.002
    # IV for every feature of both parties, per feature and summed per category.
    features = {(p, f) for p, d in doc["parties"].items() for f in d["features"]}
    assert {(row["party"], row["feature"]) for row in result["iv"]} == features
    assert any(row["selected"] and row["party"] == "platform" for row in result["iv"])
    platform_received_no_label_or_count(home, job, int((~pooled.test).sum()))
    _each_party_keeps_its_own_points(home, job)
    _validation_report_reads_in_a_browser(home, result, tmp_path)


def _validation_report_reads_in_a_browser(home: Home, result: dict[str, Any], tmp_path: Path) -> None:
    ml = MlflowClient(result["mlflow"]["tracking_uri"])
    run_id = result["mlflow"]["run_id"]
    logged = {a.path for a in ml.list_artifacts(run_id, "plots")}
    assert {"plots/iv.csv", "plots/iv_categories.csv", "plots/iv.png", "plots/scorecard_points.json"} <= logged
    assert {"plots/uplift.csv", "plots/uplift.png"} <= logged
    uplift = pd.read_csv(ml.download_artifacts(run_id, "plots/uplift.csv", str(tmp_path)))
    categories = {r["category"] for r in result["iv"] if r["party"] == "platform" and r["selected"]}
    assert set(uplift["category"][1:]) == categories  # every category of the platform's data in the model
    # The model's own variant, fitted in the same SPU passes, ranks the held-out firms as the model does.
    assert abs(uplift["auc_left_out"][0] - result["models"]["scorecard"]["auc"]) < 0.002
    assert (uplift["auc_alone"][1:] >= uplift["auc_alone"][0] - 0.05).all()
    page = Path(ml.download_artifacts(run_id, "report/scorecard.html", str(tmp_path)))
    o = browser.outline(browser.render(page))
    assert list(o.sections) == list(validation.SECTIONS)
    assert o.headings[0].startswith("Validation report")
    for section in ("data", "performance", "binning", "points", "stability", "uplift", "controls"):
        assert o.sections[section]["table"] >= 1 and o.sections[section]["tr"] >= 2, (section, o.sections)
    assert o.sections["performance"]["img"] >= 2 and o.sections["binning"]["img"] == o.sections["uplift"]["img"] == 1
    text = page.read_text()
    assert "platform" in text and "min_cell_size" in text and result["job_id"] in text
    for firm in pd.read_parquet(home.party("bank").dataset_dir("loans") / "data.parquet")["uscc"][:200]:
        assert firm not in text  # aggregates only


def platform_received_no_label_or_count(home: Home, job: str, train_rows: int) -> None:
    """Everything a peer sent the platform's worker, message by message: HE ciphertexts and public
    keys (bytes), SPU shares (bytes right after their SPUIOInfo) and shape-only metadata, PSI sizes,
    the row count, packing layouts and its own bin counts; no array and no other number."""
    wire = [json.loads(line) for line in (home.party("platform").job_dir(job) / "wire.jsonl").read_text().splitlines()]
    numbers = (".rows", ".layout", ".n_bins", ".seq_id", ".original_count", ".intersection_count")
    previous: Any = None
    for msg in wire:
        for path, value in leaves(msg["shape"]):
            if isinstance(value, dict) and set(value) == {"bytes"}:
                share = path == ".payload" and previous == {"type": "secretflow.device.device.spu.SPUIOInfo"}
                assert share or path.rsplit(".", 1)[-1] in ("ct", "pk"), path
            elif isinstance(value, dict) and "dtype" in value:
                assert value["type"] == "SPUValueMeta", f"the platform received an array at {path}: {value}"
            elif isinstance(value, bool) or (path == ".payload" and value in (0, 1)):
                continue  # a device call's completion flag
            elif isinstance(value, int | float):
                assert path.endswith(numbers) or ".layout[" in path or ".n_bins[" in path, (path, value)
        previous = msg["shape"].get("payload")
    found = [leaf for msg in wire for leaf in leaves(msg["shape"])]
    assert any(p.endswith(".ct") and v["bytes"] > train_rows for p, v in found if isinstance(v, dict))
    assert {v for p, v in found if p.endswith(".rows")} == {train_rows}


def _each_party_keeps_its_own_points(home: Home, job: str) -> None:
    platform_part = home.party("platform").model_dir(job) / "scorecard"
    bank_part = home.party("bank").model_dir(job) / "scorecard"
    # The platform keeps its split points and an encrypted point table, nothing in plaintext.
    assert sorted(p.name for p in platform_part.iterdir()) == ["bins.json", "he.pk", "part.json", "points.ct",
                                                               "points.json", "profile.json"]  # fmt: skip
    assert set(json.loads((platform_part / "points.json").read_text())) == {"features", "categories", "n_bins",
                                                                            "layout"}  # fmt: skip
    bank = json.loads((bank_part / "points.json").read_text())
    assert {f["party"] for f in bank["features"]} == {"bank", "platform"}
    assert not (bank_part / "bins.json").read_text().count("platform")
