"""Each party's own policy: who may run what over which of its data, and what may leave.

``policy.yaml`` in a party's home lists grants. A job is allowed at a node only
if, for every partner in the job, some unexpired grant names that partner, the
job type, the purpose, the dataset and every column the job would touch there.
The node checks this itself before anything runs; nothing the coordinator
sends can widen it. The grants also bound which outputs may leave the node, and
``min_cell_size`` the smallest group an aggregate output may show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from enclave.files import write_atomic
from enclave.jobspec import JobSpec
from protocols.errors import SpecError

POLICY_FILE = "policy.yaml"
OUTPUT_KINDS = ("metrics", "plots", "model_manifest", "score_bands", "scored_list", "scores", "alerts")
ALL = "*"


@dataclass(frozen=True)
class Grant:
    partners: tuple[str, ...]
    job_types: tuple[str, ...]
    purposes: tuple[str, ...]
    datasets: dict[str, tuple[str, ...]]  # dataset -> columns, or ("*",)
    outputs: tuple[str, ...]
    expires: dt.date


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    party: str
    min_cell_size: int
    grants: tuple[Grant, ...]

    def decide(self, spec: JobSpec, today: dt.date | None = None) -> Decision:
        me = spec.party(self.party)
        columns = spec.columns(self.party)
        partners = [p for p in spec.party_names if p != self.party]
        released: set[str] | None = None
        for partner in partners:
            d = self.allows(partner, spec.job_type, spec.purpose, me.dataset, columns, today)
            if not d.allowed:
                return d
            released = set(d.outputs) if released is None else released & set(d.outputs)
        return Decision(True, "allowed by policy", tuple(sorted(released or ())))

    def allows(
        self, partner: str, job_type: str, purpose: str, dataset: str, columns: Sequence[str],
        today: dt.date | None = None,
    ) -> Decision:  # fmt: skip
        """Whether one partner may use ``columns`` of ``dataset`` in ``job_type`` for ``purpose``
        (a job asks this for each partner; an online scoring call for its caller)."""
        today = today or dt.date.today()
        why: list[str] = []
        for g in self.grants:
            fault = _fault(g, partner, job_type, purpose, dataset, list(columns), today)
            if fault is None:
                return Decision(True, "allowed by policy", g.outputs)
            why.append(fault)
        detail = why[0] if len(why) == 1 else "; ".join(sorted(set(why))) or "no grants at all"
        return Decision(False, f"policy of {self.party!r} refuses {partner!r}: {detail}")


def _fault(
    g: Grant, partner: str, job_type: str, purpose: str, dataset: str, columns: list[str], today: dt.date
) -> str | None:
    if partner not in g.partners and ALL not in g.partners:
        return f"no grant names partner {partner!r}"
    if job_type not in g.job_types:
        return f"job type {job_type!r} not granted"
    if purpose not in g.purposes:
        return f"purpose {purpose!r} not granted"
    if g.expires < today:
        return f"grant expired on {g.expires.isoformat()}"
    if dataset not in g.datasets:
        return f"dataset {dataset!r} not granted"
    allowed = g.datasets[dataset]
    if ALL not in allowed:
        outside = [c for c in columns if c not in allowed]
        if outside:
            return f"column(s) {outside} of {dataset!r} not granted"
    return None


def _strs(raw: Any, where: str) -> tuple[str, ...]:
    if raw == ALL:
        return (ALL,)
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise SpecError(f"{where}: expected a list of names or '*'")
    return tuple(raw)


def parse(raw: Any, party: str, source: str) -> Policy:
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: expected a mapping")
    unknown = sorted(set(raw) - {"min_cell_size", "grants"})
    if unknown:
        raise SpecError(f"{source}: unknown field(s) {unknown}")
    k = raw.get("min_cell_size", 10)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SpecError(f"{source}: min_cell_size: expected a positive integer, got {k!r}")
    grants = []
    for i, g in enumerate(raw.get("grants") or []):
        where = f"{source}: grants[{i}]"
        if not isinstance(g, dict):
            raise SpecError(f"{where}: expected a mapping")
        extra = sorted(set(g) - {"partners", "job_types", "purposes", "datasets", "outputs", "expires"})
        if extra:
            raise SpecError(f"{where}: unknown field(s) {extra}")
        for f in ("partners", "job_types", "purposes", "datasets", "expires"):
            if f not in g:
                raise SpecError(f"{where}: missing field {f!r}")
        ds = g["datasets"]
        if not isinstance(ds, dict) or not ds:
            raise SpecError(f"{where}.datasets: expected a mapping of dataset -> columns or '*'")
        outputs = _strs(g.get("outputs", list(OUTPUT_KINDS[:3])), f"{where}.outputs")
        bad = [o for o in outputs if o not in OUTPUT_KINDS and o != ALL]
        if bad:
            raise SpecError(f"{where}.outputs: unknown output kind(s) {bad}; known: {list(OUTPUT_KINDS)}")
        exp = g["expires"]
        if isinstance(exp, str):
            try:
                exp = dt.date.fromisoformat(exp)
            except ValueError:
                raise SpecError(f"{where}.expires: expected a date YYYY-MM-DD, got {exp!r}") from None
        if not isinstance(exp, dt.date):
            raise SpecError(f"{where}.expires: expected a date YYYY-MM-DD, got {exp!r}")
        grants.append(
            Grant(
                partners=_strs(g["partners"], f"{where}.partners"),
                job_types=_strs(g["job_types"], f"{where}.job_types"),
                purposes=_strs(g["purposes"], f"{where}.purposes"),
                datasets={str(d): _strs(c, f"{where}.datasets.{d}") for d, c in ds.items()},
                outputs=OUTPUT_KINDS if ALL in outputs else outputs,
                expires=exp,
            )
        )
    return Policy(party, k, tuple(grants))


def load(party_root: Path, party: str) -> Policy:
    """The party's policy; a party without a policy file grants nothing."""
    path = party_root / POLICY_FILE
    if not path.is_file():
        return Policy(party, 10, ())
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    return parse(raw, party, str(path))


