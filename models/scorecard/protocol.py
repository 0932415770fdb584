"""A scorecard trained across parties: every party's process runs :func:`train` with the same calls.

Order (``L`` the label owner, ``P`` each partner)::

    every party     bins its own training rows (PartyBins)
    L -> P          public key, layout, one ciphertext of (y, 1) per row        (counts)
    P -> L          packed encrypted (positives, rows) per non-empty bin, bins per feature,
                    and each feature's reporting category
    L               merges bins, WOE and IV of every feature, selects by IV
    L, P -> SPU     L: its WOE-coded rows, labels, per P a bin-to-WOE block; P: its rows' one-hot bins
    SPU -> L        the coefficients                                            (lr)
    L -> P          P's points per fine bin, encrypted under L's key            (points)
    P -> L          per held-out row and category, P's points summed, re-randomised and packed

A call ``pyu(fn)`` runs only in its owner's process, so each closure below
reads and writes the running party's own state (:class:`_Local`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from enclave.files import write_atomic, write_json
from models import woe
from models.scorecard import counts, lr
from models.scorecard import points as pts
from models.scorecard.bins import FeatureWoe, PartyBins, select_by_iv
from models.secureboost.wire import Msg
from models.woe import BinTable
from protocols.errors import JobFailedError

SCHEMES = {"ou": "OU", "paillier": "ZPaillier"}
POINTS, TABLE_FILE, PK_FILE, KEY_FILE = "points.json", "points.ct", "he.pk", "he.key"


@dataclass(frozen=True)
class Settings:
    """What every party derives alike from the job's scorecard parameters (all public)."""

    bins: int
    method: str
    monotone: bool
    iv_min: float
    top_k: int  # 0: every feature at or above iv_min
    scaling: pts.Scaling
    epochs: int
    learning_rate: float
    batch_size: int
    l2_norm: float
    schema: str
    key_bits: int
    uplift: bool = False  # also fit, in the same SPU passes, each partner category alone and left out
    max_corr: float = 0.0  # drop the weaker of two selected features correlated beyond this (0: off)
    max_vif: float = 0.0  # then drop features whose variance inflation exceeds this (0: off)


@dataclass
class _Local:
    """This process's own state (only the running party's fields are ever filled)."""

    me: str
    settings: Settings
    features: list[str]
    categories: list[str]
    x_train: np.ndarray
    x_test: np.ndarray
    y: np.ndarray | None
    y_test: np.ndarray | None = None
    bins: PartyBins | None = None
    counter: counts.LabelSide | None = None
    woe: dict[str, list[FeatureWoe]] = field(default_factory=dict)  # per party, at the label owner
    selected: dict[str, list[int]] = field(default_factory=dict)
    tables: dict[str, Msg] = field(default_factory=dict)  # partners' encrypted point tables (their layouts)
    variants: list[tuple[str, str, np.ndarray]] = field(default_factory=list)  # (kind, category, kept columns)
    dropped: dict[tuple[str, int], str] = field(default_factory=dict)  # (party, feature) -> why, by correlation
    uplift: list[dict[str, Any]] = field(default_factory=list)
    own_table: list[np.ndarray] = field(default_factory=list)  # at the label owner: its points per fine bin
    base: float = 0.0  # at the label owner: the base points
    _assigned: dict[bool, np.ndarray] = field(default_factory=dict)  # held-out? -> each row's bin per feature

    def in_card(self, party: str, j: int) -> bool:
        """Whether a feature made it into the model (selected by IV, not dropped by correlation)."""
        return j in self.selected.get(party, []) and (party, j) not in self.dropped

    def own_bins(self) -> PartyBins:
        if self.bins is None:
            self.bins = PartyBins.fit(self.x_train, self.features, self.settings.bins, self.settings.method)
        return self.bins

    def assigned(self, test: bool = False) -> np.ndarray:
        """This party's training (or held-out) rows' bins, rows x features, computed once."""
        if test not in self._assigned:
            self._assigned[test] = self.own_bins().assign(self.x_test if test else self.x_train)
        return self._assigned[test]


def _party_state(me: str, s: Settings, features: list[str], categories: Mapping[str, str], x_train: np.ndarray,
                 x_test: np.ndarray, y: tuple[np.ndarray, np.ndarray] | None) -> _Local:  # fmt: skip
    cats = [str(categories.get(f) or "other") for f in features]
    return _Local(me, s, list(features), cats, np.asarray(x_train, "float64"), np.asarray(x_test, "float64"),
                  None if y is None else y[0], None if y is None else y[1])  # fmt: skip


