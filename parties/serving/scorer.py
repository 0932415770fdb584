"""The label owner's side of online scoring: one firm's score, band and reasons.

For each registered model it is the label owner of, the service keeps its own
part, the training population's band edges and the table it looks firms up in
(``--dataset``, else the table the model was trained on). A call names a firm
(and optionally the model and some of the bank's own feature values, for an
applicant whose form is not in the table yet). The service checks its own
policy for each partner, asks each partner's scoring service for its piece
over mutual TLS, and combines: its own features count by name, a partner's by
reporting category, as in batch scoring. A partner that does not hold the firm
says so; the firm is then scored as if that partner's features were missing,
and ``held_by_all`` is false.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from enclave.data import dataset, uscc
from models import part as parts
from models import scoring
from models.joint_score.assemble import POPULATION
from models.joint_score.params import ModelRef
from models.linear import by_feature
from models.secureboost import ActivePart, RowWalker
from parties.node.config import NodeConfig
from parties.serving import live
from parties.serving.contributor import JOB_TYPE, PURPOSE
from parties.serving.tally import Tally
from parties.tracking import Tracker
from parties.transport.grpc_links import GrpcScoringLink
from protocols.errors import ForbiddenError, NotFoundError, SafehouseError, SpecError, UnavailableError
from protocols.messages import Contribution, ContributionRequest

log = logging.getLogger("safehouse.serving")


class ServingError(Exception):
    """A refusal the HTTP endpoint returns as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


@dataclass(frozen=True)
class OwnRows:
    """The label owner's table and its own part applied to every row of it (computed on load):
    a linear part's terms per feature, a tree part's prepared features."""

    table: live.Table
    values: np.ndarray
    names: tuple[str, ...]


