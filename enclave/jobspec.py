"""Job specs: what a joint job computes, validated before any party acts on it.

A spec is YAML. Every error names the offending field, e.g.
``job.yaml: models.sgb.max_depth: expected an integer from 1 to 8, got 'deep'``.
The spec holds no data, only names: parties, datasets, columns and parameters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from enclave.config import NAME_RULE, is_plain_name
from enclave.errors import SpecError

JOB_TYPES = ("joint_train",)
MODEL_KINDS = ("sgb", "sslr", "bank_only")
HE_SCHEMES = ("ou", "paillier")


@dataclass(frozen=True)
class PartySpec:
    """One party's part of a job: its dataset and the columns it contributes."""

    name: str
    dataset: str
    features: tuple[str, ...]
    # Where the party's node listens, for deployments that are not local.
    endpoint: str | None = None


@dataclass(frozen=True)
class SgbParams:
    num_boost_round: int = 40
    max_depth: int = 4
    learning_rate: float = 0.1
    reg_lambda: float = 1.0
    gamma: float = 0.0
    sketch_eps: float = 0.04
    he: str = "ou"
    key_bits: int = 2048


@dataclass(frozen=True)
class SslrParams:
    epochs: int = 8
    learning_rate: float = 0.2
    batch_size: int = 512
    l2_norm: float = 0.05


@dataclass(frozen=True)
class BankOnlyParams:
    """LightGBM inside the label owner's domain, same trees and depth as SGB."""


@dataclass(frozen=True)
class JobSpec:
    name: str
    job_type: str
    key: str
    label_party: str
    label: str
    parties: tuple[PartySpec, ...]
    test_fraction: float = 0.3
    seed: int = 7
    sgb: SgbParams | None = field(default_factory=SgbParams)
    sslr: SslrParams | None = field(default_factory=SslrParams)
    bank_only: BankOnlyParams | None = field(default_factory=BankOnlyParams)
    pooled_reference: bool = False
    local: bool = True
    purpose: str = "credit_risk_model"

    def party(self, name: str) -> PartySpec:
        for p in self.parties:
            if p.name == name:
                return p
        raise SpecError(f"parties: no party named {name!r}")

    @property
    def party_names(self) -> list[str]:
        return [p.name for p in self.parties]

    @property
    def models(self) -> list[str]:
        return [k for k in MODEL_KINDS if getattr(self, k) is not None]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parties"] = {p["name"]: {k: v for k, v in p.items() if k != "name" and v is not None} for p in d["parties"]}
        for p in d["parties"].values():
            p["features"] = list(p["features"])
        d["job"] = d.pop("job_type")
        d["label"] = {"party": d.pop("label_party"), "column": d.pop("label")}
        d["split"] = {"test_fraction": d.pop("test_fraction"), "seed": d.pop("seed")}
        d["models"] = {k: d.pop(k) for k in MODEL_KINDS if d.get(k) is not None}
        for k in MODEL_KINDS:
            d.pop(k, None)
        d["reference"] = {"pooled": d.pop("pooled_reference")}
        d["deployment"] = "local" if d.pop("local") else "remote"
        d["purpose"] = d.pop("purpose")
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


