"""A party's side of online scoring: its piece of one firm's score, for the model's label owner only.

Every call is checked here, by this party, against what it holds itself:

* the caller is authenticated by its certificate and must be the label owner
  recorded in this party's own part record (``part.json``), not merely a
  member of the federation;
* the part asked for must be the registered one (the caller sends the hash it
  registered; a part that differs is refused, not used);
* this node's config must enable ``joint_score`` and its policy must grant the
  caller purpose ``scoring`` on the dataset and columns the part reads;
* a firm without a valid authorisation for the caller has its
  authorisation-required columns treated as missing, as in every job.

What leaves: for a linear part, its log-odds and their sums per reporting
category; for a tree part, one bit per own split node; for a firm this party
does not hold, ``held = false`` (and for a linear part the constant piece of a
firm with every feature missing). Never a value, a feature name or a threshold.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from enclave.data import uscc
from models import combine
from models import part as parts
from parties.node.config import NodeConfig
from parties.serving import live
from parties.serving.tally import Tally
from protocols.errors import ForbiddenError, NotFoundError, RefusedError, SpecError
from protocols.messages import Contribution, ContributionRequest

log = logging.getLogger("safehouse.serving")
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
PURPOSE = "scoring"
JOB_TYPE = "joint_score"


@dataclass(frozen=True)
class Pieces:
    """This party's piece for every firm of its table, computed when the table (re)loads,
    so a call is a lookup. ``withheld`` is the same with authorisation-required
    columns missing, for firms that have not authorised the caller."""

    codes: pd.Index
    partial: np.ndarray  # linear: (rows,)
    categories: np.ndarray  # linear: (rows, k), columns ``names``
    names: tuple[str, ...]
    bits: list[bytes]  # trees: each row's decision bits, packed
    absent: Contribution  # the reply for a firm this party does not hold
    withheld: Pieces | None = None

    def reply(self, at: int, withheld: bool) -> Contribution:
        if self.bits:
            return Contribution(held=True, decisions=self.bits[at], withheld=withheld)
        cats = dict(zip(self.names, map(float, self.categories[at]), strict=True))
        return Contribution(held=True, partial=float(self.partial[at]), categories=cats, withheld=withheld)


def compute_pieces(part: parts.Loaded, x: pd.DataFrame, categories: dict[str, str], gated: tuple[str, ...]) -> Pieces:
    withheld = None
    if gated:
        blanked = x.copy()
        blanked.loc[:, list(gated)] = np.nan
        withheld = compute_pieces(part, blanked, categories, ())
    if part.linear is not None:
        lp = combine.linear_piece(part.linear, x, categories)
        absent = Contribution(held=False, partial=float(lp.absent.to_numpy().sum()),
                              categories={str(k): float(v) for k, v in lp.absent.iloc[0].items()})  # fmt: skip
        return Pieces(x.index, lp.partial, lp.categories.to_numpy(), tuple(map(str, lp.categories.columns)), [],
                      absent, withheld)  # fmt: skip
    decisions = part.tree.decisions(part.tree_prep.apply(x).to_numpy(dtype="float64"))
    columns = [t[n] for t in decisions for n in sorted(t)]
    matrix = np.column_stack(columns) if columns else np.zeros((len(x), 0), dtype=bool)
    packed = np.packbits(matrix.astype(bool), axis=1)
    empty = np.zeros(len(x))
    return Pieces(x.index, empty, empty[:, None], (), [r.tobytes() for r in packed], Contribution(held=False),
                  withheld)  # fmt: skip


@dataclass(frozen=True)
class Served:
    """One of this party's parts, loaded, with its pieces for the table it reads."""

    part: parts.Loaded
    pieces: live.Watched[Pieces]


