"""Durable job records for the node and the coordinator: one interface, two back ends.

A record is a frozen dataclass with a ``job_id`` and a JSON form. ``FileStore``
keeps one JSON file per job, written atomically, and reads them all back when a
role starts; ``MemoryStore`` keeps them in memory for unit tests. The same
contract tests run against both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from enclave.files import write_atomic


class Record(Protocol):
    @property
    def job_id(self) -> str: ...
    def to_json(self) -> str: ...


R = TypeVar("R", bound=Record)


class Store(Protocol[R]):
    def save(self, record: R) -> None: ...
    def load_all(self) -> list[R]: ...


class FileStore(Generic[R]):
    """One file per job: ``root / (pattern with {job} replaced)``."""

    def __init__(self, root: Path, pattern: str, parse: Callable[[str], R]) -> None:
        if "{job}" not in pattern:
            raise ValueError(f"record file pattern {pattern!r} must hold {{job}}")
        self.root, self.pattern, self.parse = root, pattern, parse

    def path(self, job_id: str) -> Path:
        return self.root / self.pattern.format(job=job_id)

    def save(self, record: R) -> None:
        write_atomic(self.path(record.job_id), record.to_json())

    def load_all(self) -> list[R]:
        out = []
        for f in sorted(self.root.glob(self.pattern.format(job="*"))):
            try:
                out.append(self.parse(f.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError) as e:
                # A record this role cannot read is a fault to report, not to hide.
                raise ValueError(f"{f}: unreadable job record ({e})") from None
        return out


class MemoryStore(Generic[R]):
    def __init__(self) -> None:
        self._records: dict[str, R] = {}
        self._lock = threading.Lock()

    def save(self, record: R) -> None:
        with self._lock:
            self._records[record.job_id] = record

    def load_all(self) -> list[R]:
        with self._lock:
            return [self._records[k] for k in sorted(self._records)]
