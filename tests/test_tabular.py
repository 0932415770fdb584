"""Bring-your-own-data: import and split handle string categories, missing
values, constant columns, likely IDs and duplicate keys as described."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enclave.controls import policy
from enclave.data import dataset, importing, uscc
from enclave.data import schema as sch
from enclave.home import Home
from models import registry
from models.joint_train.params import JointTrainParams
from parties.client import workflows
from parties.client.local import safehouse_command
from protocols.errors import DataError


def messy(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "cust_id": np.arange(1000, 1000 + n),
            "city": rng.choice(np.array(["郑州", "开封", "洛阳", None], dtype=object), n),
            "segment": rng.choice(["retail", "sme", "corporate"], n),
            "income": np.where(rng.random(n) < 0.2, np.nan, rng.gamma(2, 5000, n)),
            "age": rng.integers(20, 70, n),
            "const": 1,
            "late_30": rng.poisson(0.3, n),
            "late_90": rng.poisson(0.1, n),
            "label": rng.integers(0, 2, n),
        }
    )


def write_csv(tmp_path: Path, df: pd.DataFrame, name: str = "messy.csv") -> Path:
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_import_infers_types_categories_missing_and_warns(home: Home, tmp_path: Path) -> None:
    path = write_csv(tmp_path, messy())
    warnings: list[str] = []
    rep = importing.import_file(path, home, "bank", "customers", "cust_id", label="label", warn=warnings.append)
    s = rep.schema
    assert s.column("city").type == "category" and set(s.column("city").values) == {"郑州", "开封", "洛阳"}
    assert s.column("segment").values == ("corporate", "retail", "sme")
    assert s.column("income").type == "float" and s.column("age").type == "int"
    assert s.column("label").role == "label" and s.key == "cust_id"
    assert s.column("const").role == "meta" and any("'const' is constant" in w for w in warnings)
    assert "const" not in s.features and "income" in s.features
    _, df = dataset.load(home.party("bank").dataset_dir("customers"))
    assert df["income"].isna().sum() > 10 and df["city"].isna().sum() > 10
    enc = dataset.encode_features(s, df, ["city", "segment"])  # categories encoded inside the domain
    assert set(enc["segment"].unique()) == {0.0, 1.0, 2.0}


def test_likely_id_columns_are_flagged(home: Home, tmp_path: Path) -> None:
    df = messy().assign(row_no=lambda d: np.arange(len(d)))
    warnings: list[str] = []
    rep = importing.import_frame(df, "x.csv", home, "bank", "d1", "cust_id", "label", warn=warnings.append)
    assert "row_no" not in rep.schema.features
    assert any("'row_no' looks like an ID" in w for w in warnings)
    given = sch.Schema("d1", "bank", "cust_id", (*rep.schema.columns[:-1], sch.Column("row_no", "int")))
    warnings.clear()
    importing.import_frame(df, "x.csv", home, "bank", "d2", "cust_id", "label", schema=given, warn=warnings.append)
    assert any("'row_no' looks like an ID but is a feature" in w for w in warnings)


def test_duplicate_keys_error_unless_resolved(home: Home, tmp_path: Path) -> None:
    df = messy(50)
    df.loc[7, "cust_id"] = df.loc[3, "cust_id"]
    path = write_csv(tmp_path, df)
    with pytest.raises(DataError, match=r"messy.csv: column 'cust_id': 2 rows share a key, e.g. row\(s\) \[3, 7\]"):
        importing.import_file(path, home, "bank", "c", "cust_id", label="label")
    assert not home.party("bank").dataset_dir("c").exists()  # nothing half-written
    for rule, rows in (("first", 49), ("last", 49), ("drop", 48)):
        rep = importing.import_file(path, home, "bank", f"c{rule}", "cust_id", label="label", on_duplicate=rule)
        assert rep.fingerprint.rows == rows and rep.duplicates_resolved == 50 - rows
    kept = dataset.load(home.party("bank").dataset_dir("clast"))[1]
    assert kept.loc[kept.cust_id == str(df.loc[7, "cust_id"])].shape[0] in (0, 1)


def test_given_schema_mismatch_names_file_row_and_column(home: Home, tmp_path: Path) -> None:
    df = messy(30).astype({"age": object})
    df.loc[12, "age"] = "forty"
    path = write_csv(tmp_path, df)
    schema_file = tmp_path / "schema.yaml"
    schema_file.write_text(importing.review_schema(write_csv(tmp_path, messy(30), "ok.csv"), "bank", "c", "cust_id",
                                                 "label", lambda m: None))  # fmt: skip
    with pytest.raises(DataError, match=r"messy.csv: column 'age': non-numeric values \['forty'\] at row\(s\) \[12\]"):
        importing.import_file(path, home, "bank", "c", "cust_id", label="label", schema_file=schema_file)


def test_bad_label_and_missing_key(home: Home, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"label column 'segment' holds 3 distinct values"):
        importing.import_frame(messy(), "m.csv", home, "bank", "x", "cust_id", label="segment")
    with pytest.raises(DataError, match="key column 'nope' not in the file"):
        importing.import_frame(messy(), "m.csv", home, "bank", "x", "nope")
    with pytest.raises(DataError, match="unsupported file type"):
        importing.read_table(write_csv(tmp_path, messy(), "m.xlsx"))


def test_split_gives_each_party_its_columns_shuffled_and_partly_overlapping(home: Home, tmp_path: Path) -> None:
    src = messy(400)
    path = write_csv(tmp_path, src)
    rep = workflows.split_table(path, home, "label", ["late_30", "late_90"], tmp_path / "out", keep=0.9, seed=3)
    bank = dataset.load(home.party("bank").dataset_dir(rep.dataset))
    plat = dataset.load(home.party("platform").dataset_dir(rep.dataset))
    assert set(bank[1].columns) == {"uscc", "label", "late_30", "late_90"}
    assert {"city", "segment", "income", "age"} <= set(plat[1].columns) and "label" not in plat[1].columns
    assert all(uscc.is_valid(k) for k in bank[1]["uscc"])
    kb, kp = list(bank[1]["uscc"]), list(plat[1]["uscc"])
    assert len(kb) == len(kp) == 360 and kb != kp and kb != sorted(kb)  # shuffled independently
    assert 300 <= len(set(kb) & set(kp)) < 360  # some rows at one side only
    # The synthetic key maps to the same source row on both sides.
    row = {uscc.from_index(i): i for i in range(400)}
    joined = bank[1].merge(plat[1], on="uscc")
    assert (joined["age"].to_numpy() == src.loc[[row[k] for k in joined["uscc"]], "age"].to_numpy()).all()
    spec = registry.load_spec(rep.spec_path)
    assert spec.party("platform").features == tuple(plat[0].features) and "const" not in plat[0].features
    assert "cust_id" not in plat[0].features and JointTrainParams.of(spec).pooled_reference
    for party in ("platform", "bank"):
        assert policy.load(home.party(party).root, party).decide(spec).allowed


def test_split_with_a_key_column_refuses_duplicates_unless_resolved(home: Home, tmp_path: Path) -> None:
    src = messy(120)
    src["cust_id"] = [uscc.from_index(i) for i in range(120)]
    src.loc[9, "cust_id"] = src.loc[2, "cust_id"]
    path = write_csv(tmp_path, src)
    with pytest.raises(DataError, match="rows share a key"):
        workflows.split_table(path, home, "label", ["late_30"], tmp_path / "out", key="cust_id", keep=1.0)
    rep = workflows.split_table(path, home, "label", ["late_30"], tmp_path / "out", key="cust_id", keep=1.0,
                             on_duplicate="first")  # fmt: skip
    assert {r.fingerprint.rows for r in rep.imports.values()} == {119}
    assert rep.imports["bank"].schema.column("cust_id").type == "uscc"
    assert any("duplicate-key rows removed" in w for w in rep.warnings)


def test_cli_review_prints_a_schema(home: Home, tmp_path: Path) -> None:
    path = write_csv(tmp_path, messy())
    args = ["data", "import", str(path), "--party", "bank", "--key", "cust_id", "--label", "label", "--review"]
    r = subprocess.run(
        [*safehouse_command(), "--home", str(home.root), *args], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and "type: category" in r.stdout and "looks like an ID" not in r.stdout
    assert not home.party("bank").dataset_dir("messy").exists()


# ---- binary labels in any two-valued form ----------------------------------------


def labelled(values: list[object], n: int = 60) -> pd.DataFrame:
    df = messy(n)
    df["label"] = [values[i % len(values)] for i in range(n)]
    return df


@pytest.mark.parametrize(
    ("values", "positive", "stored", "positives"),
    [
        ([0, 1], None, "int", 30),
        ([True, False], None, "bool", 30),
        (["true", "FALSE"], None, "bool", 30),
        (["good", "bad"], "bad", "category", 30),
        (["Y", "N", "N"], "Y", "category", 20),
        ([1, 2], "2", "int", 30),
        (["yes", "no"], "yes", "category", 30),
    ],
)
def test_two_valued_labels_with_their_positive_class(
    home: Home, values: list[object], positive: str | None, stored: str, positives: int
) -> None:
    rep = importing.import_frame(labelled(values), "l.csv", home, "bank", "d", "cust_id", "label", positive=positive)
    col = rep.schema.column("label")
    assert col.type == stored and col.role == "label"
    schema, df = dataset.load(home.party("bank").dataset_dir("d"))
    y = dataset.label_array(schema, df, "label")
    assert set(y) == {0, 1} and int(y.sum()) == positives
    # The positive value is in the schema, so every later job reads it the same way.
    assert sch.read_schema(home.party("bank").dataset_dir("d")).column("label").positive_value == (positive or
           ("true" if stored == "bool" else "1"))  # fmt: skip


@pytest.mark.parametrize(
    ("values", "positive", "message"),
    [
        (["good", "bad"], None, r"holds the two values \['bad', 'good'\], not 0/1 or true/false; name the positive "
                                r"class with --positive VALUE"),
        (["good", "bad"], "risky", r"--positive 'risky' is not a value of label column 'label'; it holds \['bad', "
                                   r"'good'\]"),
        (["a", "b", "c"], None, r"holds 3 distinct values \['a', 'b', 'c'\]; a binary label holds exactly two"),
        (["a", None], "a", r"has 30 missing value\(s\), e.g. at row\(s\) \[1, 3, 5, 7, 9\]"),
        (["a"], "a", r"holds one value only \['a'\]"),
    ],
)  # fmt: skip
def test_bad_labels_get_their_own_errors(home: Home, values: list[object], positive: str | None, message: str) -> None:
    with pytest.raises(DataError, match=message):
        importing.import_frame(labelled(values), "l.csv", home, "bank", "d", "cust_id", "label", positive=positive)
    assert not home.party("bank").dataset_dir("d").exists()


def test_a_stored_label_that_breaks_its_schema_is_refused_at_load(home: Home) -> None:
    importing.import_frame(labelled(["good", "bad"]), "l.csv", home, "bank", "d", "cust_id", "label", positive="bad")
    d = home.party("bank").dataset_dir("d")
    _, df = dataset.load(d)
    df.loc[4, "label"] = "ugly"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), d / dataset.DATA_FILE)
    with pytest.raises(DataError, match=r"column 'label': values \['ugly'\] not among declared"):
        dataset.load(d)


def test_cli_split_takes_a_positive_label_value(home: Home, tmp_path: Path) -> None:
    df = labelled(["good", "bad", "good"], 120).drop(columns=["cust_id"])
    path = write_csv(tmp_path, df, "goodbad.csv")
    base = [*safehouse_command(), "--home", str(home.root), "data", "split", str(path), "--label", "label",
            "--bank-columns", "late_30,late_90", "--out", str(tmp_path / "out")]  # fmt: skip
    r = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--positive VALUE" in r.stderr and "['bad', 'good']" in r.stderr
    r = subprocess.run([*base, "--positive", "bad"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    schema = sch.read_schema(home.party("bank").dataset_dir("goodbad"))
    assert schema.column("label").positive == "bad" and schema.column("label").values == ("good", "bad")