@dataclass(frozen=True)
class Trained:
    """At the label owner: held-out probabilities of default and the IV table; None elsewhere."""

    probability: np.ndarray
    iv: list[dict[str, Any]]
    points: list[dict[str, Any]]  # the label owner's own features, per bin (small cells suppressed on release)
    csi: list[dict[str, Any]]  # the label owner's own features: training rows against held-out rows
    uplift: list[dict[str, Any]]  # held-out AUC of each variant (empty unless asked for)


def train(pyus: Mapping[str, Any], spu: Any, label: str, me: str, s: Settings, features: list[str],
          categories: Mapping[str, str], x_train: np.ndarray, x_test: np.ndarray,
          y: tuple[np.ndarray, np.ndarray] | None, where: Path, progress: Callable[[str], None]) -> Any:  # fmt: skip
    """Train and save this party's part under ``where``; returns a label-owner object holding :class:`Trained`.

    ``y`` is (training labels, held-out labels) at the label owner, None elsewhere."""
    import secretflow as sf

    local = _party_state(me, s, features, categories, x_train, x_test, y)
    partners = sorted(p for p in pyus if p != label)

    def at(party: str, fn: Callable[..., Any], *args: Any) -> Any:
        return pyus[party](fn, num_returns=1)(*args)

    progress("binning and counting under encryption")
    done = _bin_and_count(pyus, label, local, partners, require_selection=True)
    progress("WOE features into the SPU")
    blocks = [at(label, lambda _, p=p: _block(local, p), done).to(spu) for p in partners]

    def design(test: bool) -> Any:
        return spu(lr.design)(at(label, lambda _: _own_woe(local, test), done).to(spu),
                              [at(p, lambda: _onehot(local, test)).to(spu) for p in partners], blocks)  # fmt: skip

    x = design(test=False)
    sf.wait([x])
    if s.max_corr > 0 or s.max_vif > 0:
        progress("correlation of the selected WOE features (covariance from the SPU to the label owner)")
        done = at(label, lambda c: _decorrelate(local, np.asarray(c)), spu(lr.covariance)(x).to(pyus[label]))
    mask = at(label, lambda _: _mask(local), done).to(spu)
    what = "every uplift variant with the model" if s.uplift else "the model"
    progress(f"logistic regression on WOE in the SPU: {what}")
    w = lr.fit(spu, x, at(label, lambda _: local.y, done).to(spu), mask, s.epochs, s.learning_rate, s.l2_norm,
               s.batch_size, lambda e: progress(f"epoch {e}/{s.epochs}"))  # fmt: skip
    measured = done
    if s.uplift:
        progress("uplift: every variant's held-out log-odds, to the label owner")
        found = spu(lr.logits)(design(test=True), w).to(pyus[label])
        measured = at(label, lambda z: _uplift(local, np.asarray(z)), found)
    full = spu(lambda m: m[:, 0])(w).to(pyus[label])
    tables = at(label, lambda c, _: _points(local, np.asarray(c).ravel(), where), full, measured)
    sums = []
    for p in partners:
        mine = at(label, lambda t, p=p: t[p], tables).to(pyus[p])
        sums.append(at(p, lambda t: _keep_and_score(local, t, where), mine).to(pyus[label]))
    progress("scoring the held-out rows")
    return at(label, lambda *r: _finish(local, dict(zip(partners, r, strict=True))), *sums)


def binning(pyus: Mapping[str, Any], label: str, me: str, s: Settings, features: list[str],
            categories: Mapping[str, str], x: np.ndarray, y: np.ndarray | None) -> tuple[Any, PartyBins]:  # fmt: skip
    """Bin, count under encryption and compute WOE and IV, without a model (the binning job).

    Returns a label-owner object holding the IV rows (as :attr:`Trained.iv`; None elsewhere) and
    this party's own bins. The label owner's own bins' WOE table (its features only) comes with
    its IV rows under ``"own_woe"``."""
    local = _party_state(me, s, features, categories, x, x[:0], None if y is None else (y, y[:0]))
    partners = sorted(p for p in pyus if p != label)
    done = _bin_and_count(pyus, label, local, partners, require_selection=False)
    found = pyus[label](lambda _: {"iv": _iv_rows(local), "own_woe": _own_woe_table(local)}, num_returns=1)(done)
    return found, local.own_bins()


