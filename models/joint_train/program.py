"""The ``joint_train`` program: what every party's worker runs for one job.

Every party executes this same program in its own worker process (SecretFlow
production mode). A device function such as ``pyu(fn)()`` runs only at the
process that owns ``pyu``; elsewhere it is a handle. So each closure below that
reads local files reads the *running* party's own files, and nothing crosses a
boundary but what SecretFlow's protocols send: PSI messages, HEU ciphertexts,
SPU shares, and the revealed predictions that go to the label owner alone.

Stages: PSI on the key (RR22, revealing only the intersection) -> a shared
keyed-hash split -> SecureBoost (HEU) -> secret-shared LR (SPU) -> the label
owner's own bank-only LightGBM -> metrics and plots at the label owner -> each
party saves its own model part. Stage functions compute; reading and writing
files happens at the edges (``LocalData.load``, the ``_save_*`` functions and
``evaluate.write``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from enclave.controls import desens
from enclave.files import sha256_dir, write_atomic, write_json
from models import combine, metrics, psi, scoring, trees
from models.federation import Federation
from models.jobtype import JobContext, ProgramResult, StageClock
from models.joint_train import description as D
from models.joint_train import evaluate
from models.joint_train.params import JointTrainParams, ScorecardParams, SgbParams, SslrParams
from models.local import Aligned, LocalData
from models.part import KINDS, PartRecord
from models.prep import LinearPrep, TreePrep, holdout_mask
from models.profile import Profile
from protocols.errors import JobFailedError

# SS-LR's sigmoid in SPU (SecretFlow's first-order Taylor form); scoring applies the same link.
SSLR_LINK = "t1"


@dataclass(frozen=True)
class Split:
    """This party's aligned features split into train and held-out rows, with its own preparation."""

    aligned: Aligned
    test: np.ndarray  # True for held-out rows; identical at every party
    x_train: pd.DataFrame
    x_test: pd.DataFrame
    tree_prep: TreePrep
    lin_prep: LinearPrep
    y: np.ndarray | None  # the label, at the label owner only


def run(ctx: JobContext, devices: Mapping[str, Any]) -> ProgramResult:
    """Run the job; return this party's releasable result (the worker writes it)."""
    import secretflow as sf

    spec, p = ctx.spec, JointTrainParams.of(ctx.spec)
    clock = StageClock(ctx.emit)
    local = LocalData.load(ctx)
    fed = Federation(spec.party_names, spec.label_party)
    how = "RR22" if len(spec.parties) == 2 else "ECDH 3PC"
    with clock.stage(D.STAGE_PSI, f"PSI ({how}) on {spec.key}"):
        keys = psi.intersect(devices["spu"], fed.pyus, ctx, local)
    ctx.emit(D.STAGE_PSI, f"intersection: {len(keys)} firms")
    with clock.stage(D.STAGE_SPLIT, "aligning and splitting"):
        split = _split(local, keys, p)
    y_train = fed.label_frame(lambda: _label_rows(split, spec.label_column, ~split.test))
    scores: dict[str, Any] = {}
    parts: dict[str, str] = {}
    if p.sgb is not None:
        with clock.stage(D.STAGE_SGB, f"SecureBoost: {p.sgb.num_boost_round} trees, depth {p.sgb.max_depth}"):
            scores["sgb"] = _sgb(ctx, p.sgb, fed, split, local)
    if p.sslr is not None:
        with clock.stage(D.STAGE_SSLR, f"SS-LR (SPU): {p.sslr.epochs} epochs"):
            scores["sslr"], saved = _sslr(ctx, p.sslr, devices["spu"], fed, split, y_train)
            sf.wait(saved)
    if p.scorecard is not None:
        with clock.stage(D.STAGE_SCORECARD, f"scorecard: {p.scorecard.bins} bins, WOE, LR in the SPU, points"):
            scores["scorecard"] = _scorecard(ctx, p.scorecard, devices["spu"], fed, split, local)
    if p.bank_only is not None:
        with clock.stage(D.STAGE_BANK_ONLY, "bank-only LightGBM on the label owner's own columns"):
            scores["bank_only"] = fed.label(_bank_only)(split, p.tree_params, p.seed)
    with clock.stage(D.STAGE_SAVE, "scoring and saving model parts"):
        # A label-owner device call at every party, so the call sequence is the
        # same everywhere; ``sf.wait`` reveals nothing but None.
        sf.wait([fed.label(_evaluate_here)(ctx, split, list(scores), *scores.values())])
        found, artifacts = _read_evaluation(ctx)
        # Hashed last: the label owner's parts also keep their training population's scores.
        parts = _record_parts(ctx, local, Profile.fit(split.x_train))
    found["psi_intersection"] = float(len(keys))
    return ProgramResult(ctx.party, found, artifacts, parts, clock.seconds, local.withheld_firms)


