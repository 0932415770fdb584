"""A seeded mutation fuzzer for job specs and data files, through the CLI and a real node.

Specs are mutated both as documents (keys dropped, renamed or added; values
replaced by values of every wrong kind; columns duplicated or moved across
parties) and as text (truncated, corrupted bytes). Tables are mutated as data
(missing, duplicated or invalid keys; text in numbers; bad labels; odd column
names; extreme values) and as files (empty, truncated, corrupted, wrong
encoding), half CSV and half Parquet.

Every case must end in one of two ways: accepted, or a one-line error that
names the file (and, for specs, the field) at fault. A traceback, an error
without that name, an INTERNAL error from a node, or a node that stops
answering is counted as a failure. ``tests/test_fuzz_multiparty.py`` asserts
the counts; ``benchmarks/fuzz.py`` prints them.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import io
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from parties import cli
from parties.transport import NodeService
from protocols.constants import JobState
from protocols.errors import ErrorCode, SafehouseError

JUNK: tuple[Any, ...] = (None, -1, 0, 10**12, 1.5, float("nan"), "", "x" * 300, "../../etc/passwd", [], {}, True,
                         ["a", 1], {"k": "v"}, "数据", "*", "uscc", 1e308)  # fmt: skip


@dataclass
class Counts:
    cases: int = 0
    accepted: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def tracebacks(self) -> int:
        return sum("traceback" in f for f in self.failures)

    def as_dict(self, prefix: str) -> dict[str, Any]:
        return {f"{prefix}_cases": self.cases, f"{prefix}_accepted": self.accepted,
                f"{prefix}_refused": self.refused, f"{prefix}_failures": len(self.failures),
                f"{prefix}_tracebacks": self.tracebacks}  # fmt: skip


def run_cli(argv: list[str]) -> tuple[int, str]:
    """The CLI in this process, as a user's shell would run it: exit code and stderr."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse's own usage errors
            code = int(e.code or 0)
        except BaseException as e:  # a traceback a user would have seen
            return -1, f"traceback: {type(e).__name__}: {e}"
    return code, err.getvalue()


def judge_cli(counts: Counts, code: int, stderr: str, must_name: str, what: str) -> None:
    counts.cases += 1
    lines = [line for line in stderr.splitlines() if line.startswith("safehouse: error:")]
    if code == 0:
        counts.accepted += 1
    elif code == 2 and len(lines) == 1 and must_name in lines[0] and "Traceback" not in stderr:
        counts.refused += 1
    else:
        counts.failures.append(f"{what}: exit {code}: {'traceback ' if code == -1 else ''}{stderr[-400:]!r}")


# -- specs -------------------------------------------------------------------------


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _parent(doc: Any, path: tuple[Any, ...]) -> tuple[Any, Any]:
    node = doc
    for k in path[:-1]:
        node = node[k]
    return node, path[-1]


def _mutate_doc(doc: dict[str, Any], rng: random.Random) -> str:
    paths = [p for p in _paths(doc) if p]
    path = rng.choice(paths)
    parent, key = _parent(doc, path)
    kind = rng.randrange(6)
    if kind == 0 and isinstance(parent, dict):
        del parent[key]
        return f"dropped {'.'.join(map(str, path))}"
    if kind == 1 and isinstance(parent, dict):
        parent[f"{key}_x"] = parent.pop(key)
        return f"renamed {'.'.join(map(str, path))}"
    if kind == 2:
        containers = [p for p in _paths(doc) if isinstance(_get(doc, p), dict)]
        _get(doc, rng.choice(containers))[rng.choice(["colour", "extra", "models", "endpoint"])] = rng.choice(JUNK)
        return "added a key"
    if kind == 3:
        # An earlier mutation may have dropped or replaced the feature lists.
        feats = [p for p in paths if p[-1] == "features" and isinstance(_get(doc, p), list)]
        if feats:
            src, dst = rng.choice(feats), rng.choice(feats)
            if _get(doc, src):
                _get(doc, dst).append(rng.choice(_get(doc, src)))
            return "duplicated or moved a feature"
    parent[key] = copy.deepcopy(rng.choice(JUNK))
    return f"set {'.'.join(map(str, path))}"


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def mutated_specs(base: dict[str, Any], n: int, seed: int) -> Iterator[tuple[bytes, str]]:
    """``n`` mutated spec files (bytes) with what was done to each."""
    rng = random.Random(seed)
    for _ in range(n):
        doc = copy.deepcopy(base)
        done = [_mutate_doc(doc, rng) for _ in range(rng.randint(1, 3))]
        text = yaml.safe_dump(doc, allow_unicode=True).encode()
        r = rng.random()
        if r < 0.1:
            text = text[: rng.randrange(len(text))]
            done.append("truncated")
        elif r < 0.15:
            pos = rng.randrange(len(text))
            text = text[:pos] + bytes([rng.randrange(256)]) + text[pos + 1 :]
            done.append("corrupted a byte")
        elif r < 0.17:
            text, done = rng.choice([b"", b"\x00\xff\xfe garbage", b"- just\n- a list\n"]), ["not a spec"]
        yield text, "; ".join(done)