def _bin_and_count(pyus: Mapping[str, Any], label: str, local: _Local, partners: list[str],
                   require_selection: bool) -> Any:  # fmt: skip
    """Every party bins its own rows; partners' per-bin counts reach the label owner under its HE key only."""
    request = pyus[label](lambda: _request(local), num_returns=1)()
    replies = [pyus[p](lambda q: _reply(local, q), num_returns=1)(request.to(pyus[p])).to(pyus[label])
               for p in partners]  # fmt: skip
    return pyus[label](lambda *r: _woe(local, dict(zip(partners, r, strict=True)), require_selection),
                       num_returns=1)(*replies)  # fmt: skip


def _request(local: _Local) -> Msg:
    if local.y is None:
        raise RuntimeError("the label owner, and only it, holds the label")
    local.counter = counts.LabelSide(local.y, local.settings.schema, local.settings.key_bits)
    return local.counter.request()


def _reply(local: _Local, request: Msg) -> Msg:
    b = local.own_bins()
    out = counts.reply(request, local.assigned(), b.n_bins)
    return out | {"features": list(local.features), "categories": list(local.categories)}


def _woe(local: _Local, replies: Mapping[str, Msg], require_selection: bool = True) -> bool:
    """At the label owner: every feature's WOE and IV (own from plaintext counts), then the selection."""
    s, counter, y = local.settings, local.counter, local.y
    if counter is None or y is None:
        raise RuntimeError("counts were not requested here")
    own_bins = local.assigned()
    fine = {local.me: [BinTable(*woe.counts(own_bins[:, j], y, k)) for j, k in enumerate(local.own_bins().n_bins)]}
    names, cats = {local.me: local.features}, {local.me: local.categories}
    for p, r in replies.items():
        fine[p] = counter.tables(r)
        names[p], cats[p] = [str(f) for f in r["features"]], [str(c) for c in r["categories"]]
        if len(names[p]) != len(fine[p]) or len(cats[p]) != len(fine[p]):
            raise ValueError(f"{p!r} sent counts for {len(fine[p])} features but names {len(names[p])}")
    for p, tables in fine.items():
        local.woe[p] = [FeatureWoe.build(p, f, c, t, s.method, s.bins, s.monotone)
                        for f, c, t in zip(names[p], cats[p], tables, strict=True)]  # fmt: skip
    ivs = [(fw.iv(), p, j) for p, fws in local.woe.items() for j, fw in enumerate(fws)]
    local.selected = select_by_iv(ivs, s.iv_min, s.top_k)
    if require_selection and not any(local.selected.values()):
        raise JobFailedError(f"scorecard: no feature reaches iv_min {s.iv_min}; lower it")
    return True


def _own_woe(local: _Local, test: bool = False) -> np.ndarray:
    own_bins = local.assigned(test)
    cols = [local.woe[local.me][j].fine_woe()[own_bins[:, j]] for j in local.selected[local.me]]
    return np.column_stack(cols).astype("float32") if cols else np.zeros((len(own_bins), 0), "float32")


def _onehot(local: _Local, test: bool = False) -> np.ndarray:
    """At a partner: its rows' fine bins, one-hot over all its features (rows x total bins)."""
    b, bins = local.own_bins(), local.assigned(test)
    starts = np.concatenate([[0], np.cumsum(b.n_bins)[:-1]]).astype("int64")
    out = np.zeros((bins.shape[0], int(sum(b.n_bins))), dtype="float32")
    out[np.arange(bins.shape[0])[:, None], bins + starts] = 1.0
    return out


def _block(local: _Local, partner: str) -> np.ndarray:
    """At the label owner: a partner's fine bins (rows) to the WOE of its selected features (columns)."""
    fws = local.woe[partner]
    n_bins = [len(fw.fine_woe()) for fw in fws]
    starts = np.concatenate([[0], np.cumsum(n_bins)[:-1]]).astype("int64")
    out = np.zeros((int(sum(n_bins)), len(local.selected[partner])), dtype="float32")
    for col, j in enumerate(local.selected[partner]):
        out[starts[j] : starts[j] + n_bins[j], col] = fws[j].fine_woe()
    return out


def _mask(local: _Local) -> np.ndarray:
    """At the label owner: which selected columns each variant keeps, (columns + bias) x variants.

    The first variant is the model. With uplift: the label owner's features alone, then per
    partner category that category alone on top of them, and every feature but that category."""
    cols = [(p, local.woe[p][j].category) for p, j in _columns(local)]
    partner = np.array([p != local.me for p, _ in cols])
    every = np.array([(p, j) not in local.dropped for p, j in _columns(local)], dtype=bool)
    local.variants = [("model", "", every)]
    if local.settings.uplift:
        local.variants.append(("bank only", "", ~partner & every))
        for cat in sorted({c for p, c in cols if p != local.me}):
            of = partner & np.array([c == cat for _, c in cols])
            local.variants += [("alone", cat, (~partner | of) & every), ("left out", cat, every & ~of)]
    keep = np.column_stack([v for _, _, v in local.variants]).astype("float32")
    return np.vstack([keep, np.ones((1, keep.shape[1]), dtype="float32")])