def write(party_root: Path, doc: dict[str, Any]) -> None:
    party_root.mkdir(parents=True, exist_ok=True)
    write_atomic(party_root / POLICY_FILE, yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))


def grant(
    partners: Sequence[str],
    job_types: Sequence[str],
    datasets: Mapping[str, Sequence[str] | str],
    outputs: Sequence[str] | str,
    *,
    purposes: Sequence[str] = ("credit_risk_model", "scoring", "monitoring"),
    days: int = 365,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """The one builder of a policy grant (a mapping as written in ``policy.yaml``)."""
    expires = (today or dt.date.today()) + dt.timedelta(days=days)
    return {
        "partners": list(partners),
        "job_types": list(job_types),
        "purposes": list(purposes),
        "datasets": {d: c if isinstance(c, str) else list(c) for d, c in datasets.items()},
        "outputs": outputs if isinstance(outputs, str) else list(outputs),
        "expires": expires.isoformat(),
    }


def add_grant(party_root: Path, party: str, new: dict[str, Any], min_cell_size: int = 10) -> None:
    """Add a grant to a party's policy, replacing one for the same partners and datasets."""
    path = party_root / POLICY_FILE
    doc: dict[str, Any] = {"min_cell_size": min_cell_size, "grants": []}
    if path.is_file():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(loaded, dict):
            doc = loaded
    same = (new["partners"], sorted(new["datasets"]))
    kept = [g for g in doc.get("grants") or [] if (g.get("partners"), sorted(g.get("datasets") or {})) != same]
    doc["grants"] = [*kept, new]
    parse(doc, party, str(path))  # refuse to write a policy the node could not read
    write(party_root, doc)
