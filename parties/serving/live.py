"""What a scoring service reads from its party's home, re-read when the files change.

Public records change (that is why the platform reads its table afresh for
every batch job), so a long-lived service checks the files' size and
modification time on every call (a ``stat``, microseconds) and reloads when
they differ. A reload that fails (a file caught mid-replace, a bad edit) keeps
the last good value and logs why; the service stays up. Consent books also
change with time alone: the authorised set is recomputed when the next
authorisation starts or expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import pandas as pd

from enclave.controls import consent, policy
from enclave.data import dataset
from enclave.data import schema as sch
from protocols.errors import DataError, SafehouseError

log = logging.getLogger("safehouse.serving")
T = TypeVar("T")


def _stamp(path: Path) -> tuple[int, int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Watched(Generic[T]):
    """A value loaded from ``paths`` by ``load``, loaded again when any of them changes."""

    def __init__(self, what: str, paths: Sequence[Path], load: Callable[[], T]) -> None:
        self.what, self.paths, self._load = what, tuple(paths), load
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[int, int, int], ...] | None = None
        self._value: T | None = None

    def get(self) -> T:
        stamp = tuple(_stamp(p) for p in self.paths)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._reload(stamp)
        if self._value is None:
            raise DataError(f"{self.what} could not be loaded; see the service's log")
        return self._value

    def _reload(self, stamp: tuple[tuple[int, int, int], ...]) -> None:
        try:
            value = self._load()
        except (SafehouseError, OSError, ValueError) as e:
            log.warning("%s: keeping the last good copy; reload failed: %s", self.what, e)
            # Not retried on every call: the next change of the files triggers the next try.
            self._stamp = stamp
            return
        first = self._value is None
        self._value, self._stamp = value, stamp
        log.info("%s %s", self.what, "loaded" if first else "reloaded (its files changed)")


@dataclass(frozen=True)
class Table:
    """A party's features for its firms, encoded as its models take them, indexed by firm code."""

    schema: sch.Schema
    x: pd.DataFrame
    gated: tuple[str, ...]  # features that need the firm's authorisation

    def missing_row(self) -> pd.DataFrame:
        return pd.DataFrame([[np.nan] * self.x.shape[1]], columns=self.x.columns)


def load_table(directory: Path, features: Sequence[str]) -> Table:
    schema, frame = dataset.load(directory, list(features))
    x = dataset.encode_features(schema, frame, list(features))
    x.index = pd.Index(frame[schema.key].astype(str), name=schema.key)
    return Table(schema, x, tuple(consent.gated_columns(schema, features)))


def table_files(directory: Path) -> list[Path]:
    return [directory / dataset.DATA_FILE, directory / sch.SCHEMA_FILE]


def table(directory: Path, features: Sequence[str]) -> Watched[Table]:
    return Watched(f"dataset {directory.name!r}", table_files(directory), lambda: load_table(directory, features))


def party_policy(party_root: Path, party: str) -> Watched[policy.Policy]:
    return Watched(f"policy of {party!r}", [party_root / policy.POLICY_FILE], lambda: policy.load(party_root, party))


class Consent:
    """Which firms authorised a grantee for a purpose, now: cached until the book or the time says otherwise."""

    def __init__(self, party_root: Path, trust_dir: Path) -> None:
        book = party_root / consent.CONSENT_DIR
        self.book = Watched("consent book", [book / consent.GRANTS, book / consent.REVOCATIONS, trust_dir],
                            lambda: consent.ConsentBook.load(party_root, trust_dir))  # fmt: skip
        self._cache: dict[tuple[str, str], tuple[consent.ConsentBook, dt.datetime | None, set[str]]] = {}
        self._lock = threading.Lock()

    def authorised(self, code: str, grantee: str, purpose: str) -> bool:
        book, now = self.book.get(), dt.datetime.now(dt.UTC)
        with self._lock:
            cached = self._cache.get((grantee, purpose))
            if cached is None or cached[0] is not book or (cached[1] is not None and now >= cached[1]):
                cached = (book, book.next_change(grantee, purpose, now), book.authorised(grantee, purpose, now))
                self._cache[(grantee, purpose)] = cached
        return code in cached[2]