def _columns(local: _Local) -> list[tuple[str, int]]:
    """The design's columns in order: the label owner's selected features, then each partner's."""
    return [(p, j) for p in [local.me, *sorted(q for q in local.woe if q != local.me)] for j in local.selected[p]]


def _decorrelate(local: _Local, cov: np.ndarray) -> bool:
    """At the label owner: drop the weaker (lower IV) of each pair correlated beyond ``max_corr``,
    then, one at a time, the feature of highest variance inflation above ``max_vif``."""
    s, cols = local.settings, _columns(local)
    sd = np.sqrt(np.clip(np.diag(cov), 1e-12, None))
    corr = cov / np.outer(sd, sd)
    order = sorted(range(len(cols)), key=lambda i: -local.woe[cols[i][0]][cols[i][1]].iv())
    kept: list[int] = []
    for i in order:
        worst = max((abs(corr[i, k]) for k in kept), default=0.0)
        if s.max_corr > 0 and worst > s.max_corr:
            local.dropped[cols[i]] = f"|corr| {worst:.2f} > {s.max_corr}"
        else:
            kept.append(i)
    while s.max_vif > 0 and len(kept) > 1:
        vif = np.diag(np.linalg.pinv(corr[np.ix_(kept, kept)]))
        if vif.max() <= s.max_vif:
            break
        i = kept.pop(int(np.argmax(vif)))
        local.dropped[cols[i]] = f"VIF {vif.max():.1f} > {s.max_vif}"
    return True


def _uplift(local: _Local, z: np.ndarray) -> bool:
    """At the label owner: each variant's held-out AUC, and what each partner category adds."""
    from models import metrics

    if local.y_test is None:
        raise RuntimeError("uplift is measured at the label owner")
    auc = {(k, c): metrics.auc(local.y_test, z[:, i]) for i, (k, c, _) in enumerate(local.variants)}
    base, full = auc[("bank only", "")], auc[("model", "")]
    cats = sorted({c for k, c, _ in local.variants if c})
    local.uplift = [{"category": c, "auc_alone": round(auc[("alone", c)], 6),
                     "uplift_alone": round(auc[("alone", c)] - base, 6), "auc_left_out": round(auc[("left out", c)], 6),
                     "loss_left_out": round(full - auc[("left out", c)], 6)} for c in cats]  # fmt: skip
    local.uplift.insert(0, {"category": "(bank only / full model)", "auc_alone": round(base, 6), "uplift_alone": 0.0,
                            "auc_left_out": round(full, 6), "loss_left_out": 0.0})  # fmt: skip
    return True


def _points(local: _Local, coef: np.ndarray, where: Path) -> dict[str, Msg]:
    """At the label owner: every point table; its own saved, each partner's encrypted for it."""
    sc, counter = local.settings.scaling, local.counter
    if counter is None:
        raise RuntimeError("no key here")
    order = [local.me, *sorted(p for p in local.woe if p != local.me)]
    at, table = 0, {}
    for p in order:
        fws = local.woe[p]
        beta = np.zeros(len(fws))
        beta[local.selected[p]] = coef[at : at + len(local.selected[p])]
        at += len(local.selected[p])
        table[p] = [sc.feature_points(b, fw.fine_woe()) for b, fw in zip(beta, fws, strict=True)]
    out = {p: pts.encrypt_table(counter.he, table[p], [fw.category for fw in local.woe[p]]) for p in order[1:]}
    local.tables, local.own_table, local.base = out, table[local.me], float(sc.base_points(float(coef[at])))
    _save_label_part(local, where, table)
    return out


def _save_label_part(local: _Local, where: Path, table: dict[str, list[np.ndarray]]) -> None:
    where.mkdir(parents=True, exist_ok=True)
    local.own_bins().save(where)
    if local.counter is not None:  # the partners' tables are encrypted under this key: keep it, to score
        write_atomic(where / KEY_FILE, local.counter.he.secret_key())
        (where / KEY_FILE).chmod(0o600)
        write_atomic(where / PK_FILE, local.counter.he.public_key())
    s = local.settings.scaling
    write_json(where / POINTS, {
        "base_points": local.base, "scaling": {"base_score": s.base_score, "base_odds": s.base_odds, "pdo": s.pdo},
        "features": [{"party": p, "feature": fw.feature, "category": fw.category, "iv": fw.iv(),
                      "selected": local.in_card(p, j), "groups": fw.groups, "points": table[p][j].tolist()}
                     for p, fws in local.woe.items() for j, fw in enumerate(fws)],
        "partners": {p: {"layout": t["layout"], "n_bins": t["n_bins"]} for p, t in local.tables.items()},
    })  # fmt: skip


