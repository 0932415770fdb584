"""Job states, the stages every job type shares, and worker file names.

Stage names of one job type live in its description under ``models/``; only
the first and last stage, which the node and coordinator act on, are here.
"""

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


# A worker starts in STAGE_INIT (joining its peers) and reports STAGE_DONE when
# its program returned; the coordinator concludes a job once every party is done.
STAGE_INIT = "init"
STAGE_DONE = "done"

# Files a worker writes into its job directory (inside its own party's domain).
WORKER_CONFIG = "worker.json"
WORKER_EVENTS = "events.jsonl"
WORKER_RESULT = "result.json"
WORKER_ERROR = "error.json"
WORKER_LOG = "worker.log"
OUTPUTS_DIR = "outputs"
