"""A stand-in for the SecretFlow worker, for unit tests of node and coordinator job logic.

    python standin_worker.py JOB_DIR ok|fail|hang

It speaks the worker's file contract (``worker.json`` in; ``events.jsonl``,
``result.json`` or ``error.json`` and outputs out) without SecretFlow, so the
state machines can be tested in one process. The multi-process tests run the
real worker.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import yaml


def emit(job_dir: Path, stage: str, detail: str) -> None:
    with (job_dir / "events.jsonl").open("a") as f:
        f.write(json.dumps({"t": time.time(), "stage": stage, "detail": detail}) + "\n")


def main(job_dir: Path, mode: str) -> int:
    cfg = json.loads((job_dir / "worker.json").read_text())
    emit(job_dir, "init", "joining the other parties")
    emit(job_dir, "psi", "PSI (RR22) on uscc")
    if mode == "hang":
        time.sleep(120)
    if mode == "fail":
        (job_dir / "error.json").write_text(json.dumps({"public": "stand-in failure", "local": "detail"}))
        return 1
    label_owner = yaml.safe_load(cfg["spec_yaml"])["label"]["party"] == cfg["party"]
    part = Path(cfg["model_dir"]) / "sgb"
    part.mkdir(parents=True, exist_ok=True)
    (part / "part.bin").write_bytes(cfg["party"].encode())
    metrics = {"psi_intersection": 100.0}
    artifacts: list[str] = []
    if label_owner:
        metrics |= {"sgb_auc": 0.81, "sgb_ks": 0.42, "test_rows": 30.0}
        (job_dir / "outputs").mkdir(exist_ok=True)
        (job_dir / "outputs" / "roc.png").write_bytes(b"\x89PNG stand-in")
        artifacts = ["roc.png", "undeclared.csv"]
    result = {"party": cfg["party"], "metrics": metrics, "artifacts": artifacts, "model_parts": {"sgb": "ab" * 32},
              "stage_seconds": {"psi": 0.1}, "withheld_firms": 0}  # fmt: skip
    (job_dir / "result.json").write_text(json.dumps(result))
    emit(job_dir, "done", "finished")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
