"""The coordinator's job records, read back when it starts: ``jobs/<job>.json``
under its home (see ``parties.records`` for the store back ends)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parties.records import FileStore, MemoryStore, Store
from protocols.constants import JobState


@dataclass(frozen=True)
class CoordRecord:
    """What the coordinator knows of one job: no rows, only names, states and released summaries."""

    job_id: str
    spec_yaml: str
    state: JobState
    stage: str = ""
    detail: str = ""
    parties: dict[str, dict[str, str]] = field(default_factory=dict)  # party -> {state, detail}
    result: dict[str, Any] = field(default_factory=dict)
    submitted_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "job_id": self.job_id,
                "spec_yaml": self.spec_yaml,
                "state": self.state.value,
                "stage": self.stage,
                "detail": self.detail,
                "parties": self.parties,
                "result": self.result,
                "submitted_at": self.submitted_at,
            },
            indent=1,
            sort_keys=True,
            default=str,
        )

    @staticmethod
    def from_json(text: str) -> CoordRecord:
        d = json.loads(text)
        return CoordRecord(
            job_id=str(d["job_id"]),
            spec_yaml=str(d["spec_yaml"]),
            state=JobState(d["state"]),
            stage=str(d.get("stage", "")),
            detail=str(d.get("detail", "")),
            parties={str(k): dict(v) for k, v in d.get("parties", {}).items()},
            result=dict(d.get("result", {})),
            submitted_at=float(d.get("submitted_at", 0.0)),
        )


CoordinatorStore = Store[CoordRecord]


def file_store(jobs_dir: Path) -> FileStore[CoordRecord]:
    return FileStore(jobs_dir, "{job}.json", CoordRecord.from_json)


def memory_store() -> MemoryStore[CoordRecord]:
    return MemoryStore()
