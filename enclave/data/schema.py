"""Declared dataset schemas and the validating loader.

Each dataset lives in its own directory inside its owner's domain as
``data.parquet`` beside ``schema.yaml``. Loading checks the file against the
declaration (columns, types, enums, nullability, USCC check characters,
duplicate keys) and names the file, column and row of the first faults found.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from enclave.data import uscc
from enclave.files import sha256_file
from enclave.home import check_name
from protocols.errors import DataError, SpecError
from protocols.messages import Fingerprint

DATA_FILE = "data.parquet"
SCHEMA_FILE = "schema.yaml"
TYPES = ("string", "int", "float", "bool", "date", "category", "uscc")
ROLES = ("key", "label", "feature", "meta")
# How the platform obtains a column (catalogue 共享方式): collected in bulk, or by
# interface call under the firm's authorisation.
ACCESS = ("collected", "interface")
LABEL_TYPES = ("int", "bool", "category")
MAX_REPORTED = 5


def canonical(value: object) -> str:
    """One text per label value however a file spells it: 1, 1.0 and "1" are "1";
    True and "TRUE" are "true"; other text is kept as written (stripped)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


@dataclass(frozen=True)
class Column:
    """One declared column."""

    name: str
    type: str
    role: str = "feature"
    nullable: bool = True
    values: tuple[str, ...] = ()  # category levels, in their natural order
    description: str = ""
    access: str = "collected"
    # The catalogue category (tax, judicial, ...) a platform column comes from.
    category: str = ""
    # For the label: the value that marks the positive class (a default, say).
    positive: str | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise SpecError(f"column {self.name!r}: type {self.type!r} is not one of {TYPES}")
        if self.role not in ROLES:
            raise SpecError(f"column {self.name!r}: role {self.role!r} is not one of {ROLES}")
        if self.access not in ACCESS:
            raise SpecError(f"column {self.name!r}: access {self.access!r} is not one of {ACCESS}")
        if self.type == "category" and not self.values:
            raise SpecError(f"column {self.name!r}: a category column must list its values")
        if self.positive is not None and self.role != "label":
            raise SpecError(f"column {self.name!r}: only the label names a positive value")
        if self.role == "label":
            if self.type not in LABEL_TYPES:
                raise SpecError(f"column {self.name!r}: a label is one of {LABEL_TYPES}, not {self.type!r}")
            if self.type == "category" and (len(self.values) != 2 or self.positive not in self.values):
                raise SpecError(
                    f"column {self.name!r}: a text label lists its two values and names one of them as positive"
                )

    @property
    def positive_value(self) -> str:
        """The canonical text of the positive class (see ``canonical``)."""
        if self.positive is not None:
            return self.positive
        return "true" if self.type == "bool" else "1"


@dataclass(frozen=True)
class Schema:
    """A dataset's declaration: its key column and every other column."""

    name: str
    owner: str
    key: str
    columns: tuple[Column, ...]
    description: str = ""
    by_name: Mapping[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name("dataset", self.name)
        check_name("party", self.owner)
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"schema {self.name!r}: columns declared twice: {dupes}")
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})
        if self.key not in self.by_name:
            raise SpecError(f"schema {self.name!r}: key column {self.key!r} is not declared")

    def column(self, name: str) -> Column:
        if name not in self.by_name:
            raise SpecError(f"dataset {self.name!r} has no column {name!r}")
        return self.by_name[name]

    @property
    def features(self) -> list[str]:
        return [c.name for c in self.columns if c.role == "feature"]

    def to_dict(self) -> dict[str, Any]:
        cols = []
        for c in self.columns:
            d: dict[str, Any] = {"name": c.name, "type": c.type, "role": c.role}
            if not c.nullable:
                d["nullable"] = False
            if c.values:
                d["values"] = list(c.values)
            if c.access != "collected":
                d["access"] = c.access
            if c.category:
                d["category"] = c.category
            if c.positive is not None:
                d["positive"] = c.positive
            if c.description:
                d["description"] = c.description
            cols.append(d)
        return {
            "name": self.name,
            "owner": self.owner,
            "key": self.key,
            "description": self.description,
            "columns": cols,
        }

    @staticmethod
    def from_dict(raw: Any, source: str) -> Schema:
        if not isinstance(raw, dict):
            raise SpecError(f"{source}: expected a mapping at top level")
        for f in ("name", "owner", "key", "columns"):
            if f not in raw:
                raise SpecError(f"{source}: missing field {f!r}")
        if not isinstance(raw["columns"], list) or not raw["columns"]:
            raise SpecError(f"{source}: 'columns' must be a non-empty list")
        cols = []
        for i, c in enumerate(raw["columns"]):
            if not isinstance(c, dict) or "name" not in c or "type" not in c:
                raise SpecError(f"{source}: columns[{i}] needs 'name' and 'type'")
            unknown = set(c) - {
                "name",
                "type",
                "role",
                "nullable",
                "values",
                "description",
                "access",
                "category",
                "positive",
            }
            if unknown:
                raise SpecError(f"{source}: columns[{i}] ({c['name']}) has unknown fields {sorted(unknown)}")
            try:
                cols.append(
                    Column(
                        name=str(c["name"]),
                        type=str(c["type"]),
                        role=str(c.get("role", "feature")),
                        nullable=bool(c.get("nullable", True)),
                        values=tuple(str(v) for v in c.get("values", ()) or ()),
                        description=str(c.get("description", "")),
                        access=str(c.get("access", "collected")),
                        category=str(c.get("category", "")),
                        positive=None if c.get("positive") is None else canonical(c["positive"]),
                    )
                )
            except SpecError as e:
                raise SpecError(f"{source}: {e}") from None
        try:
            return Schema(
                name=str(raw["name"]),
                owner=str(raw["owner"]),
                key=str(raw["key"]),
                columns=tuple(cols),
                description=str(raw.get("description", "")),
            )
        except SpecError as e:
            raise SpecError(f"{source}: {e}") from None


def read_schema(directory: Path) -> Schema:
    path = directory / SCHEMA_FILE
    if not path.is_file():
        raise DataError(f"{path}: schema file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    return Schema.from_dict(raw, str(path))


def fingerprint(directory: Path) -> Fingerprint:
    schema = read_schema(directory)
    data = directory / DATA_FILE
    if not data.is_file():
        raise DataError(f"{data}: data file not found")
    meta = pq.read_metadata(data)
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