def _record_parts(ctx: JobContext, local: LocalData, profile: Profile) -> dict[str, str]:
    """Write each of this party's parts' record and its features' training profile, then hash each part."""
    spec, parts = ctx.spec, {}
    for kind in KINDS:
        where = ctx.model_dir / kind
        if where.is_dir():
            profile.save(where)
            PartRecord(ctx.job_id, kind, ctx.party, spec.label_party, spec.key, spec.party(ctx.party).dataset,
                       tuple(local.features), tuple(spec.party_names)).write(where)  # fmt: skip
            parts[kind] = sha256_dir(where)
    return parts


def _split(local: LocalData, keys: np.ndarray, p: JointTrainParams) -> Split:
    aligned = local.align(keys)
    test = holdout_mask(keys, p.seed, p.test_fraction)
    x = local.x(aligned)
    x_train, x_test = x[~test], x[test]
    y = local.y(aligned) if local.label is not None else None
    if y is not None and len(np.unique(y[test])) < 2:
        raise JobFailedError("the held-out split holds one class only; use more rows or another split seed")
    return Split(aligned, test, x_train, x_test, TreePrep.fit(x_train), LinearPrep.fit(x_train), y)


def _label_rows(split: Split, label: str, rows: np.ndarray) -> pd.DataFrame:
    if split.y is None:
        raise RuntimeError("label requested at a party that does not hold it")
    return pd.DataFrame({label: split.y[rows]})


def _sgb(ctx: JobContext, q: SgbParams, fed: Federation, split: Split, local: LocalData) -> Any:
    """Train SecureBoost and save this party's part; the label owner gets held-out probabilities, others None."""
    from models import secureboost

    def progress(tree: int, trees: int) -> None:
        ctx.emit(D.STAGE_SGB, f"tree {tree}/{trees}")

    prep, features = split.tree_prep, list(local.features)
    x_train = prep.apply(split.x_train).to_numpy(dtype="float64")
    y = split.y[~split.test] if split.y is not None else None
    categories = combine.reporting_categories(local.schema, local.features)
    label, me = ctx.spec.label_party, ctx.party
    part = secureboost.train(fed.pyus, label, me, q, features, x_train, y, categories, progress)
    where = ctx.model_dir / "sgb"
    secureboost.save_part(part, where)
    write_json(where / "prep.json", {"features": features, "fill": prep.fill})
    x_test = prep.apply(split.x_test).to_numpy(dtype="float64")
    found = secureboost.predict(fed.pyus, label, me, part, x_test)  # the label owner's only
    return scoring.probability(found.raw, "logistic") if found is not None else None


def _sslr(
    ctx: JobContext, q: SslrParams, spu: Any, fed: Federation, split: Split, y_train: Any
) -> tuple[Any, list[Any]]:
    """Train SS-LR; reveal held-out predictions to the label owner and each party's weights to it alone."""
    from secretflow.ml.linear.ss_sgd import SSRegression

    def epoch_done(epoch: int, _state: Any) -> None:
        ctx.emit(D.STAGE_SSLR, f"epoch {epoch + 1}/{q.epochs}")

    train = fed.frame(lambda: split.lin_prep.apply(split.x_train))
    # SecretFlow runs floor(rows / batch_size) batches per epoch: none at all, and all-zero
    # weights, when the batch exceeds the training rows (known to every party from the split).
    rows = int((~split.test).sum())
    batch = min(q.batch_size, rows)
    if batch < q.batch_size:
        ctx.emit(D.STAGE_SSLR, f"batch size {q.batch_size} exceeds the {rows} training rows: using {batch}")
    lr = SSRegression(spu)
    lr.fit(train, y_train, epochs=q.epochs, learning_rate=q.learning_rate, batch_size=batch,
           sig_type=SSLR_LINK, reg_type="logistic", penalty="l2", l2_norm=q.l2_norm,
           epoch_callback=epoch_done)  # fmt: skip
    scores = lr.predict(fed.frame(lambda: split.lin_prep.apply(split.x_test)), to_pyu=fed.label).partitions[fed.label]
    weights = lr.save_model().weights
    # Partition widths are already known to all: SS-LR shares them to train.
    widths = {pyu.party: int(shape[1]) for pyu, shape in train.partition_shape().items()}
    part, offset, saved = str(ctx.model_dir / "sslr"), 0, []
    for name, pyu in fed.pyus.items():
        a, b = offset, offset + widths[name]
        offset = b
        own = spu(lambda w, a=a, b=b: w.reshape(-1)[a:b])(weights).to(pyu)
        saved.append(pyu(_save_linear_part)(own, part, split.lin_prep))
    bias = spu(lambda w, k=offset: w.reshape(-1)[k:])(weights).to(fed.label)
    saved.append(fed.label(_save_bias)(bias, part))
    return scores, saved


