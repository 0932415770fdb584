"""Bring your own data: import any CSV/Parquet table into one party's domain,
and split one table into per-party datasets for evaluation.

Import infers a reviewable schema (or takes a given one): numeric, boolean,
date and string-category columns, missing values, the key. Constant columns
and likely ID columns are kept out of the features with a warning. Duplicate
keys are an error unless ``on_duplicate`` says how to resolve them. Every error
names the file, column and row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from enclave import policy, uscc
from enclave import schema as sch
from enclave.config import Home, check_name
from enclave.errors import DataError, SpecError
from enclave.schema import Column, Fingerprint, Schema

MAX_LEVELS = 50
NA_TOKENS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?", "-"]
DUPLICATE_RULES = ("error", "first", "last", "drop")
_ID_NAME = re.compile(r"(^|[_\s.])(id|no|number|编号|代码)$|^unnamed|^index$|^id[_\s.]", re.IGNORECASE)
Warn = Callable[[str], None]


def _collector(warn: Warn) -> tuple[list[str], Warn]:
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
    except (pa.ArrowInvalid, OSError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    raise DataError(f"{path}: unsupported file type (use .csv, .csv.gz, .tsv or .parquet)")


def _integral(v: pd.Series) -> bool:
    x = v.dropna().to_numpy(dtype="float64")
    return bool(len(x) == 0 or np.all(np.floor(x) == x))


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


def infer_schema(
    df: pd.DataFrame, name: str, owner: str, key: str, label: str | None, where: str, warn: Warn
) -> Schema:
    if key not in df.columns:
        raise DataError(f"{where}: key column {key!r} not in the file (columns: {list(df.columns)[:12]}…)")
    keys = df[key].dropna().astype(str)
    key_type = "uscc" if len(keys) and all(uscc.is_valid(k) for k in keys) else "string"
    cols = [Column(key, key_type, role="key", nullable=False)]
    for c in df.columns:
        if c == key:
            continue
        if c == label:
            raw = df[c].dropna()
            num = pd.to_numeric(raw, errors="coerce")
            if num.isna().any() or not set(num.unique()) <= {0, 1}:
                found = sorted({str(v) for v in raw.unique()})[:5]
                raise DataError(f"{where}: label column {c!r} must hold 0/1, found {found}")
            cols.append(Column(c, "int", role="label", nullable=False))
            continue
        cols.append(infer_column(str(c), df[c], warn, where))
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
                frac = num.notna() & (np.floor(num) != num)
                if frac.any():
                    problems.append(f"{where}: column {c.name!r}: non-integer values at row(s) "
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
    warn: Warn = lambda m: None,
) -> ImportReport:  # fmt: skip
    check_name("party", party)
    check_name("dataset", dataset)
    warnings, note = _collector(warn)
    if key not in df.columns:
        raise DataError(f"{where}: key column {key!r} not in the file")
    df, resolved = resolve_duplicates(df, key, on_duplicate, where, note)
    if schema is None:
        schema = infer_schema(df, dataset, party, key, label, where, note)
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
    fp = sch.write(home.party(party).dataset_dir(dataset), schema, frame)
    return ImportReport(schema, fp, tuple(warnings), resolved)


def import_file(
    path: Path, home: Home, party: str, dataset: str, key: str, label: str | None = None,
    schema_file: Path | None = None, on_duplicate: str = "error", warn: Warn = lambda m: None,
) -> ImportReport:  # fmt: skip
    df = read_table(path)
    schema = None
    if schema_file is not None:
        try:
            raw = yaml.safe_load(schema_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise SpecError(f"{schema_file}: cannot read schema: {e}") from None
        schema = Schema.from_dict(raw, str(schema_file))
    return import_frame(df, str(path), home, party, dataset, key, label, schema, on_duplicate, warn)


def review_schema(path: Path, party: str, dataset: str, key: str, label: str | None, warn: Warn) -> str:
    """The schema import would infer, as YAML to review and edit."""
    df = read_table(path)
    schema = infer_schema(df, dataset, party, key, label, str(path), warn)
    return yaml.safe_dump(schema.to_dict(), allow_unicode=True, sort_keys=False)


def grant_job(home: Home, party: str, dataset: str, partner: str, outputs: Sequence[str] | str = "*") -> None:
    """Add a one-year grant for ``partner`` over ``dataset`` to the party's policy."""
    import datetime as dt

    root = home.party(party).root
    path = root / policy.POLICY_FILE
    doc: dict[str, Any] = (
        yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {"min_cell_size": 10, "grants": []}
    )
    grants: list[dict[str, Any]] = list(doc.get("grants") or [])
    # Replace an earlier grant for the same dataset and partner instead of piling them up.
    grants = [g for g in grants if g.get("datasets") != {dataset: "*"} or g.get("partners") != [partner]]
    doc["grants"] = grants
    grants.append({
        "partners": [partner], "job_types": ["joint_train"], "purposes": ["credit_risk_model"],
        "datasets": {dataset: "*"}, "outputs": outputs if isinstance(outputs, str) else list(outputs),
        "expires": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
    })  # fmt: skip
    policy.parse(doc, party, str(path))
    policy.write(root, doc)


