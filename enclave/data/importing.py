"""Bring your own data: import any CSV/Parquet table into one party's domain.

Import infers a reviewable schema (or takes a given one): numeric, boolean,
date and string-category columns, missing values, the key, and a binary label
in any two-valued form (0/1 and true/false as they are; any other pair with
the positive value named). Constant columns and likely ID columns are kept out
of the features with a warning. Duplicate keys are an error unless
``on_duplicate`` says how to resolve them. Every error names the file, column
and row; nothing is half-written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from enclave.data import dataset as datasets
from enclave.data import uscc
from enclave.data.schema import Column, Schema, canonical
from enclave.home import Home, check_name
from protocols.errors import DataError, SpecError
from protocols.messages import Fingerprint

MAX_LEVELS = 50
NA_TOKENS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?", "-"]
DUPLICATE_RULES = ("error", "first", "last", "drop")
_ID_NAME = re.compile(r"(^|[_\s.])(id|no|number|编号|代码)$|^unnamed|^index$|^id[_\s.]", re.IGNORECASE)
Warn = Callable[[str], None]


def collector(warn: Warn) -> tuple[list[str], Warn]:
    """Keep warnings for the report while passing each on as it happens."""
    kept: list[str] = []

    def note(msg: str) -> None:
        kept.append(msg)
        warn(msg)

    return kept, note


@dataclass(frozen=True)
class ImportReport:
    schema: Schema
    fingerprint: Fingerprint
    warnings: tuple[str, ...]
    duplicates_resolved: int


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (optionally gzipped) or Parquet file, with common NA tokens as missing."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pq.read_table(path).to_pandas()
        if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
            sep = "\t" if name.endswith(".tsv") else ","
            return pd.read_csv(path, sep=sep, na_values=NA_TOKENS, keep_default_na=True, low_memory=False)
    # ValueError covers pandas' parser and empty-file errors and bad text encodings;
    # EOFError a gzip stream cut short.
    except (pa.ArrowException, OSError, EOFError, ValueError) as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    raise DataError(f"{path}: unsupported file type (use .csv, .csv.gz, .tsv or .parquet)")


# Integers beyond 2**53 are not exact in float64 and do not fit Int64 safely.
_INT_LIMIT = 2.0**53


def _integral(v: pd.Series) -> bool:
    x = v.dropna().to_numpy(dtype="float64")
    return bool(len(x) == 0 or (np.all(np.floor(x) == x) and np.all(np.abs(x) < _INT_LIMIT)))


def likely_id(name: str, s: pd.Series) -> bool:
    if _ID_NAME.search(name.strip()) or name.strip() == "":
        return True
    nonnull = s.dropna()
    if len(nonnull) < 20 or not nonnull.is_unique:
        return False
    if pd.api.types.is_numeric_dtype(nonnull) and _integral(nonnull):
        return bool(nonnull.is_monotonic_increasing or nonnull.is_monotonic_decreasing)
    return pd.api.types.is_object_dtype(nonnull)


def infer_column(name: str, s: pd.Series, warn: Warn, where: str) -> Column:
    nonnull = s.dropna()
    if nonnull.empty:
        warn(f"{where}: column {name!r} holds no values; kept out of the features")
        return Column(name, "string", role="meta")
    if pd.api.types.is_bool_dtype(s):
        col = Column(name, "bool")
    elif pd.api.types.is_numeric_dtype(s):
        col = Column(name, "int" if _integral(s) else "float")
    elif pd.api.types.is_datetime64_any_dtype(s):
        col = Column(name, "date")
    else:
        as_num = pd.to_numeric(nonnull, errors="coerce")
        if len(nonnull) and as_num.notna().all():
            col = Column(name, "int" if _integral(as_num) else "float")
        else:
            levels = sorted({str(v) for v in nonnull})
            if len(levels) <= MAX_LEVELS:
                col = Column(name, "category", values=tuple(levels))
            else:
                col = Column(name, "string", role="meta")
                warn(f"{where}: column {name!r}: {len(levels)} distinct strings; kept as text, not a feature")
    if col.role == "feature" and nonnull.nunique() <= 1:
        warn(f"{where}: column {name!r} is constant; kept out of the features")
        return Column(col.name, col.type, role="meta", values=col.values)
    if col.role == "feature" and likely_id(name, s):
        warn(f"{where}: column {name!r} looks like an ID; kept out of the features (edit the schema to use it)")
        return Column(col.name, col.type, role="meta", values=col.values)
    return col


def label_column(name: str, s: pd.Series, positive: str | None, where: str) -> Column:
    """The label's declaration: 0/1 and true/false need no flag; any other pair
    needs ``positive`` naming the positive class. Missing values, one value or
    more than two get errors of their own."""
    null = s.isna().to_numpy()
    if null.any():
        rows = list(np.flatnonzero(null)[:5])
        raise DataError(f"{where}: label column {name!r} has {int(null.sum())} missing value(s), e.g. at "
                        f"row(s) {rows}; every row of the label owner needs a known outcome")  # fmt: skip
    found = sorted({canonical(v) for v in s.unique()})
    if len(found) > 2:
        raise DataError(f"{where}: label column {name!r} holds {len(found)} distinct values {found[:6]}; "
                        "a binary label holds exactly two")  # fmt: skip
    if len(found) < 2:
        raise DataError(f"{where}: label column {name!r} holds one value only {found}; both classes are needed")
    numeric = all(_is_integer_text(v) for v in found)
    if positive is None:
        if set(found) == {"0", "1"}:
            return Column(name, "int", role="label", nullable=False)
        if set(found) == {"false", "true"}:
            return Column(name, "bool", role="label", nullable=False)
        raise DataError(f"{where}: label column {name!r} holds the two values {found}, not 0/1 or true/false; "
                        f"name the positive class with --positive VALUE (e.g. --positive {found[0]})")  # fmt: skip
    pos = canonical(positive)
    if pos not in found:
        raise DataError(f"{where}: --positive {positive!r} is not a value of label column {name!r}; it holds {found}")
    if numeric:
        return Column(name, "int", role="label", nullable=False, positive=pos)
    if set(found) == {"false", "true"}:
        return Column(name, "bool", role="label", nullable=False, positive=pos)
    negative = next(v for v in found if v != pos)
    return Column(name, "category", role="label", nullable=False, values=(negative, pos), positive=pos)


def _is_integer_text(v: str) -> bool:
    return v.lstrip("-").isdigit()


def infer_schema(
    df: pd.DataFrame, name: str, owner: str, key: str, label: str | None, where: str, warn: Warn,
    positive: str | None = None,
) -> Schema:  # fmt: skip
    if key not in df.columns:
        raise DataError(f"{where}: key column {key!r} not in the file (columns: {list(df.columns)[:12]}…)")
    keys = df[key].dropna().astype(str)
    key_type = "uscc" if len(keys) and all(uscc.is_valid(k) for k in keys) else "string"
    cols = [Column(key, key_type, role="key", nullable=False)]
    for c in df.columns:
        if c == key:
            continue
        try:
            if c == label:
                cols.append(label_column(str(c), df[c], positive, where))
            else:
                cols.append(infer_column(str(c), df[c], warn, where))
        except SpecError as e:
            raise DataError(f"{where}: {e}") from None
    return Schema(name=name, owner=owner, key=key, columns=tuple(cols), description=f"imported from {where}")


_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False, "1.0": True, "0.0": False}


def _as_bool(v: object) -> object:
    if isinstance(v, bool) or pd.isna(v):
        return v
    return _BOOLS.get(str(v).strip().lower(), "?")


def coerce(df: pd.DataFrame, schema: Schema, where: str) -> pd.DataFrame:
    """Cast a source frame to the schema's types, naming file, column and row of any value that will not fit."""
    missing = [c.name for c in schema.columns if c.name not in df.columns]
    if missing:
        raise DataError(f"{where}: declared column(s) {missing} not in the file")
    out = {}
    problems = []
    for c in schema.columns:
        s = df[c.name]
        if c.type in ("int", "float"):
            num = pd.to_numeric(s, errors="coerce")
            bad = num.isna() & s.notna()
            if bad.any():
                rows = list(np.flatnonzero(bad.to_numpy())[:5])
                problems.append(f"{where}: column {c.name!r}: non-numeric values {sorted(set(s[bad].astype(str)))[:3]} "
                                f"at row(s) {rows}")  # fmt: skip
                continue
            if c.type == "int":
                frac = num.notna() & ((np.floor(num) != num) | (num.abs() >= _INT_LIMIT))
                if frac.any():
                    problems.append(f"{where}: column {c.name!r}: non-integer or out-of-range values at row(s) "
                                    f"{list(np.flatnonzero(frac.to_numpy())[:5])}")  # fmt: skip
                    continue
                out[c.name] = num.astype("Int64")
            else:
                out[c.name] = num.astype("float64")
        elif c.type == "bool":
            conv = s.map(_as_bool)
            bad = conv.astype(str) == "?"
            if bad.any():
                problems.append(f"{where}: column {c.name!r}: not booleans at row(s) {list(np.flatnonzero(bad)[:5])}")
                continue
            out[c.name] = pd.array(conv.where(conv.notna(), None).tolist(), dtype="boolean")
        elif c.type == "date":
            out[c.name] = pd.to_datetime(s, errors="coerce")
        elif c.role == "label" and c.type == "category":
            out[c.name] = s.map(lambda v: v if pd.isna(v) else canonical(v))
        else:
            out[c.name] = s.map(
                lambda v: v if pd.isna(v) else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
            )
    if problems:
        raise DataError("\n".join(problems), public=f"{where}: {len(problems)} column(s) do not fit the schema")
    return pd.DataFrame(out, index=df.index)