# -- tables ------------------------------------------------------------------------

Mutation = Callable[[pd.DataFrame, random.Random, str, str], pd.DataFrame]


def _rows(df: pd.DataFrame, rng: random.Random) -> list[int]:
    return rng.sample(range(len(df)), k=rng.randint(1, max(1, len(df) // 10)))


def _table_mutations() -> list[Mutation]:
    def drop(df: pd.DataFrame, rng: random.Random, key: str, label: str) -> pd.DataFrame:
        return df.drop(columns=[rng.choice([key, label, *df.columns])])

    def keys(df: pd.DataFrame, rng: random.Random, key: str, label: str) -> pd.DataFrame:
        df = df.copy()
        rows = _rows(df, rng)
        df.loc[rows, key] = rng.choice([None, "", "91410100ABCDEFGHIJ", df[key].iloc[0], "x"])
        return df

    def numbers(df: pd.DataFrame, rng: random.Random, key: str, label: str) -> pd.DataFrame:
        df = df.copy().astype({c: object for c in df.columns})
        col = rng.choice([c for c in df.columns if c != key])
        df.loc[_rows(df, rng), col] = rng.choice(["many", "1,5", "inf", "-", 1e308, -1e308, "NaN", "٣", True])
        return df

    def labels(df: pd.DataFrame, rng: random.Random, key: str, label: str) -> pd.DataFrame:
        df = df.copy().astype({label: object})
        df.loc[_rows(df, rng), label] = rng.choice([2, "bad", None, -1, "0.5"])
        return df

    def names(df: pd.DataFrame, rng: random.Random, key: str, label: str) -> pd.DataFrame:
        df = df.copy()
        df[rng.choice(["", " ", "a,b", "列", "\n", "Unnamed: 0"])] = 1
        return df.rename(columns={rng.choice(list(df.columns)): rng.choice(["", "x" * 500, "dup"])})

    def shape(df: pd.DataFrame, rng: random.Random, key: str, label: str) -> pd.DataFrame:
        return df.head(rng.choice([0, 1, 2])) if rng.random() < 0.5 else pd.concat([df, df])

    return [drop, keys, numbers, labels, names, shape]


def _as_file(df: pd.DataFrame, parquet: bool, rng: random.Random) -> tuple[bytes, str]:
    # Parquet cannot hold two columns of one name, so such a frame goes out as CSV.
    if parquet and not df.columns.duplicated().any():
        buf = io.BytesIO()
        text_cols = {c: str for c, t in zip(df.columns, df.dtypes, strict=True) if pd.api.types.is_object_dtype(t)}
        pq.write_table(pa.Table.from_pandas(df.astype(text_cols), preserve_index=False), buf)
        return buf.getvalue(), ".parquet"
    text = df.to_csv(index=False).encode()
    if rng.random() < 0.3:
        return gzip.compress(text), ".csv.gz"
    return text, ".csv"


def _damage(data: bytes, rng: random.Random) -> bytes:
    r = rng.randrange(5)
    if r == 0:
        return b""
    if r == 1:
        return data[: rng.randrange(max(1, len(data)))]
    if r == 2:
        pos = rng.randrange(max(1, len(data)))
        return data[:pos] + bytes(rng.randrange(256) for _ in range(16)) + data[pos + 16 :]
    if r == 3:
        return "\ufeff".encode() + data if not data.startswith(b"PAR1") else data[::-1]
    return bytes(rng.randrange(256) for _ in range(200))


def mutated_tables(base: pd.DataFrame, key: str, label: str, n: int, seed: int) -> Iterator[tuple[bytes, str, str]]:
    """``n`` mutated table files: (content, suffix, what was done), half Parquet."""
    rng = random.Random(seed)
    mutations = _table_mutations()
    for i in range(n):
        parquet = i % 2 == 1
        df, done = base, []
        for _ in range(rng.randint(1, 2)):
            m = rng.choice(mutations)
            with contextlib.suppress(Exception):  # a mutation that cannot apply leaves the frame as it was
                df = m(df, rng, key, label)
                done.append(m.__name__)
        data, suffix = _as_file(df, parquet, rng)
        if rng.random() < 0.25:
            data = _damage(data, rng)
            done.append("damaged file")
        yield data, suffix, "; ".join(done) or "none"


def prepare_on_node(counts: Counts, node: NodeService, job_id: str, spec_text: str, what: str) -> None:
    """Prepare at a real node: accepted (then cancelled, nothing runs), or refused with a code that
    is not INTERNAL."""
    counts.cases += 1
    try:
        node.prepare(job_id, spec_text)
    except SafehouseError as e:
        if e.code in (ErrorCode.INTERNAL, ErrorCode.UNAVAILABLE):
            counts.failures.append(f"{what}: node answered {e.code.value}: {e}")
        else:
            counts.refused += 1
        return
    counts.accepted += 1
    node.conclude(job_id, JobState.CANCELLED, "fuzz case accepted; nothing to run")
