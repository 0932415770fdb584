"""The job-spec envelope: who takes part in a job, over which data, to what end.

A spec is YAML. The envelope holds what every job type shares: its name, job
type, purpose, the key column, each party's dataset and feature columns, the
label owner and column, and the deployment (``local``: start every party's
processes here; ``remote``: submit to the federation's coordinator). A spec
never names an address: those come from each party's federation file. The job
type owns the rest of the top-level keys (``split``, ``models``, ...): its description under ``models/``
parses them into typed parameters, handed in here as a parser, so this layer
knows no job type by name. Every error names the field at fault, e.g.
``job.yaml: parties.bank.features: names listed twice: ['x']``.
The spec holds no data, only names and parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from enclave.fields import Fields
from enclave.files import sha256_json
from enclave.home import NAME_RULE, is_plain_name
from protocols.errors import SpecError

DEFAULT_PURPOSE = "credit_risk_model"
DEPLOYMENTS = ("local", "remote")


class JobParams(Protocol):
    """A job type's typed parameters; ``to_dict`` gives its top-level spec keys."""

    def to_dict(self) -> dict[str, Any]: ...


ParamsParser = Callable[[Fields], JobParams]


@dataclass(frozen=True)
class PartySpec:
    """One party's part of a job: its dataset and the columns it contributes."""

    name: str
    dataset: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class JobSpec:
    name: str
    job_type: str
    key: str
    parties: tuple[PartySpec, ...]
    label_party: str
    label: str | None  # a scoring job's table need not carry the outcome
    params: JobParams
    purpose: str = DEFAULT_PURPOSE
    local: bool = True
    # Every role fails the job once it has run this long, whatever else happens.
    deadline_minutes: int = 120

    def party(self, name: str) -> PartySpec:
        for p in self.parties:
            if p.name == name:
                return p
        raise SpecError(f"parties: no party named {name!r}")

    @property
    def party_names(self) -> list[str]:
        return [p.name for p in self.parties]

    @property
    def label_column(self) -> str:
        """The label column, for job types that need one (training)."""
        if self.label is None:
            raise SpecError("label.column: this job needs the label column")
        return self.label

    def columns(self, party: str) -> list[str]:
        """Every column the job reads at ``party``: its features, and the label at the label owner."""
        me = self.party(party)
        return list(me.features) + ([self.label] if party == self.label_party and self.label else [])

    def to_dict(self) -> dict[str, Any]:
        parties: dict[str, Any] = {}
        for p in self.parties:
            parties[p.name] = {"dataset": p.dataset, "features": list(p.features)}
        return {
            "name": self.name,
            "job": self.job_type,
            "purpose": self.purpose,
            "key": self.key,
            "parties": parties,
            "label": {"party": self.label_party, **({"column": self.label} if self.label else {})},
            **self.params.to_dict(),
            "deadline_minutes": self.deadline_minutes,
            "deployment": "local" if self.local else "remote",
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)

    @property
    def sha256(self) -> str:
        return sha256_json(self.to_dict())


def _parties(top: Fields, key: str) -> tuple[PartySpec, ...]:
    pf = top.sub("parties")
    if len(pf.raw) < 2:
        raise SpecError(f"{pf.where()}: a joint job needs at least two parties, got {len(pf.raw)}")
    parties = []
    for raw_name in pf.raw:
        pname = str(raw_name)
        if not is_plain_name(raw_name):
            raise SpecError(f"{pf.where(pname)}: name {pname!r} is invalid: {NAME_RULE}")
        one = pf.sub(pname)
        feats = one.names("features")
        if key in feats:
            raise SpecError(f"{one.where('features')}: the key column {key!r} cannot be a feature")
        dataset = one.name("dataset")
        if one.has("endpoint"):
            # The coordinator must never dial where a spec points it.
            raise SpecError(f"{one.where('endpoint')}: addresses come from the federation file, not from a job spec")
        one.done()
        parties.append(PartySpec(pname, dataset, tuple(feats)))
    pf.done()
    seen: dict[str, str] = {}
    for p in parties:
        for c in p.features:
            if c in seen:
                raise SpecError(
                    f"{top.source}: parties.{p.name}.features: column {c!r} is also a feature of {seen[c]!r}; "
                    "vertical partitions must not overlap"
                )
            seen[c] = p.name
    return tuple(parties)


def parse(raw: Any, source: str, job_types: Mapping[str, ParamsParser]) -> JobSpec:
    """Validate a loaded YAML document into a JobSpec; the job type parses its own keys."""
    top = Fields(raw, "", source)
    name = top.name("name", "job")
    job_type = top.choice("job", next(iter(job_types)), tuple(job_types))
    purpose = top.name("purpose", DEFAULT_PURPOSE)
    key = top.str_("key", "uscc")
    parties = _parties(top, key)
    lab = top.sub("label")
    label_party = lab.str_("party")
    label = lab.str_("column") if lab.has("column") else None
    lab.done()
    names = [p.name for p in parties]
    if label_party not in names:
        raise SpecError(f"{lab.where('party')}: {label_party!r} is not one of the parties {names}")
    if label is not None and any(label in p.features for p in parties):
        raise SpecError(f"{lab.where('column')}: the label {label!r} is also listed as a feature")
    params = job_types[job_type](top)
    deadline = top.int_("deadline_minutes", 120, 1, 7 * 24 * 60)
    deployment = top.choice("deployment", "local", DEPLOYMENTS)
    top.done()
    return JobSpec(name, job_type, key, parties, label_party, label, params, purpose, deployment == "local", deadline)


def loads(text: str, source: str, job_types: Mapping[str, ParamsParser]) -> JobSpec:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(f"{source}: not valid YAML: {e}") from None
    return parse(raw, source, job_types)


def load(path: str | Path, job_types: Mapping[str, ParamsParser]) -> JobSpec:
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: job spec file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{p}: not UTF-8 text (byte {e.start})") from None
    return loads(text, str(p), job_types)


def document(
    job_type: str,
    name: str,
    parties: Mapping[str, tuple[str, Sequence[str]]],
    label: tuple[str, str | None],
    params: Mapping[str, Any],
    *,
    key: str = "uscc",
    purpose: str = DEFAULT_PURPOSE,
    deployment: str = "local",
) -> dict[str, Any]:
    """The one builder of spec documents: demo, ``data split`` and the API all use it.

    ``parties`` maps each party to (dataset, feature columns); ``label`` is
    (label owner, label column or None); ``params`` holds the job type's own keys.
    """
    return {
        "name": name,
        "job": job_type,
        "purpose": purpose,
        "key": key,
        "parties": {p: {"dataset": ds, "features": list(cols)} for p, (ds, cols) in parties.items()},
        "label": {"party": label[0], **({"column": label[1]} if label[1] else {})},
        **params,
        "deployment": deployment,
    }