def resolve_duplicates(df: pd.DataFrame, key: str, rule: str, where: str, warn: Warn) -> tuple[pd.DataFrame, int]:
    if rule not in DUPLICATE_RULES:
        raise SpecError(f"on_duplicate must be one of {list(DUPLICATE_RULES)}, got {rule!r}")
    nulls = df[key].isna().to_numpy()
    if nulls.any():
        raise DataError(f"{where}: column {key!r}: missing keys at row(s) {list(np.flatnonzero(nulls)[:5])}")
    dup = df[key].duplicated(keep=False).to_numpy()
    if not dup.any():
        return df, 0
    rows = list(np.flatnonzero(dup)[:6])
    if rule == "error":
        raise DataError(
            f"{where}: column {key!r}: {int(dup.sum())} rows share a key, e.g. row(s) {rows}; "
            "choose --on-duplicate first|last|drop to resolve",
            public=f"{where}: duplicate keys in column {key!r}",
        )
    kept = df[~dup] if rule == "drop" else df.drop_duplicates(subset=[key], keep=rule)
    warn(f"{where}: column {key!r}: {len(df) - len(kept)} duplicate-key rows removed (keep={rule})")
    return kept.reset_index(drop=True), len(df) - len(kept)


def import_frame(
    df: pd.DataFrame, where: str, home: Home, party: str, dataset: str, key: str,
    label: str | None = None, schema: Schema | None = None, on_duplicate: str = "error",
    warn: Warn = lambda m: None, positive: str | None = None,
) -> ImportReport:  # fmt: skip
    check_name("party", party)
    check_name("dataset", dataset)
    warnings, note = collector(warn)
    if key not in df.columns:
        raise DataError(f"{where}: key column {key!r} not in the file")
    df, resolved = resolve_duplicates(df, key, on_duplicate, where, note)
    if schema is None:
        schema = infer_schema(df, dataset, party, key, label, where, note, positive)
    else:
        if schema.key != key:
            raise SpecError(f"given schema is keyed by {schema.key!r}, not {key!r}")
        for c in schema.features:
            if likely_id(c, df[c]) if c in df.columns else False:
                note(f"{where}: column {c!r} looks like an ID but is a feature in the given schema")
        schema = Schema(dataset, party, key, schema.columns, schema.description)
    extra = [c for c in df.columns if c not in schema.by_name]
    if extra:
        note(f"{where}: column(s) {extra} are not in the schema and were not imported")
    frame = coerce(df, schema, where)
    fp = datasets.write(home.party(party).dataset_dir(dataset), schema, frame)
    return ImportReport(schema, fp, tuple(warnings), resolved)


