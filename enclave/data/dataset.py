"""Datasets inside one party's domain: the validating loader, atomic writes, fingerprints,
and the numeric views a model reads (features, the 0/1 label).

Loading checks the file against its schema (columns, types, levels,
nullability, USCC check characters, duplicate keys, the label's two values)
and names the file, column and row of every fault found; the full text stays
in the owner's domain, only a summary may cross.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from enclave.data import uscc
from enclave.data.schema import SCHEMA_FILE, Column, Schema, canonical, read_schema
from enclave.files import sha256_file
from protocols.errors import DataError, SpecError
from protocols.messages import Fingerprint

DATA_FILE = "data.parquet"
MAX_REPORTED = 5


def fingerprint(directory: Path) -> Fingerprint:
    schema = read_schema(directory)
    data = directory / DATA_FILE
    if not data.is_file():
        raise DataError(f"{data}: data file not found")
    try:
        meta = pq.read_metadata(data)
    except (pa.ArrowException, OSError) as e:
        public = f"dataset {schema.name!r}: its data file is not a readable Parquet file"
        raise DataError(f"{data}: not a readable Parquet file ({e})", public=public) from None
    return Fingerprint(
        dataset=schema.name,
        sha256=sha256_file(data),
        schema_sha256=sha256_file(directory / SCHEMA_FILE),
        rows=meta.num_rows,
        columns=meta.num_columns,
    )


def _rows(mask: np.ndarray) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:MAX_REPORTED])
    more = f" and {len(idx) - MAX_REPORTED} more" if len(idx) > MAX_REPORTED else ""
    return f"row(s) {shown}{more}"


def _check_column(file: Path, col: Column, s: pd.Series, problems: list[str]) -> pd.Series:
    """Validate one column; return it in its canonical pandas dtype."""
    where = f"{file}: column {col.name!r}"
    null = s.isna().to_numpy()
    if not col.nullable and null.any():
        problems.append(f"{where}: missing values in non-nullable column at {_rows(null)}")
    if col.type in ("int", "float"):
        if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
            problems.append(f"{where}: expected {col.type}, file has {s.dtype}")
            return s
        if col.type == "int":
            v = s.to_numpy(dtype="float64", na_value=np.nan)
            frac = ~np.isnan(v) & (np.floor(v) != v)
            if frac.any():
                problems.append(f"{where}: non-integer values at {_rows(frac)}")
                return s
            return s.astype("Int64")
        return s.astype("float64")
    if col.type == "bool":
        if not pd.api.types.is_bool_dtype(s) and not (s.dropna().isin([True, False]).all()):
            problems.append(f"{where}: expected bool, file has {s.dtype}")
            return s
        return s.astype("boolean")
    if col.type == "date":
        if not pd.api.types.is_datetime64_any_dtype(s) and s.dtype != object:
            problems.append(f"{where}: expected date, file has {s.dtype}")
            return s
        conv = pd.to_datetime(s, errors="coerce")
        bad = conv.isna().to_numpy() & ~null
        if bad.any():
            problems.append(f"{where}: unparseable dates at {_rows(bad)}")
        return conv
    # string-like types
    if not (pd.api.types.is_string_dtype(s) or pd.api.types.is_categorical_dtype(s)) or (
        s.dropna().map(type).ne(str).any()
    ):
        problems.append(f"{where}: expected {col.type} (strings), file has {s.dtype}")
        return s
    s = s.astype(object)
    if col.type == "category":
        bad = ~null & ~s.isin(col.values).to_numpy()
        if bad.any():
            seen = sorted(set(s[bad].astype(str)))[:MAX_REPORTED]
            problems.append(f"{where}: values {seen} not among declared {list(col.values)} at {_rows(bad)}")
    elif col.type == "uscc":
        bad_rows = [(i, why) for i, why in uscc.invalid_rows(s) if not null[i]]
        if bad_rows:
            shown = "; ".join(f"row {i}: {why}" for i, why in bad_rows[:MAX_REPORTED])
            more = f" (and {len(bad_rows) - MAX_REPORTED} more)" if len(bad_rows) > MAX_REPORTED else ""
            problems.append(f"{where}: invalid USCC at {shown}{more}")
    return s


def label_problem(col: Column, s: pd.Series) -> str | None:
    """Why a column cannot serve as this binary label, naming the values found."""
    null = s.isna().to_numpy()
    if null.any():
        return f"label has {int(null.sum())} missing value(s) at {_rows(null)}; every row needs a known outcome"
    found = sorted({canonical(v) for v in s.unique()})
    if len(found) > 2:
        return f"label holds {len(found)} values {found[:MAX_REPORTED]}; a binary label holds two"
    if col.type == "category":
        allowed: set[str] | None = set(col.values)
    elif col.positive is None:
        allowed = {"0", "1"} if col.type == "int" else {"false", "true"}
    else:
        allowed = None  # any two values, one of them the declared positive
    if allowed is not None and not set(found) <= allowed:
        return f"label holds {found}; its schema allows {sorted(allowed)}"
    if allowed is None and len(found) == 2 and col.positive not in found:
        return f"label holds {found}, not its declared positive value {col.positive!r}"
    return None


def _check_label(file: Path, col: Column, s: pd.Series, problems: list[str]) -> None:
    why = label_problem(col, s)
    if why is not None:
        problems.append(f"{file}: column {col.name!r}: {why}")


def label_array(schema: Schema, df: pd.DataFrame, label: str) -> np.ndarray:
    """The label as 0/1, 1 marking the schema's positive class: how every job reads it."""
    col = schema.column(label)
    if col.role != "label":
        raise SpecError(f"dataset {schema.name!r}: column {label!r} is not the label")
    canon = df[label].map(canonical)
    return (canon == col.positive_value).to_numpy().astype("int64")


