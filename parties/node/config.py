"""A node's typed configuration, read from ``node.yaml`` in its party home.

    advertise_host: 10.0.0.3        # where this party's workers are reached
    job_types: [joint_train]        # the job types this node runs (default: all installed)
    federation: /etc/safehouse/federation.yaml
    tls: {ca: ..., cert: ..., key: ...}   # bring your own CA and certificate
    key_dir: /var/lib/safehouse-keys/bank # signing keys, apart from the audit trail
    lease_seconds: 10                     # fail a job whose coordinator is silent this long

Every key is optional; the defaults suit a local run (``federation.yaml`` in
the home, TLS material in the party's ``tls/``, signing keys under the home's
``keys/<party>/``, outside the party's domain directory that holds its trail).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from enclave import federation
from enclave.controls.pki import TlsFiles
from enclave.fields import Fields
from enclave.home import Home, PartyHome, check_name
from models import registry
from protocols.errors import SpecError


@dataclass(frozen=True)
class NodeConfig:
    party: str
    home: Home
    advertise_host: str = "127.0.0.1"
    job_types: tuple[str, ...] = ()
    federation_file: Path | None = None
    tls: TlsFiles | None = None  # None only with --insecure-dev
    key_dir: Path | None = None
    # A job whose coordinator is silent this long is failed here: the node's lease on it ran out.
    lease_seconds: float = 10.0

    @property
    def party_home(self) -> PartyHome:
        return self.home.party(self.party)

    @property
    def secure(self) -> bool:
        return self.tls is not None

    def federation(self) -> federation.Federation:
        """This party's own copy of the federation file, read afresh (it may change between jobs)."""
        return federation.load(self.federation_file or self.home.root / federation.FILE)

    @staticmethod
    def load(party: str, home: Home, advertise_host: str | None = None, insecure_dev: bool = False) -> NodeConfig:
        check_name("party", party)
        path: Path = home.party(party).node_config
        raw: dict[str, Any] = {}
        if path.is_file():
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise SpecError(f"{path}: expected a mapping")
            raw = loaded
        f = Fields(raw, "", str(path))
        # Every installed job type unless the node's config narrows them.
        job_types = f.names("job_types", registry.names())
        missing = [j for j in job_types if j not in registry.JOB_TYPES]
        if missing:
            raise SpecError(f"{f.where('job_types')}: {missing} are not installed in this build ({registry.names()})")
        host = advertise_host or f.str_("advertise_host", "127.0.0.1")
        fed = Path(f.str_("federation")) if f.has("federation") else None
        tls = None if insecure_dev else _tls(f, home.party(party).root / "tls")
        key_dir = Path(f.str_("key_dir")) if f.has("key_dir") else home.key_dir(party)
        lease = f.float_("lease_seconds", 10.0, 2.0, 3600.0)
        f.done()
        return NodeConfig(party, home, host, tuple(job_types), fed, tls, key_dir, lease)


def _tls(f: Fields, default_dir: Path) -> TlsFiles:
    if not f.has("tls"):
        return TlsFiles.in_dir(default_dir)
    t = f.sub("tls")
    files = TlsFiles(Path(t.str_("ca")), Path(t.str_("cert")), Path(t.str_("key")))
    t.done()
    return files
