"""Fuzzing: 1,000 mutated job specs and 200 mutated CSV/Parquet files through the CLI
and through real node processes. Each must be accepted or get a one-line error
naming the file and the field or column at fault; never a traceback, and the
nodes stay up. The counts are printed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from enclave.controls import policy
from enclave.controls.pki import TlsFiles
from enclave.data import catalogue as cat
from enclave.home import Home
from parties.client.local import LocalCluster
from parties.transport.grpc_links import GrpcNodeLink
from tests import fuzzing
from tests.test_multiparty import city, spec_for

pytestmark = pytest.mark.multiparty
SPECS, TABLES = 1000, 200


def fuzz_specs(home: Home, links: dict[str, GrpcNodeLink], out: Path) -> tuple[fuzzing.Counts, fuzzing.Counts]:
    cli, node = fuzzing.Counts(), fuzzing.Counts()
    base = spec_for(home).to_dict()
    for i, (text, what) in enumerate(fuzzing.mutated_specs(base, SPECS, seed=20261124)):
        path = out / f"spec-{i}.yaml"
        path.write_bytes(text)
        code, err = fuzzing.run_cli(["--home", str(home.root), "spec", "check", str(path)])
        fuzzing.judge_cli(cli, code, err, str(path), f"spec {i} ({what})")
        party = ("platform", "bank")[i % 2]
        sent = text.decode("utf-8", errors="replace")
        fuzzing.prepare_on_node(node, links[party], f"fz-spec-{i}", sent, f"spec {i} ({what})")
    return cli, node


def fuzz_tables(home: Home, links: dict[str, GrpcNodeLink], out: Path) -> tuple[fuzzing.Counts, fuzzing.Counts]:
    cli, node = fuzzing.Counts(), fuzzing.Counts()
    loans_dir = home.party(cat.BANK).dataset_dir(cat.LOANS)
    base = pq.read_table(loans_dir / "data.parquet").to_pandas().head(120)
    cases = list(fuzzing.mutated_tables(base, cat.KEY, cat.LABEL, TABLES, seed=7))
    names = [f"fzn{i}" for i, (_, suffix, _) in enumerate(cases) if suffix == ".parquet"]
    # The bank's policy grants the fuzz datasets, so the node reaches the files themselves.
    grant = policy.grant(["platform"], ["joint_train"], dict.fromkeys(names, "*"), ["metrics"])
    policy.add_grant(home.party(cat.BANK).root, cat.BANK, grant)
    schema = yaml.safe_load((loans_dir / "schema.yaml").read_text())
    for i, (data, suffix, what) in enumerate(cases):
        path = out / f"table-{i}{suffix}"
        path.write_bytes(data)
        argv = ["--home", str(home.root), "data", "import", str(path), "--party", "bank", "--dataset", f"fz{i}",
                "--key", cat.KEY, "--label", cat.LABEL]  # fmt: skip
        fuzzing.judge_cli(cli, *fuzzing.run_cli(argv), str(path), f"table {i} ({what})")
        if suffix != ".parquet":
            continue
        ds = home.party(cat.BANK).dataset_dir(f"fzn{i}")
        ds.mkdir(parents=True)
        (ds / "data.parquet").write_bytes(data)
        (ds / "schema.yaml").write_text(yaml.safe_dump({**schema, "name": f"fzn{i}"}))
        doc = spec_for(home).to_dict()
        doc["parties"]["bank"]["dataset"] = f"fzn{i}"
        fuzzing.prepare_on_node(node, links["bank"], f"fz-table-{i}", yaml.safe_dump(doc), f"table {i} ({what})")
    return cli, node


def test_fuzzed_specs_and_tables_get_clear_errors_and_nodes_stay_up(
    small_city_home: Home, tmp_path: Path, cluster_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    home = city(small_city_home, tmp_path)
    cluster: LocalCluster = cluster_factory(home, ["platform", "bank"])
    tls = TlsFiles.in_dir(home.tls_dir("coordinator"))
    links = {p: GrpcNodeLink(p, a, tls) for p, a in cluster.node_addresses.items()}
    out = tmp_path / "cases"
    out.mkdir()
    spec_cli, spec_node = fuzz_specs(home, links, out)
    table_cli, table_node = fuzz_tables(home, links, out)
    alive = {role: proc.poll() is None for role, proc in cluster.procs.items()}
    counts = {"bench": "fuzz", **spec_cli.as_dict("spec_cli"), **spec_node.as_dict("spec_node"),
              **table_cli.as_dict("table_cli"), **table_node.as_dict("table_node"),
              "node_crashes": sum(not a for a in alive.values())}  # fmt: skip
    with capsys.disabled():
        print("\n" + json.dumps(counts))
    failures = spec_cli.failures + spec_node.failures + table_cli.failures + table_node.failures
    assert failures == [], "\n".join(failures[:20])
    assert spec_cli.cases == spec_node.cases == SPECS and table_cli.cases == TABLES
    assert spec_cli.refused > 900 and table_cli.refused > 100 and table_node.refused > 10, counts
    assert all(alive.values()), alive
    # The nodes still do their work after all that.
    for party, link in links.items():
        assert link.prepare(f"after-{party}", spec_for(home).to_yaml()).endpoint.party == party
    shutil.rmtree(out)