def load(directory: Path, columns: Sequence[str] | None = None) -> tuple[Schema, pd.DataFrame]:
    """Load and validate a dataset; raise DataError naming every fault found.

    ``columns`` limits the load to the key plus these columns (all others are
    not read at all).
    """
    schema = read_schema(directory)
    file = directory / DATA_FILE
    if not file.is_file():
        raise DataError(f"{file}: data file not found")
    if columns is not None:
        for c in columns:
            schema.column(c)
    try:
        pf = pq.ParquetFile(file)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{file}: not a readable Parquet file ({e})") from None
    present = set(pf.schema_arrow.names)
    wanted = [schema.key, *[c for c in (columns or [c.name for c in schema.columns]) if c != schema.key]]
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DataError(f"{file}: declared column(s) {missing} not in the file")
    if columns is None:
        extra = sorted(present - set(schema.by_name))
        if extra:
            raise DataError(f"{file}: column(s) {extra} are not declared in {SCHEMA_FILE}")
    table = pf.read(columns=wanted)
    df = table.to_pandas()
    problems: list[str] = []
    out = {}
    for name in wanted:
        col = schema.column(name)
        out[name] = _check_column(file, col, df[name], problems)
        if col.role == "label":
            _check_label(file, col, out[name], problems)
    key = df[schema.key]
    dup = key.duplicated(keep=False).to_numpy() & key.notna().to_numpy()
    if dup.any():
        first = key[dup].iloc[0]
        problems.append(f"{file}: column {schema.key!r}: duplicate keys at {_rows(dup)} (e.g. {first})")
    if problems:
        # The full text names rows and values: it stays in this domain.
        raise DataError(
            "\n".join(problems),
            public=f"dataset {schema.name!r} failed validation ({len(problems)} problem(s)); "
            "details are in the owning party's log",
        )
    return schema, pd.DataFrame(out)


def write(directory: Path, schema: Schema, df: pd.DataFrame) -> Fingerprint:
    """Write a dataset atomically: validated in a temp dir, then moved in place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        cols = [c.name for c in schema.columns]
        extra = sorted(set(df.columns) - set(cols))
        if extra:
            raise DataError(f"{directory}: frame has undeclared column(s) {extra}")
        table = pa.Table.from_pandas(df[cols], preserve_index=False)
        pq.write_table(table, tmp / DATA_FILE)
        (tmp / SCHEMA_FILE).write_text(
            yaml.safe_dump(schema.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        load(tmp)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return fingerprint(directory)


def encode_features(schema: Schema, df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Numeric matrix for modelling, computed inside the owner's domain.

    Categories become their ordinal position in the declared level list (the
    catalogue's grades are ordered), booleans 0/1, dates days since epoch;
    missing stays NaN.
    """
    out = {}
    for name in columns:
        col = schema.column(name)
        s = df[name]
        if col.type == "category":
            codes = pd.Categorical(s, categories=list(col.values)).codes.astype("float64")
            codes[codes < 0] = np.nan
            out[name] = codes
        elif col.type == "bool":
            out[name] = s.astype("float64").to_numpy()
        elif col.type == "date":
            out[name] = (s - pd.Timestamp("1970-01-01")).dt.days.astype("float64").to_numpy()
        elif col.type in ("int", "float"):
            out[name] = s.astype("float64").to_numpy()
        else:
            raise SpecError(f"column {name!r} of type {col.type} cannot be a model feature")
    return pd.DataFrame(out, index=df.index)
