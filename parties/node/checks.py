"""What a node checks before it accepts a job: its own job types, datasets and columns.

The checks read only this party's own home and the spec; every refusal names
what is missing, in text fit to cross to the coordinator (names, never values).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from enclave.data import schema as sch
from enclave.jobspec import JobSpec
from models import registry
from parties.node.config import NodeConfig
from protocols.errors import RefusedError

_JOB_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
# Below this a homomorphic key is within reach of factoring; no node accepts it.
MIN_HE_KEY_BITS = 2048


@dataclass(frozen=True)
class Checked:
    dataset_dir: Path
    schema: sch.Schema


def valid_job_id(job_id: str) -> bool:
    return bool(job_id) and set(job_id) <= _JOB_ID_CHARS and len(job_id) <= 64


def check_job(config: NodeConfig, spec: JobSpec) -> Checked:
    party = config.party
    if spec.job_type not in config.job_types:
        raise RefusedError(f"party {party!r} has not installed job type {spec.job_type!r}")
    he = registry.get(spec.job_type).devices(spec).heu
    if he is not None and he.key_bits < MIN_HE_KEY_BITS:
        raise RefusedError(f"party {party!r} refuses HE keys under {MIN_HE_KEY_BITS} bits (the job asks {he.key_bits})")
    if party not in spec.party_names:
        raise RefusedError(f"party {party!r} is not a party of this job")
    me = spec.party(party)
    ds_dir = config.party_home.dataset_dir(me.dataset)
    if not (ds_dir / sch.SCHEMA_FILE).is_file():
        raise RefusedError(f"party {party!r} holds no dataset {me.dataset!r}")
    schema = sch.read_schema(ds_dir)
    if spec.key != schema.key:
        raise RefusedError(f"dataset {me.dataset!r} of {party!r} is keyed by {schema.key!r}, not {spec.key!r}")
    unknown = [c for c in me.features if c not in schema.by_name]
    if unknown:
        raise RefusedError(f"dataset {me.dataset!r} of {party!r} has no column(s) {unknown}")
    not_features = [c for c in me.features if schema.by_name[c].role != "feature"]
    if not_features:
        raise RefusedError(f"column(s) {not_features} of {me.dataset!r} are not declared as features")
    if (
        spec.label_party == party
        and spec.label is not None
        and (spec.label not in schema.by_name or schema.by_name[spec.label].role != "label")
    ):
        raise RefusedError(f"dataset {me.dataset!r} of {party!r} has no label column {spec.label!r}")
    registry.get(spec.job_type).check_party(spec, party, config.party_home.root)
    return Checked(ds_dir, schema)