def _scorecard(ctx: JobContext, q: ScorecardParams, spu: Any, fed: Federation, split: Split, local: LocalData) -> Any:
    """Bin, count under encryption, fit on WOE in the SPU, and keep each party's points; the label
    owner gets held-out probabilities of default and writes the IV tables, others get None."""
    from models.scorecard import protocol
    from models.scorecard.points import Scaling

    rows = int((~split.test).sum())
    settings = protocol.Settings(q.bins, q.method, q.monotone, q.iv_min, q.top_k,
                                 Scaling(q.base_score, q.base_odds, q.pdo), q.epochs, q.learning_rate,
                                 min(q.batch_size, rows), q.l2_norm, protocol.SCHEMES[q.he], q.key_bits,
                                 q.uplift, q.max_corr, q.max_vif)  # fmt: skip
    y = (split.y[~split.test], split.y[split.test]) if split.y is not None else None
    categories = combine.reporting_categories(local.schema, local.features)
    trained = protocol.train(fed.pyus, spu, ctx.spec.label_party, ctx.party, settings, list(local.features),
                             categories, split.x_train.to_numpy(dtype="float64"),
                             split.x_test.to_numpy(dtype="float64"), y, ctx.model_dir / "scorecard",
                             lambda what: ctx.emit(D.STAGE_SCORECARD, what))  # fmt: skip
    return fed.label(lambda t: _write_iv(ctx, t))(trained)


def _write_iv(ctx: JobContext, trained: Any) -> np.ndarray:
    """At the label owner: the IV table per feature and per catalogue category, and its plot."""
    table, by = metrics.iv_tables(trained.iv)
    ctx.outputs_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(ctx.outputs_dir / D.IV_TABLE, index=False)
    by.to_csv(ctx.outputs_dir / D.IV_CATEGORIES, index=False)
    write_atomic(ctx.outputs_dir / D.IV_PLOT, metrics.iv_plot(table))
    write_json(ctx.outputs_dir / D.POINTS_TABLE, trained.points)
    pd.DataFrame(trained.csi).to_csv(ctx.outputs_dir / D.CSI_TABLE, index=False)
    if trained.uplift:
        uplift = pd.DataFrame(trained.uplift)
        uplift.to_csv(ctx.outputs_dir / D.UPLIFT_TABLE, index=False)
        write_atomic(ctx.outputs_dir / D.UPLIFT_PLOT, metrics.uplift_plot(uplift.iloc[1:]))
    return np.asarray(trained.probability)


def _save_linear_part(w: np.ndarray, part: str, prep: LinearPrep) -> None:
    d = Path(part)
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "weights.npy", np.asarray(w, dtype="float64"))
    write_json(d / "prep.json", {"median": prep.median, "mean": prep.mean, "std": prep.std, "flags": list(prep.flags),
                                 "logged": list(prep.logged), "link": SSLR_LINK})  # fmt: skip


def _save_bias(b: np.ndarray, part: str) -> None:
    d = Path(part)
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "bias.npy", np.asarray(b, dtype="float64"))


def _bank_only(split: Split, q: SgbParams, seed: int) -> np.ndarray:
    """The label owner's own LightGBM, on its own columns only."""
    if split.y is None:
        raise RuntimeError("the bank-only model runs at the label owner only")
    return trees.fit_predict(split.x_train, split.y[~split.test], split.x_test, q, seed)[1]


def _evaluate_here(ctx: JobContext, split: Split, kinds: list[str], *values: np.ndarray) -> None:
    """Runs at the label owner only: score the held-out rows and write the outputs."""
    if split.y is None:
        raise RuntimeError("evaluation runs at the label owner only")
    titles = {k: D.TITLES[k] for k in kinds}
    hmac_key = desens.new_job_key()
    keys = split.aligned.keys[split.test]
    scores = dict(zip(kinds, values, strict=True))
    found = evaluate.evaluate(split.y[split.test], scores, keys, titles, hmac_key)
    evaluate.write(found, ctx.outputs_dir, ctx.job_dir, hmac_key)
    evaluate.write_holdout(scores, keys, ctx.outputs_dir, ctx.model_dir)


def _read_evaluation(ctx: JobContext) -> tuple[dict[str, float], tuple[str, ...]]:
    metrics_file = ctx.outputs_dir / "metrics.json"
    if not metrics_file.is_file():
        return {}, ()  # not the label owner
    doc = json.loads(metrics_file.read_text())
    iv = [n for n in D.SCORECARD_FILES if (ctx.outputs_dir / n).is_file()]
    return {k: float(v) for k, v in doc["metrics"].items()}, (*doc["artifacts"], *iv)