class Contributor:
    def __init__(self, config: NodeConfig, tally: Tally) -> None:
        self.config, self.tally = config, tally
        root = config.party_home.root
        self.models_root = root / "models"
        self.policy = live.party_policy(root, config.party)
        self.consent = live.Consent(root, config.home.trust_dir)
        self._served: dict[tuple[str, str], Served] = {}
        self._lock = threading.Lock()

    def preload(self) -> list[str]:
        """Load every part this party holds for another party's model; names what was loaded."""
        loaded = []
        for record_file in sorted(self.models_root.glob(f"*/*/{parts.FILE}")):
            job_id, kind = record_file.parent.parent.name, record_file.parent.name
            try:
                if parts.PartRecord.read(record_file.parent).label_party == self.config.party:
                    continue  # its own model: the scorer's to load
                self._load(job_id, kind)
            except (SpecError, NotFoundError) as e:
                log.warning("not serving %s/%s: %s", job_id, kind, e)
                continue
            loaded.append(f"{job_id}/{kind}")
        return loaded

    def _load(self, job_id: str, kind: str) -> Served:
        where = self.models_root / job_id / kind
        if not (where / parts.FILE).is_file():
            raise NotFoundError(f"party {self.config.party!r} holds no {kind} part trained by job {job_id}")
        if parts.PartRecord.read(where).label_party == self.config.party:
            # The label owner's own parts are the scorer's; it contributes to no one.
            raise NotFoundError(f"party {self.config.party!r} owns the label of job {job_id}; it serves no partner")
        part = parts.load(where)
        rec = part.record
        ds = self.config.party_home.dataset_dir(rec.dataset)

        def load() -> Pieces:
            table = live.load_table(ds, rec.features)
            cats = combine.reporting_categories(table.schema, rec.features)
            return compute_pieces(part, table.x, cats, table.gated)

        served = Served(part, live.Watched(f"{job_id}/{kind} over {rec.dataset!r}", live.table_files(ds), load))
        served.pieces.get()  # a table that cannot load is an error now, not at the first call
        with self._lock:
            self._served[(job_id, kind)] = served
        return served

    def _served_for(self, req: ContributionRequest) -> Served:
        if not (req.job_id and set(req.job_id) <= _ID_CHARS and len(req.job_id) <= 64):
            raise SpecError("job_id: not a job id")
        if req.kind not in parts.ONLINE_KINDS:
            raise SpecError(f"kind: expected one of {list(parts.ONLINE_KINDS)}")
        with self._lock:
            served = self._served.get((req.job_id, req.kind))
        if served is None:
            served = self._load(req.job_id, req.kind)
        if served.part.sha256 != req.part_sha256:
            raise RefusedError(f"party {self.config.party!r}: its part of model {req.model} version {req.version} "
                               "differs from the registered one; retrain or use another version")  # fmt: skip
        return served

    def _caller(self, identity: str, label_party: str) -> str:
        if not self.config.secure:
            return label_party  # --insecure-dev: nobody is authenticated
        fed = self.config.federation()
        names = [n for n, m in fed.parties.items() if m.identity == identity]
        if not names:
            raise ForbiddenError(f"{identity or 'an unauthenticated caller'} is not a party of the federation")
        return names[0]

    def contribute(self, req: ContributionRequest, identity: str = "") -> Contribution:
        caller, outcome = identity or "?", "refused"
        try:
            served = self._served_for(req)
            rec = served.part.record
            caller = self._caller(identity, rec.label_party)
            self._check(caller, rec)
            reason = uscc.problem(req.uscc)
            if reason is not None:
                outcome = "invalid_uscc"
                raise SpecError(f"uscc: {reason}")
            reply, outcome = self._piece(served, req.uscc, caller)
            return reply
        finally:
            self.tally.count(caller, f"{req.model}:{req.version}"[:120], outcome)

    def _check(self, caller: str, rec: parts.PartRecord) -> None:
        if caller != rec.label_party:
            raise ForbiddenError(f"{caller!r} is not the label owner of this model; only {rec.label_party!r} may score")
        if JOB_TYPE not in self.config.job_types:
            raise ForbiddenError(f"party {self.config.party!r} has not enabled {JOB_TYPE}")
        decision = self.policy.get().allows(caller, JOB_TYPE, PURPOSE, rec.dataset, rec.features)
        if not decision.allowed:
            raise ForbiddenError(decision.reason)

    def _piece(self, served: Served, code: str, caller: str) -> tuple[Contribution, str]:
        pieces = served.pieces.get()
        at = pieces.codes.get_indexer([code])[0]
        if at < 0:
            return pieces.absent, "not_held"
        if pieces.withheld is not None and not self.consent.authorised(code, caller, PURPOSE):
            return pieces.withheld.reply(at, withheld=True), "held_withheld"
        return pieces.reply(at, withheld=False), "held"
