"""One contract for every job-store back end (file and memory), for both roles' records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from parties.coordinator import store as cstore
from parties.node import store as nstore
from protocols.constants import JobState
from protocols.messages import Endpoint


def node_record(job_id: str, state: JobState = JobState.QUEUED, detail: str = "") -> nstore.NodeRecord:
    return nstore.NodeRecord(job_id, "name: t\n", state, "psi", detail, 1.5, "ab" * 32, 42,
                             Endpoint("bank", "10.0.0.2", 4100, 4101), ("metrics", "plots"), 7)  # fmt: skip


def coord_record(job_id: str, state: JobState = JobState.QUEUED, detail: str = "") -> cstore.CoordRecord:
    return cstore.CoordRecord(job_id, "name: t\n", state, "sgb", detail, {"bank": {"state": "running"}},
                              {"models": {"sgb": {"auc": 0.8}}}, 3.0)  # fmt: skip


BACKENDS: dict[str, Callable[[Path], Any]] = {
    "node-file": lambda d: nstore.file_store(d),
    "node-memory": lambda d: nstore.memory_store(),
    "coordinator-file": lambda d: cstore.file_store(d),
    "coordinator-memory": lambda d: cstore.memory_store(),
}


def make(kind: str) -> Callable[..., Any]:
    return node_record if kind.startswith("node") else coord_record


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_saved_records_come_back_whole_and_latest_wins(kind: str, tmp_path: Path) -> None:
    store, record = BACKENDS[kind](tmp_path / "jobs"), make(kind)
    assert store.load_all() == []
    store.save(record("j2"))
    store.save(record("j1"))
    store.save(record("j2", JobState.FAILED, "node shut down"))
    assert store.load_all() == [record("j1"), record("j2", JobState.FAILED, "node shut down")]


@pytest.mark.parametrize("kind", ["node-file", "coordinator-file"])
def test_file_store_survives_a_new_instance_and_names_a_bad_record(kind: str, tmp_path: Path) -> None:
    record = make(kind)
    BACKENDS[kind](tmp_path / "jobs").save(record("j1", JobState.SUCCEEDED))
    again = BACKENDS[kind](tmp_path / "jobs")
    assert again.load_all() == [record("j1", JobState.SUCCEEDED)]
    bad = again.path("j1")
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=f"{bad}: unreadable job record"):
        again.load_all()
