"""数据安全屋 controls end to end, with real party processes: withheld values
change nothing, revocations apply from the next job, a node's policy refuses
what it does not grant, and trails and experiment logs name each other."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from mlflow.tracking import MlflowClient

from enclave.controls import audit, consent, pki
from enclave.data import catalogue as synth
from enclave.data import dataset
from enclave.home import Home
from parties.client import api
from parties.client.local import LocalCluster, safehouse_command
from parties.transport.grpc_links import GrpcCoordinatorLink
from protocols.constants import JobState
from tests.test_multiparty import city, spec_for

pytestmark = pytest.mark.multiparty


def run_job(cluster: LocalCluster, spec_yaml: str) -> Any:
    client = GrpcCoordinatorLink(cluster.address, pki.holder_tls(cluster.home, "bank"))
    return api.follow(client, client.submit(spec_yaml).job_id)


def entries(home: Home, job_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in audit.story(home, job_id) if e["kind"] == kind]


def test_controls_across_jobs(small_city_home: Home, tmp_path: Path, cluster_factory: Any) -> None:
    home = city(small_city_home, tmp_path)
    spec = spec_for(home)
    cluster = cluster_factory(home, spec.party_names)

    # 1. A normal job.
    first = run_job(cluster, spec.to_yaml())
    assert first.state is JobState.SUCCEEDED, first.detail
    r1 = api.summary(first)
    applied1 = entries(home, first.job_id, "consent_applied")
    assert len(applied1) == 1 and applied1[0]["signer"] == "platform"
    n_auth = applied1[0]["body"]["authorised_firms"]
    gated = applied1[0]["body"]["columns"]
    assert "tax_arrears" in gated and "tax_credit_grade" not in gated

    # 2. Scramble the authorisation-required values of unauthorised firms:
    #    the computation must not change at all.
    root = home.party("platform").root
    book = consent.ConsentBook.load(root, home.trust_dir)
    authorised = book.authorised("bank", "credit_risk_model")
    ds = home.party("platform").dataset_dir(synth.PROFILE)
    schema, df = dataset.load(ds)
    unauth = ~df[synth.KEY].isin(authorised).to_numpy()
    assert unauth.sum() > 50
    rng = np.random.default_rng(0)
    for c in gated:
        col = schema.column(c)
        if col.type == "float":
            df.loc[unauth, c] = rng.random(int(unauth.sum())) * 1e6
        elif col.type == "int":
            df.loc[unauth, c] = rng.integers(0, 10_000, int(unauth.sum()))
        elif col.type == "bool":
            df.loc[unauth, c] = rng.random(int(unauth.sum())) < 0.5
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), ds / dataset.DATA_FILE)
    second = run_job(cluster, spec.to_yaml())
    assert second.state is JobState.SUCCEEDED, second.detail
    r2 = api.summary(second)
    assert r2["fingerprints"]["platform"]["sha256"] != r1["fingerprints"]["platform"]["sha256"]
    assert r2["models"]["sgb"] == r1["models"]["sgb"]
    assert r2["models"]["bank_only"] == r1["models"]["bank_only"]
    assert json.loads((home.coordinator / "jobs" / f"{first.job_id}.json").read_text())["state"] == "succeeded"
    manifests = [
        MlflowClient(home.tracking_uri).download_artifacts(r["mlflow"]["run_id"], "models/sgb/manifest.json")
        for r in (r1, r2)
    ]
    parts = [{p: v["part_sha256"] for p, v in json.loads(Path(m).read_text())["parties"].items()} for m in manifests]
    assert parts[0].keys() == parts[1].keys() == {"platform", "bank"}
    # Each part's registered hash also covers its record (part.json), which names its job;
    # the model itself (the part and its preparation) must be byte for byte the same.
    for p in ("platform", "bank"):
        before, after = (_model_files(home.party(p).root / "models" / j.job_id / "sgb") for j in (first, second))
        assert before == after, f"withheld values changed {p}'s model part"

    # 3. Revocations apply from the next job.
    ids = [a.id for a in book.authorisations if a.uscc in authorised][:5]
    for auth_id in ids:
        r = subprocess.run([*safehouse_command(), "--home", str(home.root), "consent", "revoke", auth_id],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
        assert r.returncode == 0, r.stderr
    third = run_job(cluster, spec.to_yaml())
    assert third.state is JobState.SUCCEEDED, third.detail
    assert entries(home, third.job_id, "consent_applied")[0]["body"]["authorised_firms"] == n_auth - 5

    # 4. The platform narrows its policy: a job asking for the column is refused there.
    pol = yaml.safe_load((root / "policy.yaml").read_text())
    keep = [c for c in schema.features if c != "tax_credit_grade"]
    pol["grants"][0]["datasets"] = {synth.PROFILE: keep}
    (root / "policy.yaml").write_text(yaml.safe_dump(pol))
    fourth = run_job(cluster, spec.to_yaml())
    assert fourth.state is JobState.FAILED
    assert "refused" in fourth.detail and "tax_credit_grade" in fourth.detail
    refusal = entries(home, fourth.job_id, "policy_decision")
    assert [e["body"]["allowed"] for e in refusal if e["signer"] == "platform"] == [False]
    assert not (home.party("platform").job_dir(fourth.job_id) / "worker.json").exists()
    assert not (home.party("bank").job_dir(fourth.job_id) / "worker.json").exists()

    # 5. Outputs went through the gate: the scored list is per-firm and stays in
    #    the bank's domain, desensitised; small score bands are suppressed.
    release = entries(home, first.job_id, "output_release")
    bank_release = next(e for e in release if e["signer"] == "bank")["body"]
    assert "scored_list.csv" in bank_release["withheld"] and bank_release["suppressed_cells"] > 0
    scored = (home.party("bank").job_dir(first.job_id) / "outputs" / "scored_list.csv").read_text()
    assert "********" in scored and not any(k in scored for k in df[synth.KEY].head(200))
    ml = MlflowClient(home.tracking_uri)
    run_id = r1["mlflow"]["run_id"]
    assert "plots/scored_list.csv" not in {a.path for a in ml.list_artifacts(run_id, "plots")}
    bands = json.loads(Path(ml.download_artifacts(run_id, "plots/score_bands.json")).read_text())
    assert any(b.get("suppressed") for b in bands) and all(b["firms"] is None or b["firms"] >= 10 for b in bands)

    # 6. Experiment log and audit trail name each other, and the trail verifies.
    run = ml.get_run(run_id)
    all_hashes = {e["hash"] for t in audit.trails(home) for _, e, _ in audit.read_entries(t) if e}
    for party in ("platform", "bank", "coordinator"):
        tagged = run.data.tags[f"safehouse.audit.{party}"].split(",")
        assert tagged and set(tagged) <= all_hashes
    assert any(e["body"].get("mlflow_run_id") == run_id for e in audit.story(home, first.job_id))
    r = subprocess.run([*safehouse_command(), "--home", str(home.root), "audit", "verify"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    shown = subprocess.run([*safehouse_command(), "--home", str(home.root), "audit", "show", "--job", first.job_id],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert shown.returncode == 0
    for kind in ("job_request", "policy_decision", "dataset_fingerprint", "output_release", "model_registered"):
        assert kind in shown.stdout


def _model_files(part: Path) -> dict[str, bytes]:
    """A part's files but its record, by name."""
    files = {f.name: f.read_bytes() for f in part.iterdir() if f.is_file() and f.name != "part.json"}
    if "secureboost.json" not in files:
        raise AssertionError(f"{part} holds no SecureBoost part: {sorted(files)}")
    return files