@dataclass(frozen=True)
class SplitReport:
    spec_path: Path
    dataset: str
    imports: dict[str, ImportReport]
    warnings: tuple[str, ...]


def dataset_name(path: Path) -> str:
    stem = path.name.split(".")[0].lower()
    name = re.sub(r"[^a-z0-9_-]+", "_", stem).strip("_-")[:40] or "dataset"
    return name if name[0].isalpha() else f"d{name}"[:40]


def split_file(
    path: Path, home: Home, label: str, bank_columns: Sequence[str], out_dir: Path, *,
    key: str | None = None, name: str | None = None, keep: float = 0.95, seed: int = 7,
    sample: int | None = None, bank: str = "bank", platform: str = "platform",
    trees: int = 25, depth: int = 4, on_duplicate: str = "error", warn: Warn = lambda m: None,
) -> SplitReport:  # fmt: skip
    """One table -> a bank dataset (key, label, ``bank_columns``) and a platform
    dataset (key, the rest), each shuffled on its own with some rows at one side
    only, imported into the parties' domains, plus a ready ``job.yaml``."""
    from enclave.jobspec import parse

    where = str(path)
    df = read_table(path)
    warnings, note = _collector(warn)
    if label not in df.columns:
        raise DataError(f"{where}: label column {label!r} not in the file")
    missing = [c for c in bank_columns if c not in df.columns]
    if missing:
        raise DataError(f"{where}: bank column(s) {missing} not in the file")
    if label in bank_columns:
        raise SpecError(f"--bank-columns: the label {label!r} goes to the bank anyway; do not list it")
    if not 0.5 <= keep <= 1.0:
        raise SpecError(f"keep must be between 0.5 and 1.0, got {keep}")
    if sample is not None and sample < len(df):
        df = df.sample(n=sample, random_state=seed).reset_index(drop=True)
    if key is None:
        key = "uscc"
        if key in df.columns:
            raise DataError(f"{where}: has a column named 'uscc'; pass --key to use it")
        # A synthetic but valid unified social credit code per row.
        df.insert(0, key, [uscc.from_index(i) for i in range(len(df))])
    elif key not in df.columns:
        raise DataError(f"{where}: key column {key!r} not in the file")
    name = check_name("dataset", name or dataset_name(path))
    rest = [c for c in df.columns if c not in (key, label, *bank_columns)]
    rng = np.random.default_rng(seed)
    n_keep = round(keep * len(df))
    sides = {
        bank: df.iloc[rng.permutation(len(df))[:n_keep]][[key, label, *bank_columns]].reset_index(drop=True),
        platform: df.iloc[rng.permutation(len(df))[:n_keep]][[key, *rest]].reset_index(drop=True),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    imports = {}
    for party, frame in sides.items():
        file = out_dir / f"{party}.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), file)
        imports[party] = import_frame(frame, str(file), home, party, name, key,
                                      label if party == bank else None, None, on_duplicate, note)  # fmt: skip
    grant_job(home, platform, name, bank, ["metrics", "plots", "model_manifest", "score_bands"])
    grant_job(home, bank, name, platform)
    spec = parse(
        {
            "name": name[:24].rstrip("_-") or "job",
            "key": key,
            "parties": {p: {"dataset": name, "features": imports[p].schema.features} for p in (platform, bank)},
            "label": {"party": bank, "column": label},
            "split": {"test_fraction": 0.3, "seed": seed},
            "models": {"sgb": {"num_boost_round": trees, "max_depth": depth, "learning_rate": 0.15, "sketch_eps": 0.04},
                       "sslr": {"epochs": 8, "learning_rate": 0.2, "batch_size": 1024}, "bank_only": {}},
            "reference": {"pooled": True},
            "deployment": "local",
        },
        f"{out_dir / 'job.yaml'}",
    )  # fmt: skip
    spec_path = out_dir / "job.yaml"
    spec_path.write_text(spec.to_yaml(), encoding="utf-8")
    return SplitReport(spec_path, name, imports, tuple(warnings))
