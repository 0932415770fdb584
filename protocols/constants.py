"""Job states, stage names and file names shared by coordinator, nodes and workers."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


# Stages a joint_train worker goes through, in order.
STAGE_INIT = "init"
STAGE_PSI = "psi"
STAGE_SPLIT = "split"
STAGE_SGB = "sgb"
STAGE_SSLR = "sslr"
STAGE_BANK_ONLY = "bank_only"
STAGE_SAVE = "save"
STAGE_DONE = "done"

# Files a worker writes into its job directory (inside its own party's domain).
WORKER_CONFIG = "worker.json"
WORKER_EVENTS = "events.jsonl"
WORKER_RESULT = "result.json"
WORKER_ERROR = "error.json"
WORKER_LOG = "worker.log"
