"""Installed job types. Nodes run only what is registered here and enabled in
their own config: no code is ever shipped to a node with a job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from enclave.errors import RefusedError
from models import joint_train
from models.joint_train import Context

Program = Callable[[Context, dict[str, Any]], dict[str, Any]]

PROGRAMS: dict[str, Program] = {"joint_train": joint_train.run}

__all__ = ["PROGRAMS", "Context", "program"]


def program(job_type: str) -> Program:
    if job_type not in PROGRAMS:
        raise RefusedError(f"job type {job_type!r} is not installed here")
    return PROGRAMS[job_type]
