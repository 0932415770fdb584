"""Schema checks on data files: every error names the file, column and row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enclave.data import dataset, uscc
from enclave.data import schema as sch
from enclave.data.schema import Column, Schema
from protocols.errors import DataError, SpecError

SCHEMA = Schema(
    name="firms",
    owner="platform",
    key="uscc",
    columns=(
        Column("uscc", "uscc", role="key", nullable=False),
        Column("grade", "category", values=("A", "B", "M", "C", "D")),
        Column("employees", "int"),
        Column("capital", "float"),
        Column("listed", "bool"),
        Column("founded", "date", nullable=False),
        Column("label", "int", role="label", nullable=False),
    ),
)


def frame(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "uscc": [uscc.from_index(i) for i in range(n)],
            "grade": ["A", "B", None, "C", "D"][:n],
            "employees": pd.array([3, None, 10, 4, 5][:n], dtype="Int64"),
            "capital": [1.5, 2.0, None, 4.0, 5.0][:n],
            "listed": pd.array([True, False, None, True, False][:n], dtype="boolean"),
            "founded": pd.to_datetime(["2020-01-01", "2019-05-01", "2018-03-03", "2021-07-07", "2022-02-02"][:n]),
            "label": [0, 1, 0, 0, 1][:n],
        }
    )


def written(tmp_path: Path, df: pd.DataFrame | None = None) -> Path:
    d = tmp_path / "firms"
    dataset.write(d, SCHEMA, frame() if df is None else df)
    return d


def corrupt(d: Path, df: pd.DataFrame) -> None:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), d / dataset.DATA_FILE)


def test_roundtrip_keeps_types_and_missing_values(tmp_path: Path) -> None:
    d = written(tmp_path)
    schema, df = dataset.load(d)
    assert schema == SCHEMA
    assert df["employees"].isna().sum() == 1 and df["grade"].isna().sum() == 1
    enc = dataset.encode_features(schema, df, ["grade", "employees", "listed", "founded"])
    assert list(enc["grade"].fillna(-1)) == [0, 1, -1, 3, 4]
    assert enc["listed"].isna().sum() == 1


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    a = dataset.fingerprint(written(tmp_path / "a"))
    df = frame()
    df.loc[0, "capital"] = 99.0
    b = dataset.fingerprint(written(tmp_path / "b", df))
    assert a.rows == b.rows == 5 and a.sha256 != b.sha256


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda df: df.assign(grade=["A", "B", "Q", "C", "D"]),
            r"column 'grade': values \['Q'\] not among .* row\(s\) 2",
        ),
        (
            lambda df: df.assign(uscc=[*df.uscc[:3], "91410105000000051X", df.uscc[4]]),
            r"column 'uscc': invalid USCC at row 3: check character",
        ),
        (
            lambda df: df.assign(uscc=[df.uscc[0], df.uscc[0], *df.uscc[2:]]),
            r"column 'uscc': duplicate keys at row\(s\) 0, 1",
        ),
        (lambda df: df.assign(capital=["x", "y", "z", "w", "v"]), r"column 'capital': expected float, file has object"),
        (
            lambda df: df.assign(employees=[1.0, 2.5, 3.0, 4.0, 5.0]),
            r"column 'employees': non-integer values at row\(s\) 1",
        ),
        (
            lambda df: df.assign(label=pd.array([0, None, 1, 0, 1], dtype="Int64")),
            r"column 'label': missing values in non-nullable column at row\(s\) 1",
        ),
        (lambda df: df.drop(columns=["capital"]), r"declared column\(s\) \['capital'\] not in the file"),
        (lambda df: df.assign(extra=1), r"column\(s\) \['extra'\] are not declared"),
    ],
)
def test_bad_files_name_file_column_and_row(tmp_path: Path, mutate: object, expected: str) -> None:
    d = written(tmp_path)
    corrupt(d, mutate(frame()))  # type: ignore[operator]
    with pytest.raises(DataError, match=expected) as err:
        dataset.load(d)
    assert str(d / dataset.DATA_FILE) in str(err.value)
    # What may cross a boundary names the dataset, not rows or values.
    assert "row" not in err.value.public and "firms" in err.value.public


def test_unreadable_file(tmp_path: Path) -> None:
    d = written(tmp_path)
    (d / dataset.DATA_FILE).write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        dataset.load(d)


def test_bad_schema_file_names_the_column(tmp_path: Path) -> None:
    d = written(tmp_path)
    text = (d / sch.SCHEMA_FILE).read_text().replace("type: float", "type: decimal")
    (d / sch.SCHEMA_FILE).write_text(text)
    with pytest.raises(SpecError, match=r"schema.yaml: column 'capital': type 'decimal'"):
        dataset.load(d)


def test_failed_write_leaves_previous_dataset_intact(tmp_path: Path) -> None:
    d = written(tmp_path)
    before = dataset.fingerprint(d)
    bad = frame().assign(grade=["A", "B", "Q", "C", "D"])
    with pytest.raises(DataError):
        dataset.write(d, SCHEMA, bad)
    assert dataset.fingerprint(d) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["firms"]  # no temp leftovers


def test_partial_column_load_reads_only_what_is_asked(tmp_path: Path) -> None:
    d = written(tmp_path)
    _, df = dataset.load(d, ["capital"])
    assert list(df.columns) == ["uscc", "capital"]
    with pytest.raises(SpecError, match="has no column 'nope'"):
        dataset.load(d, ["nope"])
    shutil.rmtree(d)
    with pytest.raises(DataError, match="schema file not found"):
        dataset.load(d)
