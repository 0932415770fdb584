"""Installed job types, by name. Nodes run only what is registered here and
enabled in their own config: no code is ever shipped to a node with a job.

Adding a job type means adding its package under ``models/`` and one line
here; nothing else names it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from enclave import jobspec
from enclave.jobspec import JobSpec, ParamsParser, SpecError
from models.jobtype import JobType, Program
from models.joint_binning.description import JOINT_BINNING
from models.joint_score.description import JOINT_SCORE
from models.joint_train.description import JOINT_TRAIN
from protocols.errors import RefusedError

JOB_TYPES: dict[str, JobType] = {j.name: j for j in (JOINT_TRAIN, JOINT_SCORE, JOINT_BINNING)}


def get(job_type: str) -> JobType:
    if job_type not in JOB_TYPES:
        raise RefusedError(f"job type {job_type!r} is not installed here (installed: {sorted(JOB_TYPES)})")
    return JOB_TYPES[job_type]


def names() -> list[str]:
    return list(JOB_TYPES)


def _parsers() -> dict[str, ParamsParser]:
    return {name: jt.parse_params for name, jt in JOB_TYPES.items()}


def _checked(spec: JobSpec, source: str) -> JobSpec:
    try:
        get(spec.job_type).validate(spec)
    except SpecError as e:
        raise SpecError(f"{source}: {e}") from None
    return spec


def parse_spec(raw: Any, source: str = "job spec") -> JobSpec:
    return _checked(jobspec.parse(raw, source, _parsers()), source)


def loads_spec(text: str, source: str = "job spec") -> JobSpec:
    return _checked(jobspec.loads(text, source, _parsers()), source)


def load_spec(path: str | Path) -> JobSpec:
    return _checked(jobspec.load(path, _parsers()), str(path))


def program(job_type: str) -> Program:
    """The job type's program, imported now (only workers call this)."""
    module, _, name = get(job_type).program.partition(":")
    fn: Program = getattr(importlib.import_module(module), name)
    return fn
