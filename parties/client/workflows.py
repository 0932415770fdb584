"""Workflows a person runs before a job: a synthetic city with its controls, and
one public table split into the parties' domains with a ready job spec.

Specs and policy grants are built in one place each (``enclave.jobspec.document``,
``enclave.controls.policy.grant``) with the job type's own defaults, so the
demo, ``data split`` and the API cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from enclave.controls import consent, pki, policy
from enclave.data import catalogue as cat
from enclave.data import importing, splitting, synth
from enclave.data import schema as sch
from enclave.data.importing import ImportReport, Warn
from enclave.home import Home, check_name
from enclave.jobspec import JobSpec, document
from models import registry
from models.joint_train.params import document_params
from parties.client.local import ensure_pki
from protocols.messages import Fingerprint

BANK = cat.BANK
PLATFORM = cat.PLATFORM
# What a node lets leave by default: aggregates and manifests, never rows. Per-firm
# outputs (a scored list) stay with the label owner whatever a policy says.
DEFAULT_OUTPUTS = ("metrics", "plots", "model_manifest", "score_bands")
# A firm of the demo city authorises its bank for training, scoring and monitoring alike.
PURPOSES = ("credit_risk_model", "scoring", "monitoring")


def spec_for(
    home: Home, name: str, datasets: Mapping[str, str], label: tuple[str, str], *,
    trees: int = 25, depth: int = 4, seed: int = 7, pooled: bool = False, key: str = cat.KEY,
) -> JobSpec:  # fmt: skip
    """A joint_train spec over every feature each party's dataset declares."""
    parties = {p: (ds, sch.read_schema(home.party(p).dataset_dir(ds)).features) for p, ds in datasets.items()}
    params = document_params(trees=trees, depth=depth, seed=seed, pooled=pooled)
    return registry.parse_spec(document("joint_train", name, parties, label, params, key=key), f"{name} spec")


def grant_partners(home: Home, datasets: Mapping[str, str]) -> None:
    """Each party grants every other party joint jobs, for a year, over the columns of its
    dataset that are features or the label, naming each column."""
    for party, dataset in datasets.items():
        partners = [p for p in datasets if p != party]
        schema = sch.read_schema(home.party(party).dataset_dir(dataset))
        columns = [c.name for c in schema.columns if c.role in ("feature", "label")]
        g = policy.grant(partners, registry.names(), {dataset: columns}, DEFAULT_OUTPUTS)
        policy.add_grant(home.party(party).root, party, g)


def generate_city(
    home: Home, rows: int, seed: int = 20241, authorised_share: float = 0.8,
    banks: tuple[str, ...] = (BANK,), guarantor: str | None = None,
) -> dict[str, dict[str, Fingerprint]]:  # fmt: skip
    """Write the synthetic city into the parties' domains and set its default controls:
    the PKI, each party's policy, and signed authorisations for a share of the firms,
    for every bank."""
    city = synth.generate(rows, seed, banks, guarantor)
    fps = synth.write_city(home, city)
    ensure_pki(home, [*city.tables, pki.COORDINATOR])
    for party in city.tables:
        (home.party(party).root / policy.POLICY_FILE).unlink(missing_ok=True)
    datasets = {
        party: next(iter(tables)) if party != PLATFORM else cat.PROFILE for party, tables in city.tables.items()
    }
    grant_partners(home, datasets)
    firms = city.platform_firms
    chosen = list(firms[np.random.default_rng(seed + 7).random(len(firms)) < authorised_share])
    signer = consent.consent_signer(home.key_dir(consent.SIGNER), home.trust_dir)
    consent.authorise_all(home.party(PLATFORM).root, signer, chosen, banks[0], PURPOSES[0])
    for bank in banks:
        for purpose in PURPOSES[1 if bank == banks[0] else 0 :]:
            consent.grant(home.party(PLATFORM).root, signer, chosen, bank, purpose, 365)
    return fps


def demo_spec(home: Home, name: str = "demo", trees: int = 25, depth: int = 4) -> JobSpec:
    return spec_for(home, name, {PLATFORM: cat.PROFILE, BANK: cat.LOANS}, (BANK, cat.LABEL), trees=trees,
                    depth=depth, pooled=True)  # fmt: skip


@dataclass(frozen=True)
class SplitReport:
    spec_path: Path
    dataset: str
    imports: dict[str, ImportReport]
    warnings: tuple[str, ...]


def split_table(
    path: Path, home: Home, label: str, bank_columns: Sequence[str], out_dir: Path, *,
    key: str | None = None, name: str | None = None, keep: float = 0.95, seed: int = 7,
    sample: int | None = None, trees: int = 25, depth: int = 4, on_duplicate: str = "error",
    positive: str | None = None, warn: Warn = lambda m: None,
) -> SplitReport:  # fmt: skip
    """One table -> a bank dataset (key, label, ``bank_columns``) and a platform
    dataset (key, the rest) in their domains, grants both ways, and ``job.yaml``."""
    warnings, note = importing.collector(warn)
    sides = splitting.split_frame(importing.read_table(path), str(path), label, bank_columns, key=key, keep=keep,
                                  seed=seed, sample=sample)  # fmt: skip
    dataset = check_name("dataset", name or importing.dataset_name(path))
    out_dir.mkdir(parents=True, exist_ok=True)
    imports = {}
    for party, frame in ((BANK, sides.bank), (PLATFORM, sides.platform)):
        file = out_dir / f"{party}.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), file)
        is_bank = party == BANK
        imports[party] = importing.import_frame(
            frame, str(file), home, party, dataset, sides.key, label if is_bank else None, None, on_duplicate, note,
            positive if is_bank else None,
        )  # fmt: skip
    grant_partners(home, {PLATFORM: dataset, BANK: dataset})
    ensure_pki(home, [PLATFORM, BANK, pki.COORDINATOR])
    spec = spec_for(home, dataset[:24].rstrip("_-") or "job", {PLATFORM: dataset, BANK: dataset}, (BANK, label),
                    trees=trees, depth=depth, seed=seed, pooled=True, key=sides.key)  # fmt: skip
    spec_path = out_dir / "job.yaml"
    spec_path.write_text(spec.to_yaml(), encoding="utf-8")
    return SplitReport(spec_path, dataset, imports, tuple(warnings))