def own_values(part: parts.Loaded, x: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    if part.linear is not None:
        terms = by_feature(part.linear.terms(x))
        return terms.to_numpy(dtype="float64"), tuple(map(str, terms.columns))
    return part.tree_prep.apply(x).to_numpy(dtype="float64"), tuple(map(str, x.columns))


@dataclass(frozen=True)
class ServedModel:
    ref: ModelRef
    part: parts.Loaded
    edges: np.ndarray
    rows: live.Watched[OwnRows]
    dataset: str
    walker: RowWalker | None = None  # a tree model's one-row path

    @property
    def peers(self) -> list[str]:
        return sorted(p for p in self.ref.parts if p != self.part.record.party)

    @property
    def label(self) -> str:
        return f"{self.ref.name}:{self.ref.version}"


def load_models(config: NodeConfig, names: list[str] | None, dataset_name: str | None) -> list[ServedModel]:
    """The registered models (latest version unless ``NAME:VERSION``) whose label owner is this party."""
    tracker = Tracker(config.home.tracking_uri)
    wanted = names if names else tracker.registered()
    out = []
    for item in wanted:
        name, _, version = item.partition(":")
        version, manifest = tracker.manifest(name, version or None)
        if manifest.get("label_party") != config.party:
            if names:
                raise SpecError(f"model {name}:{version}: its label owner is {manifest.get('label_party')!r}, "
                                f"not {config.party!r}")  # fmt: skip
            continue
        if not names and manifest.get("model") not in parts.ONLINE_KINDS:
            log.warning("model %s:%s is a %s, which is scored in batch only; not loaded", name, version,
                        manifest.get("model"))  # fmt: skip
            continue
        out.append(_load_model(config, name, version, manifest, dataset_name))
    return out


def _load_model(
    config: NodeConfig, name: str, version: str, manifest: dict[str, Any], dataset_name: str | None
) -> ServedModel:
    kind, job_id = str(manifest["model"]), str(manifest["job_id"])
    ref = ModelRef(name, version, kind, job_id, {p: str(i["part_sha256"]) for p, i in manifest["parties"].items()})
    where = config.party_home.root / "models" / job_id / kind
    if not where.is_dir():
        raise NotFoundError(f"party {config.party!r} holds no part of model {name}:{version}")
    loaded = parts.load(where)
    if loaded.sha256 != ref.parts[config.party]:
        raise SpecError(f"model {name}:{version}: this party's part differs from the registered one; retrain")
    population = np.load(where / POPULATION) if (where / POPULATION).is_file() else None
    ds = dataset_name or loaded.record.dataset
    directory = config.party_home.dataset_dir(ds)

    def load() -> OwnRows:
        table = live.load_table(directory, loaded.record.features)
        return OwnRows(table, *own_values(loaded, table.x))

    rows = live.Watched(f"{name}:{version} over {ds!r}", live.table_files(directory), load)
    rows.get()
    walker = RowWalker.of(loaded.tree) if isinstance(loaded.tree, ActivePart) else None
    return ServedModel(ref, loaded, scoring.band_edges(population), rows, ds, walker)


class Scorer:
    def __init__(self, config: NodeConfig, tally: Tally, models: list[ServedModel], reasons: int = 3) -> None:
        self.config, self.tally, self.reasons = config, tally, reasons
        self.models = {m.label: m for m in models}
        self.latest = {m.ref.name: m for m in sorted(models, key=lambda m: int(m.ref.version))}
        self.policy = live.party_policy(config.party_home.root, config.party)
        self._links: dict[str, tuple[str, GrpcScoringLink]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="peer")

    def loaded(self) -> list[dict[str, str]]:
        return [{"model": m.ref.name, "version": m.ref.version, "kind": m.ref.kind, "dataset": m.dataset}
                for m in self.models.values()]  # fmt: skip

    def score(self, body: Any, caller: str) -> dict[str, Any]:
        model_label, outcome = "?", "INTERNAL"
        try:
            request = _request(body)
            model = self._model(request.get("model"))
            model_label = model.label
            out = self._score(model, request)
            outcome = "ok"
            return out
        except ServingError as e:
            outcome = e.code
            raise
        finally:
            self.tally.count(caller, model_label, outcome)

    def _model(self, wanted: Any) -> ServedModel:
        if wanted is None:
            if len(self.latest) == 1:
                return next(iter(self.latest.values()))
            raise ServingError("INVALID_REQUEST", 400, f"name a model; loaded: {sorted(self.models)}")
        if not isinstance(wanted, str):
            raise ServingError("INVALID_REQUEST", 400, "model: expected NAME or NAME:VERSION")
        found = self.models.get(wanted) if ":" in wanted else self.latest.get(wanted)
        if found is None:
            raise ServingError("MODEL_NOT_LOADED", 404, f"model {wanted!r} is not loaded here; loaded: "
                               f"{sorted(self.models)}")  # fmt: skip
        return found

    def _score(self, model: ServedModel, request: dict[str, Any]) -> dict[str, Any]:
        code = request["uscc"]
        rows = model.rows.get()  # once per call: names and values from the same table version
        own = _own_row(model, rows, code, request.get("features"))
        self._check_policy(model)
        replies = self._pieces(model, code)
        raw, names, values = _combine(model, rows.names, own, replies)
        pd_ = scoring.probability(np.array([raw]), model.part.link)
        return {
            "uscc": code,
            "score": float(pd_[0]),
            "band": str(scoring.bands(pd_, model.edges)[0]),
            "reasons": scoring.top_reasons(names, values, self.reasons),
            "model": model.ref.name,
            "version": model.ref.version,
            "kind": model.ref.kind,
            "held_by_all": all(r.held for r in replies.values()),
            "authorisation_missing": sorted(p for p, r in replies.items() if r.withheld),
            "scored_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        }

    def _check_policy(self, model: ServedModel) -> None:
        pol = self.policy.get()
        for peer in model.peers:
            d = pol.allows(peer, JOB_TYPE, PURPOSE, model.dataset, model.part.record.features)
            if not d.allowed:
                raise ServingError("FORBIDDEN", 403, d.reason)

    def _pieces(self, model: ServedModel, code: str) -> dict[str, Contribution]:
        def ask(peer: str) -> Contribution:
            req = ContributionRequest(model.ref.name, model.ref.version, model.ref.job_id, model.ref.kind,
                                      model.ref.parts[peer], code)  # fmt: skip
            try:
                return self._link(peer).contribute(req)
            except UnavailableError as e:
                raise ServingError("PARTNER_UNAVAILABLE", 503, f"{peer}: {e}") from None
            except (ForbiddenError, SpecError, NotFoundError, SafehouseError) as e:
                raise ServingError("PARTNER_REFUSED", 502, f"{peer} refused: {e}") from None

        peers = model.peers
        if len(peers) == 1:
            return {peers[0]: ask(peers[0])}
        futures = {p: self._pool.submit(ask, p) for p in peers}
        return {p: f.result() for p, f in futures.items()}

    def _link(self, peer: str) -> GrpcScoringLink:
        member = self.config.federation().party(peer)
        if member.scoring is None:
            raise UnavailableError(f"the federation file names no scoring service for {peer!r}")
        with self._lock:
            cached = self._links.get(peer)
            if cached is None or cached[0] != member.scoring:
                cached = (member.scoring, GrpcScoringLink(peer, member.scoring, self.config.tls, member.identity))
                self._links[peer] = cached
        return cached[1]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ServingError("INVALID_REQUEST", 400, 'expected a JSON object such as {"uscc": "..."}')
    unknown = sorted(set(body) - {"uscc", "model", "features"})
    if unknown:
        raise ServingError("INVALID_REQUEST", 400, f"unknown field(s) {unknown}")
    code = body.get("uscc")
    if not isinstance(code, str):
        raise ServingError("INVALID_USCC", 400, "uscc: expected the firm's 18-character unified social credit code")
    why = uscc.problem(code)
    if why is not None:
        raise ServingError("INVALID_USCC", 400, f"uscc: {why}")
    return body


def _own_row(model: ServedModel, rows: OwnRows, code: str, features: Any) -> np.ndarray:
    """The firm's own values (one row): from the table, or computed with the values the call gives."""
    table = rows.table
    at = table.x.index.get_indexer([code])[0]
    if features is None:
        if at < 0:
            raise ServingError("UNKNOWN_FIRM", 404, f"firm {code} is not in this party's table; "
                               "send its features to score an applicant")  # fmt: skip
        return rows.values[at : at + 1]
    if not isinstance(features, dict):
        raise ServingError("INVALID_FEATURES", 400, "features: expected an object of name -> value")
    unknown = sorted(set(features) - set(table.x.columns))
    if unknown:
        raise ServingError("INVALID_FEATURES", 400, f"features: not features of this model: {unknown}")
    row = (table.x.iloc[[at]] if at >= 0 else table.missing_row()).copy()
    for name, value in features.items():
        row.loc[:, name] = _encode(table, name, value)
    return own_values(model.part, row)[0]


def _encode(table: live.Table, name: str, value: Any) -> float:
    """A value the call sends, checked against its column and encoded as the table's are."""
    col = table.schema.column(name)
    raw: Any = value
    if value is None:
        return float("nan")
    if col.type == "category":
        if str(value) not in col.values:
            raise ServingError("INVALID_FEATURES", 400, f"features.{name}: expected one of {list(col.values)}")
        raw = str(value)
    elif col.type == "date":
        try:
            raw = pd.Timestamp(str(value))
        except ValueError:
            raise ServingError("INVALID_FEATURES", 400, f"features.{name}: expected a date YYYY-MM-DD") from None
    elif not (col.type == "bool" and isinstance(value, bool)) and (
        isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value)
    ):
        raise ServingError("INVALID_FEATURES", 400, f"features.{name}: expected a finite number")
    frame = pd.DataFrame({name: pd.Series([raw], dtype="datetime64[ns]" if col.type == "date" else None)})
    return float(dataset.encode_features(table.schema, frame, [name])[name].iloc[0])


def _combine(model: ServedModel, own_names: tuple[str, ...], own: np.ndarray, replies: dict[str, Contribution]) -> Any:
    """Raw score, contribution names and values of one firm."""
    part = model.part
    if part.linear is not None:
        names, values = list(own_names), [own[0]]
        for r in replies.values():
            names += list(r.categories)
            values.append(np.fromiter(r.categories.values(), dtype="float64", count=len(r.categories)))
        joined = np.concatenate(values)
        return float(joined.sum() + (part.linear.bias or 0.0)), names, joined
    walker = model.walker
    if walker is None:
        raise RuntimeError(f"model {model.label} has neither a linear part nor a tree walker")
    flat = {p: (r.decisions if r.held else None) for p, r in replies.items()}
    try:
        raw, values = walker.score(own[0], flat)
    except ValueError as e:
        raise ServingError("PARTNER_REFUSED", 502, f"a partner sent malformed decision bits: {e}") from None
    return raw, list(walker.columns), np.asarray(values)