def _keep_and_score(local: _Local, table: Msg, where: Path) -> Msg:
    """At a partner: keep its encrypted table beside its split points; sum its held-out rows' points."""
    where.mkdir(parents=True, exist_ok=True)
    b = local.own_bins()
    if [int(n) for n in table["n_bins"]] != b.n_bins:
        raise ValueError("the point table does not match this party's bins")
    b.save(where)
    write_atomic(where / TABLE_FILE, bytes(table["ct"]))
    write_atomic(where / PK_FILE, bytes(table["pk"]))
    write_json(where / POINTS, {"features": local.features, "categories": local.categories,
                                       "n_bins": b.n_bins, "layout": list(table["layout"])})  # fmt: skip
    order = sorted(set(local.categories))
    return pts.category_sums(table, bytes(table["pk"]), local.assigned(test=True), local.categories, order)


def _finish(local: _Local, sums: Mapping[str, Msg]) -> Trained:
    """At the label owner: held-out scores (own points, base, partners' decrypted sums) and the IV table."""
    if local.counter is None:
        raise RuntimeError("no key here")
    score = np.zeros(len(local.x_test))
    for p, reply in sums.items():
        order = sorted({fw.category for fw in local.woe[p]})
        layout = list(local.tables[p]["layout"])
        score += pts.open_sums(local.counter.he, layout, reply, len(local.x_test), order).sum(axis=1)
    own = local.assigned(test=True)
    score += local.base + sum(t[own[:, j]] for j, t in enumerate(local.own_table))
    sc = local.settings.scaling
    probability = 1.0 / (1.0 + np.exp((score - sc.offset) / sc.factor))
    return Trained(probability, _iv_rows(local), _own_points_table(local), _own_csi(local), local.uplift)


def _iv_rows(local: _Local) -> list[dict[str, Any]]:
    """At the label owner: IV of every feature of every party, and whether it made the card."""
    return [{"party": p, "feature": fw.feature, "category": fw.category, "iv": round(fw.iv(), 6),
             "bins": len(fw.groups), "selected": local.in_card(p, j), "dropped": local.dropped.get((p, j), "")}
            for p, fws in local.woe.items() for j, fw in enumerate(fws)]  # fmt: skip


def _own_woe_table(local: _Local) -> list[dict[str, Any]]:
    """At the label owner: its own features' bins, groups, counts and WOE (a partner's bins stay by index only)."""
    b, rows = local.own_bins(), []
    for j, fw in enumerate(local.woe[local.me]):
        group = {i: g for g, members in enumerate(fw.groups) for i in members}
        woe_of = fw.woe()
        for i, label in enumerate(b.labels(j)):
            g = group[i]
            rows.append({"feature": fw.feature, "bin": label, "group": g, "firms": int(fw.table.rows[g]),
                         "defaults": int(fw.table.positives[g]), "woe": round(float(woe_of[g]), 4)})  # fmt: skip
    return rows


def _own_points_table(local: _Local) -> list[dict[str, Any]]:
    """The label owner's own bins with their WOE, points and whether the feature made the card."""
    points = [(float(v), local.in_card(local.me, j)) for j, t in enumerate(local.own_table) for v in t]
    return [row | {"points": round(v, 1), "selected": chosen}
            for row, (v, chosen) in zip(_own_woe_table(local), points, strict=True)]  # fmt: skip


def _own_csi(local: _Local) -> list[dict[str, Any]]:
    """Characteristic stability of each own feature: its training bins' shares against the held-out rows'."""
    from models.scoring import shares_index

    b, train, held_out_bins = local.own_bins(), local.assigned(), local.assigned(test=True)

    def csi(j: int, k: int) -> float:
        before, after = np.bincount(train[:, j], minlength=k), np.bincount(held_out_bins[:, j], minlength=k)
        return round(shares_index(before, after), 6)

    return [{"party": local.me, "feature": f, "csi": csi(j, k)}
            for j, (f, k) in enumerate(zip(b.features, b.n_bins, strict=True))]  # fmt: skip