def import_file(
    path: Path, home: Home, party: str, dataset: str, key: str, label: str | None = None,
    schema_file: Path | None = None, on_duplicate: str = "error", warn: Warn = lambda m: None,
    positive: str | None = None,
) -> ImportReport:  # fmt: skip
    df = read_table(path)
    schema = None
    if schema_file is not None:
        try:
            raw = yaml.safe_load(schema_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise SpecError(f"{schema_file}: cannot read schema: {e}") from None
        schema = Schema.from_dict(raw, str(schema_file))
    return import_frame(df, str(path), home, party, dataset, key, label, schema, on_duplicate, warn, positive)


def review_schema(
    path: Path, party: str, dataset: str, key: str, label: str | None, warn: Warn, positive: str | None = None
) -> str:
    """The schema import would infer, as YAML to review and edit."""
    df = read_table(path)
    schema = infer_schema(df, dataset, party, key, label, str(path), warn, positive)
    return yaml.safe_dump(schema.to_dict(), allow_unicode=True, sort_keys=False)


def dataset_name(path: Path) -> str:
    stem = path.name.split(".")[0].lower()
    name = re.sub(r"[^a-z0-9_-]+", "_", stem).strip("_-")[:40] or "dataset"
    return name if name[0].isalpha() else f"d{name}"[:40]