class _Fields:
    """Reads fields from a mapping, naming the dotted path on every error."""

    def __init__(self, raw: Any, path: str, source: str) -> None:
        if not isinstance(raw, Mapping):
            raise SpecError(f"{source}: {path or 'top level'}: expected a mapping, got {type(raw).__name__}")
        self.raw, self.path, self.source = raw, path, source
        self.used: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.source}: {self.path + '.' if self.path else ''}{key}"

    def get(self, key: str, default: Any = ..., *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.raw or self.raw[key] is None:
            if required or default is ...:
                raise SpecError(f"{self.where(key)}: required field is missing")
            return default
        return self.raw[key]

    def str_(self, key: str, default: Any = ...) -> str:
        v = self.get(key, default)
        if not isinstance(v, str) or not v:
            raise SpecError(f"{self.where(key)}: expected a non-empty string, got {v!r}")
        return v

    def int_(self, key: str, default: int, lo: int, hi: int) -> int:
        v = self.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise SpecError(f"{self.where(key)}: expected an integer from {lo} to {hi}, got {v!r}")
        return v

    def float_(self, key: str, default: float, lo: float, hi: float) -> float:
        v = self.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= float(v) <= hi:
            raise SpecError(f"{self.where(key)}: expected a number from {lo} to {hi}, got {v!r}")
        return float(v)

    def choice(self, key: str, default: str, options: tuple[str, ...]) -> str:
        v = self.get(key, default)
        if v not in options:
            raise SpecError(f"{self.where(key)}: expected one of {list(options)}, got {v!r}")
        return str(v)

    def sub(self, key: str, default: Any = ...) -> _Fields:
        v = self.get(key, default)
        return _Fields(v, f"{self.path + '.' if self.path else ''}{key}", self.source)

    def done(self) -> None:
        extra = sorted(set(self.raw) - self.used)
        if extra:
            where = f"{self.source}: {self.path or 'top level'}"
            raise SpecError(f"{where}: unknown field(s) {extra}")


def _model(f: _Fields, kind: str) -> Any:
    if kind == "sgb":
        d = SgbParams()
        out: Any = SgbParams(
            num_boost_round=f.int_("num_boost_round", d.num_boost_round, 1, 1000),
            max_depth=f.int_("max_depth", d.max_depth, 1, 8),
            learning_rate=f.float_("learning_rate", d.learning_rate, 1e-4, 1.0),
            reg_lambda=f.float_("reg_lambda", d.reg_lambda, 0.0, 1e4),
            gamma=f.float_("gamma", d.gamma, 0.0, 1e4),
            sketch_eps=f.float_("sketch_eps", d.sketch_eps, 0.001, 0.5),
            he=f.choice("he", d.he, HE_SCHEMES),
            key_bits=f.int_("key_bits", d.key_bits, 1024, 4096),
        )
    elif kind == "sslr":
        e = SslrParams()
        out = SslrParams(
            epochs=f.int_("epochs", e.epochs, 1, 200),
            learning_rate=f.float_("learning_rate", e.learning_rate, 1e-5, 10.0),
            batch_size=f.int_("batch_size", e.batch_size, 1, 1 << 20),
            l2_norm=f.float_("l2_norm", e.l2_norm, 0.0, 100.0),
        )
    else:
        out = BankOnlyParams()
    f.done()
    return out


def parse(raw: Any, source: str = "job spec") -> JobSpec:
    """Validate a loaded YAML document into a JobSpec."""
    top = _Fields(raw, "", source)
    name = top.str_("name", "job")
    check_name_field(top, "name", name)
    job_type = top.choice("job", "joint_train", JOB_TYPES)
    key = top.str_("key", "uscc")
    pf = top.sub("parties")
    if len(pf.raw) < 2:
        raise SpecError(f"{pf.where('')[:-1].rstrip('.')}: a joint job needs at least two parties, got {len(pf.raw)}")
    parties = []
    for pname in pf.raw:
        one = pf.sub(str(pname))
        check_name_field(pf, str(pname), str(pname))
        feats = one.get("features", required=True)
        if not isinstance(feats, list) or not all(isinstance(c, str) and c for c in feats):
            raise SpecError(f"{one.where('features')}: expected a list of column names")
        dup = sorted({c for c in feats if feats.count(c) > 1})
        if dup:
            raise SpecError(f"{one.where('features')}: columns listed twice: {dup}")
        if key in feats:
            raise SpecError(f"{one.where('features')}: the key column {key!r} cannot be a feature")
        dataset = one.str_("dataset")
        check_name_field(one, "dataset", dataset)
        endpoint = one.get("endpoint", None)
        if endpoint is not None and (not isinstance(endpoint, str) or ":" not in endpoint):
            raise SpecError(f"{one.where('endpoint')}: expected host:port, got {endpoint!r}")
        one.done()
        parties.append(PartySpec(name=str(pname), dataset=dataset, features=tuple(feats), endpoint=endpoint))
    pf.done()
    seen: dict[str, str] = {}
    for p in parties:
        for c in p.features:
            if c in seen:
                raise SpecError(
                    f"{source}: parties.{p.name}.features: column {c!r} is also a feature of {seen[c]!r}; "
                    "vertical partitions must not overlap"
                )
            seen[c] = p.name
    lab = top.sub("label")
    label_party = lab.str_("party")
    label = lab.str_("column")
    lab.done()
    names = [p.name for p in parties]
    if label_party not in names:
        raise SpecError(f"{lab.where('party')}: {label_party!r} is not one of the parties {names}")
    if label in seen:
        raise SpecError(f"{lab.where('column')}: the label {label!r} is also listed as a feature")
    split = top.sub("split", {})
    test_fraction = split.float_("test_fraction", 0.3, 0.05, 0.9)
    seed = split.int_("seed", 7, 0, 2**31 - 1)
    split.done()
    models_f = top.sub("models", {"sgb": {}, "sslr": {}, "bank_only": {}})
    models: dict[str, Any] = {}
    for kind in list(models_f.raw):
        if kind not in MODEL_KINDS:
            raise SpecError(f"{models_f.where(str(kind))}: unknown model; expected some of {list(MODEL_KINDS)}")
        models[kind] = _model(models_f.sub(kind, {}), kind)
    models_f.done()
    if not any(k in models for k in ("sgb", "sslr")):
        raise SpecError(f"{source}: models: a joint job needs 'sgb' or 'sslr'")
    ref = top.sub("reference", {})
    pooled = ref.get("pooled", False)
    if not isinstance(pooled, bool):
        raise SpecError(f"{ref.where('pooled')}: expected true or false, got {pooled!r}")
    ref.done()
    purpose = top.str_("purpose", "credit_risk_model")
    check_name_field(top, "purpose", purpose)
    deployment = top.choice("deployment", "local", ("local", "remote"))
    if deployment == "remote":
        missing = [p.name for p in parties if p.endpoint is None]
        if missing:
            raise SpecError(f"{source}: deployment is remote but parties {missing} have no endpoint")
    top.done()
    return JobSpec(
        name=name,
        job_type=job_type,
        key=key,
        label_party=label_party,
        label=label,
        parties=tuple(parties),
        test_fraction=test_fraction,
        seed=seed,
        sgb=models.get("sgb"),
        sslr=models.get("sslr"),
        bank_only=models.get("bank_only"),
        pooled_reference=pooled,
        local=deployment == "local",
        purpose=purpose,
    )


def check_name_field(f: _Fields, key: str, value: str) -> None:
    if not is_plain_name(value):
        raise SpecError(f"{f.where(key)}: name {value!r} is invalid: {NAME_RULE}")


def loads(text: str, source: str = "job spec") -> JobSpec:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(f"{source}: not valid YAML: {e}") from None
    return parse(raw, source)


def load(path: str | Path) -> JobSpec:
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: job spec file not found")
    return loads(p.read_text(encoding="utf-8"), str(p))
