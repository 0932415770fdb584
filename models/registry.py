"""Installed job types. Nodes run only what is registered here and enabled in
their own config: no code is ever shipped to a node with a job.

Programs are named as ``module:function`` and imported only by the worker that
runs them, so a node starts without loading the modelling libraries.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from enclave.errors import RefusedError

Program = Callable[[Any, dict[str, Any]], dict[str, Any]]

PROGRAMS: dict[str, str] = {"joint_train": "models.joint_train:run"}


def program(job_type: str) -> Program:
    if job_type not in PROGRAMS:
        raise RefusedError(f"job type {job_type!r} is not installed here")
    module, _, name = PROGRAMS[job_type].partition(":")
    fn: Program = getattr(importlib.import_module(module), name)
    return fn
