"""The Safehouse home directory: where all local state of every role lives.

``$SAFEHOUSE_HOME`` (default ``./.safehouse``) holds each party's data, job
working directories, model parts and logs, the coordinator's state, and the
default MLflow store (a sqlite file plus an artifact folder).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from enclave.errors import SpecError

HOME_ENV = "SAFEHOUSE_HOME"
TRACKING_ENV = "SAFEHOUSE_TRACKING_URI"
DEFAULT_HOME = ".safehouse"

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


NAME_RULE = "use 1-40 lowercase letters, digits, '_' or '-', starting with a letter"


def is_plain_name(name: object) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name))


def check_name(kind: str, name: str) -> str:
    """Party, dataset and job names become directory names: keep them plain."""
    if not is_plain_name(name):
        raise SpecError(f"{kind} name {name!r} is invalid: {NAME_RULE}")
    return name


@dataclass(frozen=True)
class Home:
    """Paths under one Safehouse home directory."""

    root: Path

    @staticmethod
    def resolve(path: str | os.PathLike[str] | None = None) -> Home:
        raw = path if path is not None else os.environ.get(HOME_ENV, DEFAULT_HOME)
        return Home(Path(raw).expanduser().resolve())

    def party(self, party: str) -> PartyHome:
        return PartyHome(self.root / "parties" / check_name("party", party), party)

    @property
    def coordinator(self) -> Path:
        return self.root / "coordinator"

    @property
    def tracking_uri(self) -> str:
        env = os.environ.get(TRACKING_ENV)
        return env if env else f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.root / "mlartifacts"


@dataclass(frozen=True)
class PartyHome:
    """One party's domain: nothing here is read by another party's process."""

    root: Path
    name: str

    def dataset_dir(self, dataset: str) -> Path:
        return self.root / "data" / check_name("dataset", dataset)

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    def model_dir(self, job_id: str) -> Path:
        return self.root / "models" / job_id

    @property
    def node_config(self) -> Path:
        return self.root / "node.yaml"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"
