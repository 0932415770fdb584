"""Multi-party jobs with real processes: one node per party and a coordinator,
each its own OS process on ports the OS picks, talking gRPC and SecretFlow links.

The ``cluster_factory`` fixture stops every process, fails the test if any is
left behind, and prints every party's log when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from enclave.controls import pki
from enclave.data import catalogue as synth
from enclave.data import dataset
from enclave.data import schema as sch
from enclave.files import sha256_dir
from enclave.home import Home
from enclave.jobspec import JobSpec
from models import registry
from parties.client import api
from parties.client.local import LocalCluster, safehouse_command
from parties.procs import pid_alive
from parties.tracking import EXPERIMENT
from parties.transport.grpc_links import GrpcCoordinatorLink
from protocols.constants import JobState
from protocols.messages import JobStatus

pytestmark = pytest.mark.multiparty


def city(small_city_home: Home, tmp_path: Path) -> Home:
    home = Home.resolve(tmp_path / "home")
    shutil.copytree(small_city_home.root, home.root)
    return home


def spec_for(
    home: Home, *, trees: int = 3, extra_platform: list[str] | None = None, bank_first: bool = False
) -> JobSpec:
    platform = sch.read_schema(home.party("platform").dataset_dir(synth.PROFILE))
    bank = sch.read_schema(home.party("bank").dataset_dir(synth.LOANS))
    parties = {
        "platform": {"dataset": synth.PROFILE, "features": platform.features + (extra_platform or [])},
        "bank": {"dataset": synth.LOANS, "features": bank.features},
    }
    if bank_first:
        parties = {"bank": parties["bank"], "platform": parties["platform"]}
    return registry.parse_spec(
        {
            "name": "t",
            "parties": parties,
            "label": {"party": "bank", "column": synth.LABEL},
            "models": {
                "sgb": {"num_boost_round": trees, "max_depth": 3, "sketch_eps": 0.1},
                "sslr": {"epochs": 2, "batch_size": 128},
                "bank_only": {},
            },
        }
    )


def start_job(home: Home, spec: JobSpec, cluster_factory: Any) -> tuple[GrpcCoordinatorLink, str]:
    """Start one process per party and a coordinator; submit the job."""
    cluster: LocalCluster = cluster_factory(home, spec.party_names)
    client = GrpcCoordinatorLink(cluster.address, pki.holder_tls(home, spec.label_party))
    return client, client.submit(spec.to_yaml()).job_id


def experiment_id(ml: MlflowClient) -> str:
    exp = ml.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        raise AssertionError(f"no MLflow experiment {EXPERIMENT!r}")
    return str(exp.experiment_id)


def wait_until(
    client: GrpcCoordinatorLink, job_id: str, pred: Callable[[JobStatus], bool], timeout: float
) -> JobStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = client.status(job_id)
        if pred(st) or st.state.terminal:
            return st
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} did not reach the wanted state in {timeout}s")


def test_joint_job_end_to_end(small_city_home: Home, tmp_path: Path, cluster_factory: Any) -> None:
    home = city(small_city_home, tmp_path)
    spec = spec_for(home)
    client, job_id = start_job(home, spec, cluster_factory)
    final = api.follow(client, job_id)
    assert final.state is JobState.SUCCEEDED, final.detail
    assert [(p.party, p.state) for p in final.parties] == [
        ("platform", JobState.SUCCEEDED),
        ("bank", JobState.SUCCEEDED),
    ]
    result = api.summary(final)

    # PSI found exactly the true intersection.
    _, pdf = dataset.load(home.party("platform").dataset_dir(synth.PROFILE), [])
    _, bdf = dataset.load(home.party("bank").dataset_dir(synth.LOANS), [])
    keys_p, keys_b = set(pdf[synth.KEY]), set(bdf[synth.KEY])
    assert result["psi"]["intersection"] == len(keys_p & keys_b)
    for kind in ("sgb", "sslr", "bank_only"):
        assert 0.55 < result["models"][kind]["auc"] <= 1.0, result["models"]
        assert 0.0 < result["models"][kind]["ks"] <= 1.0

    # MLflow holds the metrics, plots, fingerprints and a registered manifest.
    ml = MlflowClient(result["mlflow"]["tracking_uri"])
    run = ml.get_run(result["mlflow"]["run_id"])
    assert run.data.metrics["sgb_auc"] == pytest.approx(result["models"]["sgb"]["auc"])
    assert run.info.status == "FINISHED" and run.data.tags["safehouse.job_id"] == job_id
    plots = {a.path for a in ml.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/roc.png", "plots/ks_sgb.png", "plots/ks_sslr.png"} <= plots
    assert "seconds.bank.sgb" in run.data.metrics
    reg = result["mlflow"]["models"]["sgb"]
    mv = ml.get_model_version(reg["name"], reg["version"])
    manifest = json.loads(Path(ml.download_artifacts(run.info.run_id, "models/sgb/manifest.json")).read_text())
    assert mv.run_id == run.info.run_id and manifest["job_id"] == job_id
    for party in ("platform", "bank"):
        part = home.party(party).model_dir(job_id) / "sgb"
        assert manifest["parties"][party]["part_sha256"] == sha256_dir(part)
    # The label holder keeps the trees and leaf weights; the platform only its own splits
    # (feature and threshold per split node), no leaf value, no other party's feature.
    bank_part, platform_part = (
        json.loads((home.party(p).model_dir(job_id) / "sgb" / "secureboost.json").read_text())
        for p in ("bank", "platform")
    )
    assert bank_part["role"] == "active" and platform_part["role"] == "passive"
    leaves = [n for tree in bank_part["trees"] for n in tree.values() if "owner" not in n]
    assert leaves and all(isinstance(n["value"], float) for n in leaves)
    assert "value" not in json.dumps(platform_part)
    # The bank's record of a platform split holds its reporting category, never feature or threshold.
    theirs = [n for tree in bank_part["trees"] for n in tree.values() if n.get("owner") == "platform"]
    assert theirs and all("feature" not in n and "threshold" not in n and n["category"] for n in theirs)
    assert set(platform_part["features"]) == set(spec.party("platform").features)
    own_splits = [fv for tree in platform_part["trees"] for fv in tree.values()]
    assert own_splits and all(f in platform_part["features"] for f, _ in own_splits)

    # No row crossed to the coordinator or MLflow: no firm key appears there.
    coord_text = "".join(p.read_text() for p in home.coordinator.rglob("*.json"))
    tracked = "".join(p.read_text(errors="ignore") for p in home.artifact_root.rglob("*") if p.is_file())
    sample = list(keys_p & keys_b)[:50] + list(keys_p - keys_b)[:50]
    assert not [k for k in sample if k in coord_text or k in tracked]
    # PSI working files are gone from both domains.
    assert not list(home.root.rglob("psi_*.csv"))


def test_killed_worker_fails_the_job_everywhere(small_city_home: Home, tmp_path: Path, cluster_factory: Any) -> None:
    home = city(small_city_home, tmp_path)
    spec = spec_for(home, trees=60)
    client, job_id = start_job(home, spec, cluster_factory)
    running = wait_until(
        client, job_id, lambda s: any(p.stage == "sgb" and p.detail.startswith("tree") for p in s.parties), 180
    )
    assert running.state is JobState.RUNNING, running.detail
    pids = {p.party: p.worker_pid for p in running.parties}
    assert all(pid > 0 and pid_alive(pid) for pid in pids.values()), pids
    os.kill(pids["platform"], signal.SIGKILL)

    final = api.follow(client, job_id)
    assert final.state is JobState.FAILED
    assert "platform" in final.detail and "signal 9" in final.detail
    assert {p.party: p.state for p in final.parties} == {"platform": JobState.FAILED, "bank": JobState.FAILED}
    deadline = time.monotonic() + 30
    while any(pid_alive(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids.values() if pid_alive(p)], "a worker outlived its failed job"
    # Both nodes agree, in their own persisted state, and kept no partial model.
    for party in ("platform", "bank"):
        state = json.loads((home.party(party).job_dir(job_id) / "state.json").read_text())
        assert state["state"] == "failed"
        assert not home.party(party).model_dir(job_id).exists()
    # The MLflow run records the failure.
    ml = MlflowClient(home.tracking_uri)
    runs = ml.search_runs([experiment_id(ml)], f"tags.`safehouse.job_id` = '{job_id}'")
    assert [r.info.status for r in runs] == ["FAILED"]


def test_node_refuses_unknown_column_and_nothing_runs(
    small_city_home: Home, tmp_path: Path, cluster_factory: Any
) -> None:
    home = city(small_city_home, tmp_path)
    spec = spec_for(home, extra_platform=["secret_column"], bank_first=True)
    client, job_id = start_job(home, spec, cluster_factory)
    final = api.follow(client, job_id)
    assert final.state is JobState.FAILED
    assert "party 'platform' refused the job" in final.detail and "secret_column" in final.detail
    # The bank had accepted; it was told the job failed. No worker ever started.
    assert {p.party: p.state for p in final.parties} == {"bank": JobState.FAILED}
    assert not list(home.root.rglob("worker.json"))


def test_cancel_ends_the_job_everywhere(small_city_home: Home, tmp_path: Path, cluster_factory: Any) -> None:
    home = city(small_city_home, tmp_path)
    spec = spec_for(home, trees=60)
    client, job_id = start_job(home, spec, cluster_factory)
    running = wait_until(client, job_id, lambda s: any(p.stage == "sgb" for p in s.parties), 180)
    pids = [p.worker_pid for p in running.parties]
    final = client.cancel(job_id)
    assert final.state is JobState.CANCELLED
    assert {p.state for p in final.parties} == {JobState.CANCELLED}
    assert not [p for p in pids if pid_alive(p)]
    ml = MlflowClient(home.tracking_uri)
    runs = ml.search_runs([experiment_id(ml)])
    assert [(r.info.status, r.data.tags["safehouse.state"]) for r in runs] == [("KILLED", "cancelled")]


def run_cli(*args: str, home: Home) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*safehouse_command(), "--home", str(home.root), *args], capture_output=True, text=True, timeout=300
    )


def test_cli_names_bad_spec_and_bad_data(small_city_home: Home, tmp_path: Path) -> None:
    home = city(small_city_home, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec_for(home).to_yaml().replace("max_depth: 3", "max_depth: 99"))
    r = run_cli("run", str(bad), home=home)
    assert r.returncode == 2
    assert f"{bad}: models.sgb.max_depth: expected an integer from 1 to 8, got 99" in r.stderr

    ds = home.party("bank").dataset_dir(synth.LOANS)
    _, df = dataset.load(ds)
    schema = sch.read_schema(ds)
    df.loc[7, "guarantee"] = "handshake"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), ds / dataset.DATA_FILE)
    r = run_cli("data", "check", str(ds), home=home)
    assert r.returncode == 2
    assert f"{ds / dataset.DATA_FILE}: column 'guarantee': values ['handshake']" in r.stderr and "row(s) 7" in r.stderr
    assert schema.name == "loans"


def test_cli_run_reports_a_party_refusal(small_city_home: Home, tmp_path: Path) -> None:
    home = city(small_city_home, tmp_path)
    spec = tmp_path / "job.yaml"
    spec.write_text(spec_for(home).to_yaml().replace("dataset: loans", "dataset: mortgages"))
    r = run_cli("run", str(spec), home=home)
    assert r.returncode == 2
    assert "party 'bank' refused the job: party 'bank' holds no dataset 'mortgages'" in r.stderr


def test_cli_run_writes_the_demo_summary(small_city_home: Home, tmp_path: Path) -> None:
    home = city(small_city_home, tmp_path)
    spec = tmp_path / "job.yaml"
    spec.write_text(spec_for(home).to_yaml().replace("pooled: false", "pooled: true"))
    out = tmp_path / "out.json"
    r = run_cli("run", str(spec), "--json", str(out), home=home)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert set(doc["models"]) == {"sgb", "sslr", "bank_only", "pooled"}
    assert set(doc) >= {"psi", "models", "mlflow"} and doc["psi"]["intersection"] > 400
    # Without the reference in the spec there is no pooled entry: tests/test_scorecard_multiparty.py.


def test_remote_deployment_dials_only_what_the_federation_names(
    small_city_home: Home, tmp_path: Path, cluster_factory: Any
) -> None:
    """A coordinator on another host (its own home and certificate) drives the nodes its
    federation file lists; a client reaches it with `safehouse run --coordinator`. A spec
    that carries an address is refused: addresses come from the federation file only."""
    import shutil

    import yaml

    from enclave.controls import pki
    from parties.client.local import coordinator_args
    from parties.procs import kill_group, wait_for_file

    home = city(small_city_home, tmp_path)
    cluster = cluster_factory(home, ["platform", "bank"])
    coord_home = Home.resolve(tmp_path / "coordinator-host")
    pki.issue(home.pki_dir, "coordinator", coord_home.tls_dir("coordinator"), ["127.0.0.1"])
    coord_home.root.mkdir(parents=True, exist_ok=True)
    shutil.copy(home.root / "federation.yaml", coord_home.root / "federation.yaml")
    port_file = tmp_path / "coord.port"
    log = (tmp_path / "coord.log").open("wb")
    proc = subprocess.Popen(
        [*safehouse_command(), *coordinator_args(str(coord_home.root), "127.0.0.1", 0, str(port_file))],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        address = f"127.0.0.1:{wait_for_file(port_file, 60, proc)}"
        doc = spec_for(home).to_dict()
        doc["deployment"] = "remote"
        spec = tmp_path / "remote.yaml"
        spec.write_text(yaml.safe_dump(doc))
        out = tmp_path / "out.json"
        r = run_cli("run", str(spec), "--coordinator", address, "--json", str(out), home=home)
        assert r.returncode == 0, r.stderr[-2000:] + (tmp_path / "coord.log").read_text()[-2000:]
        result = json.loads(out.read_text())
        assert "sgb" in result["models"] and str(coord_home.root) in result["mlflow"]["tracking_uri"]
        doc["parties"]["bank"]["endpoint"] = cluster.node_addresses["bank"]
        spec.write_text(yaml.safe_dump(doc))
        r = run_cli("run", str(spec), "--coordinator", address, home=home)
        assert r.returncode == 2 and "addresses come from the federation file, not from a job spec" in r.stderr
    finally:
        kill_group(proc)
        log.close()


def test_split_and_run_a_table_whose_label_reads_good_or_bad(tmp_path: Path) -> None:
    """`data split --positive bad` then `safehouse run`, as a user with such a table would."""
    import pandas as pd

    src = Path(__file__).resolve().parent.parent / "data" / "public" / "uci_taiwan_credit_card.csv.gz"
    df = pd.read_csv(src, nrows=1500)
    df["status"] = df.pop("default.payment.next.month").map({1: "bad", 0: "good"})
    table = tmp_path / "goodbad.csv"
    df.to_csv(table, index=False)
    home = Home.resolve(tmp_path / "home")
    bank_cols = ",".join(f"PAY_{i}" for i in (0, 2, 3, 4, 5, 6))
    r = run_cli("data", "split", str(table), "--label", "status", "--positive", "bad", "--bank-columns", bank_cols,
                "--out", str(tmp_path / "split"), "--trees", "3", "--depth", "3", home=home)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out.json"
    r = run_cli("run", str(tmp_path / "split" / "job.yaml"), "--json", str(out), home=home)
    assert r.returncode == 0, r.stderr[-3000:]
    models = json.loads(out.read_text())["models"]
    # "bad" is the positive class: a model that learned it ranks defaulters high.
    assert models["sgb"]["auc"] > 0.6 and models["pooled"]["auc"] > 0.6, models


def test_a_three_party_job_with_a_guarantor(tmp_path: Path, cluster_factory: Any) -> None:
    """A guarantor holding features only joins the bank and the platform: PSI across all three,
    SecureBoost with two passive parties, SS-LR with the guarantor sharing into the two-node SPU."""
    from parties.client import workflows

    home = Home.resolve(tmp_path / "home")
    workflows.generate_city(home, 600, seed=11, guarantor="guarantor")
    datasets = {"platform": synth.PROFILE, "bank": synth.LOANS, "guarantor": synth.GUARANTEES}
    doc = workflows.spec_for(home, "three", datasets, ("bank", synth.LABEL), trees=3, depth=3).to_dict()
    doc["models"]["sslr"]["epochs"] = 2
    spec = registry.parse_spec(doc)
    client, job_id = start_job(home, spec, cluster_factory)
    final = api.follow(client, job_id)
    assert final.state is JobState.SUCCEEDED, final.detail
    result = api.summary(final)
    keys = [set(dataset.load(home.party(p).dataset_dir(d), [])[1][synth.KEY]) for p, d in datasets.items()]
    assert result["psi"]["intersection"] == len(keys[0] & keys[1] & keys[2])
    assert {"sgb", "sslr", "bank_only"} <= set(result["models"]) and result["models"]["sgb"]["auc"] > 0.55
    assert "ECDH 3PC" in " ".join(
        line for line in (home.party("guarantor").job_dir(job_id) / "events.jsonl").read_text().splitlines()
    )
    # Each party keeps its own part: the guarantor's SS-LR slice has one weight per guarantor feature
    # (plus a missing-value flag per column with gaps), and no leaf weights of the trees.
    g_part = home.party("guarantor").model_dir(job_id)
    assert (g_part / "sslr" / "weights.npy").is_file() and not (g_part / "sslr" / "bias.npy").exists()
    assert not any("leaf" in f.name for f in (g_part / "sgb").rglob("*"))
    assert not list(home.root.rglob("psi_*"))
