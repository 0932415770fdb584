"""A node's job records, read back when the node starts: ``jobs/<job>/state.json``
in the party's home (see ``parties.records`` for the store back ends)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from parties.records import FileStore, MemoryStore, Store
from protocols.constants import JobState
from protocols.messages import Endpoint

STATE_FILE = "state.json"


@dataclass(frozen=True)
class NodeRecord:
    """What a node knows of one job, enough to answer for it after a restart."""

    job_id: str
    spec_yaml: str
    state: JobState
    stage: str = ""
    detail: str = ""
    updated_at: float = 0.0
    audit_hash: str = ""
    worker_pid: int = 0
    endpoint: Endpoint | None = None
    outputs_allowed: tuple[str, ...] = ()
    min_cell_size: int = 10
    released: bool = False  # outputs leave once, after SUCCEEDED
    started_at: float = 0.0  # when the worker started (the job's deadline counts from here)

    def to_json(self) -> str:
        d = asdict(self)
        d["state"] = self.state.value
        return json.dumps(d, indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> NodeRecord:
        d = json.loads(text)
        ep = d.get("endpoint")
        return NodeRecord(
            job_id=str(d["job_id"]),
            spec_yaml=str(d["spec_yaml"]),
            state=JobState(d["state"]),
            stage=str(d.get("stage", "")),
            detail=str(d.get("detail", "")),
            updated_at=float(d.get("updated_at", 0.0)),
            audit_hash=str(d.get("audit_hash", "")),
            worker_pid=int(d.get("worker_pid", 0)),
            endpoint=Endpoint(**ep) if ep else None,
            outputs_allowed=tuple(d.get("outputs_allowed", ())),
            min_cell_size=int(d.get("min_cell_size", 10)),
            released=bool(d.get("released", False)),
            started_at=float(d.get("started_at", 0.0)),
        )


NodeStore = Store[NodeRecord]


def file_store(jobs_dir: Path) -> FileStore[NodeRecord]:
    return FileStore(jobs_dir, "{job}/" + STATE_FILE, NodeRecord.from_json)


def memory_store() -> MemoryStore[NodeRecord]:
    return MemoryStore()
