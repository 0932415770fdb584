"""The Safehouse home directory and the typed settings read from the environment.

``$SAFEHOUSE_HOME`` (default ``./.safehouse``) holds each party's domain (its
data, job working directories, model parts, keys, policy and logs), the
coordinator's state, and the default MLflow store (a sqlite file plus an
artifact folder). ``$SAFEHOUSE_TRACKING_URI`` points tracking elsewhere.
Every environment variable Safehouse reads is read here, once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from protocols.errors import SpecError

HOME_ENV = "SAFEHOUSE_HOME"
TRACKING_ENV = "SAFEHOUSE_TRACKING_URI"
DEFAULT_HOME = ".safehouse"

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
NAME_RULE = "use 1-40 lowercase letters, digits, '_' or '-', starting with a letter"


def is_plain_name(name: object) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name))


# Names that stand for a role or service, never for a party: a party so named
# could pass for the coordinator or the consent service.
RESERVED = ("coordinator", "consent", "ca", "federation", "client")


def check_name(kind: str, name: str) -> str:
    """Party, dataset and job names become directory names: keep them plain."""
    if not is_plain_name(name):
        raise SpecError(f"{kind} name {name!r} is invalid: {NAME_RULE}")
    if kind == "party" and name in RESERVED:
        raise SpecError(f"party name {name!r} is reserved for a role; choose another")
    return name


@dataclass(frozen=True)
class Settings:
    """What the environment says, read once and typed."""

    home: Path
    tracking_uri: str | None

    @staticmethod
    def from_env(home: str | os.PathLike[str] | None = None) -> Settings:
        raw = home if home is not None else os.environ.get(HOME_ENV, DEFAULT_HOME)
        return Settings(Path(raw).expanduser().resolve(), os.environ.get(TRACKING_ENV) or None)


@dataclass(frozen=True)
class Home:
    """Paths under one Safehouse home directory."""

    root: Path
    tracking_override: str | None = None

    @staticmethod
    def resolve(path: str | os.PathLike[str] | None = None) -> Home:
        s = Settings.from_env(path)
        return Home(s.home, s.tracking_uri)

    def party(self, party: str) -> PartyHome:
        return PartyHome(self.root / "parties" / check_name("party", party), party)

    @property
    def coordinator(self) -> Path:
        return self.root / "coordinator"

    @property
    def trust_dir(self) -> Path:
        return self.root / "trust"

    def key_dir(self, signer: str) -> Path:
        """A signer's private keys: apart from every party's domain and audit trail.
        In a deployment this is a separate volume, an HSM or a KMS (see the README)."""
        return self.root / "keys" / signer

    def tls_dir(self, identity: str) -> Path:
        """Where a party's or the coordinator's certificate, key and CA live in a local home."""
        return self.coordinator / "tls" if identity == "coordinator" else self.party(identity).tls_dir

    @property
    def pki_dir(self) -> Path:
        """The federation CA (its key belongs to whoever runs the federation)."""
        return self.root / "pki"

    @property
    def tracking_uri(self) -> str:
        return self.tracking_override or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"


@dataclass(frozen=True)
class PartyHome:
    """One party's domain: nothing here is read by another party's process."""

    root: Path
    name: str

    def dataset_dir(self, dataset: str) -> Path:
        return self.root / "data" / check_name("dataset", dataset)

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def model_dir(self, job_id: str) -> Path:
        return self.root / "models" / job_id

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def node_config(self) -> Path:
        return self.root / "node.yaml"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"
