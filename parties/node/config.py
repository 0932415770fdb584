"""A node's typed configuration, read from ``node.yaml`` in its party home."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from enclave.home import Home, PartyHome, check_name
from models import registry
from protocols.errors import SpecError


@dataclass(frozen=True)
class NodeConfig:
    party: str
    home: Home
    # Host other parties' workers use to reach this party's worker links.
    advertise_host: str = "127.0.0.1"
    job_types: tuple[str, ...] = ()

    @property
    def party_home(self) -> PartyHome:
        return self.home.party(self.party)

    @staticmethod
    def load(party: str, home: Home, advertise_host: str | None = None) -> NodeConfig:
        check_name("party", party)
        path: Path = home.party(party).node_config
        raw: dict[str, object] = {}
        if path.is_file():
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise SpecError(f"{path}: expected a mapping")
            raw = loaded
        unknown = sorted(set(raw) - {"advertise_host", "job_types"})
        if unknown:
            raise SpecError(f"{path}: unknown field(s) {unknown}")
        # Every installed job type unless the node's config narrows them.
        job_types = raw.get("job_types", registry.names())
        if not isinstance(job_types, list) or not all(isinstance(j, str) for j in job_types):
            raise SpecError(f"{path}: job_types: expected a list of names")
        missing = [j for j in job_types if j not in registry.JOB_TYPES]
        if missing:
            raise SpecError(f"{path}: job_types: {missing} are not installed in this build ({registry.names()})")
        host = advertise_host or str(raw.get("advertise_host", "127.0.0.1"))
        return NodeConfig(party=party, home=home, advertise_host=host, job_types=tuple(job_types))
