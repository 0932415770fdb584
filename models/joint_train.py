"""The ``joint_train`` job: the SecretFlow program every party runs for one job.

Every party executes this same program in its own worker process (SecretFlow
production mode). A device function such as ``pyu(fn)()`` runs only at the
process that owns ``pyu``; elsewhere it is a handle. So each closure below that
reads local files reads the *running* party's own files, and nothing crosses a
boundary but what SecretFlow's protocols send: PSI messages, HEU ciphertexts,
SPU shares, and the revealed predictions that go to the label owner alone.

Stages: PSI on the key (RR22, revealing only the intersection) -> a shared
keyed-hash split -> SecureBoost (HEU) -> secret-shared LR (SPU) -> the label
owner's own bank-only LightGBM -> metrics and plots at the label owner -> each
party saves its own model part.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from enclave import consent, desens
from enclave import schema as sch
from enclave.errors import JobFailedError
from enclave.jobspec import JobSpec, SgbParams
from enclave.procs import write_json
from models import metrics, trees
from models.prep import LinearPrep, TreePrep, holdout_mask
from protocols import constants as C

Emit = Callable[[str, str], None]


@dataclass(frozen=True)
class Context:
    """What the worker hands the job program: all of it local to this party."""

    job_id: str
    party: str
    spec: JobSpec
    dataset_dir: Path
    job_dir: Path
    model_dir: Path
    emit: Emit


def _hash_dir(d: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in d.rglob("*") if p.is_file()):
        h.update(f.relative_to(d).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


class _Local:
    """This party's own data, prepared inside its domain."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        me = ctx.spec.party(ctx.party)
        cols = list(me.features) + ([ctx.spec.label] if ctx.party == ctx.spec.label_party else [])
        self.schema, self.frame = sch.load(ctx.dataset_dir, cols)
        self.features = list(me.features)
        self.withheld = 0
        consent_file = ctx.job_dir / "consent.json"
        if consent_file.is_file():
            # Before any computation: authorisation-required columns of firms
            # without a valid authorisation become missing.
            doc = json.loads(consent_file.read_text())
            self.frame, self.withheld = consent.withhold(
                self.frame, self.schema.key, list(doc["columns"]), set(doc["authorised"])
            )
        self.aligned: pd.DataFrame | None = None
        self.test: np.ndarray | None = None

    def write_keys(self, path: Path) -> int:
        self.frame[[self.schema.key]].rename(columns={self.schema.key: self.ctx.spec.key}).to_csv(path, index=False)
        return len(self.frame)

    def align(self, psi_out: Path) -> None:
        keys = pd.read_csv(psi_out, dtype=str)[self.ctx.spec.key]
        self.aligned = self.frame.set_index(self.schema.key).loc[keys.to_numpy()].reset_index()
        self.test = holdout_mask(keys, self.ctx.spec.seed, self.ctx.spec.test_fraction)

    def x(self) -> pd.DataFrame:
        if self.aligned is None:
            raise RuntimeError("align() first")
        return sch.encode_features(self.schema, self.aligned, self.features)

    def y(self) -> np.ndarray:
        if self.aligned is None:
            raise RuntimeError("align() first")
        return self.aligned[self.ctx.spec.label].astype(int).to_numpy()


def run(ctx: Context, devices: Any) -> dict[str, Any]:
    """Run the job; return this party's releasable result (written by the worker)."""
    import secretflow as sf
    from secretflow.data import partition
    from secretflow.data.vertical import VDataFrame

    spec = ctx.spec
    pyus = {p: sf.PYU(p) for p in spec.party_names}
    label_pyu = pyus[spec.label_party]
    spu, heu = devices["spu"], devices.get("heu")
    stage_seconds: dict[str, float] = {}
    result: dict[str, Any] = {"party": ctx.party, "metrics": {}, "model_parts": {}, "artifacts": []}

    def stage(name: str, detail: str = "") -> Callable[[], None]:
        ctx.emit(name, detail or f"{name} started")
        t0 = time.perf_counter()

        def end() -> None:
            stage_seconds[name] = round(time.perf_counter() - t0, 3)

        return end

    local = _Local(ctx)
    result["consent"] = {"withheld_firms": local.withheld}
    ctx.job_dir.mkdir(parents=True, exist_ok=True)

    # --- PSI -----------------------------------------------------------------
    end = stage(C.STAGE_PSI, f"PSI (RR22) on {spec.key}")
    psi_in, psi_out = ctx.job_dir / "psi_in.csv", ctx.job_dir / "psi_out.csv"
    local.write_keys(psi_in)
    names = spec.party_names
    reports = spu.psi(
        keys={p: [spec.key] for p in names},
        input_path={p: str(psi_in) for p in names},
        output_path={p: str(psi_out) for p in names},
        receiver=spec.label_party,
        table_keys_duplicated={p: False for p in names},
        protocol="PROTOCOL_RR22",
        broadcast_result=True,
    )
    inter = int(next(r["intersection_count"] for r in reports if r["party"] == ctx.party))
    result["psi"] = {"intersection": inter, "own_rows": len(local.frame)}
    end()
    if inter < 20:
        raise JobFailedError(f"PSI intersection holds only {inter} keys; at least 20 are needed to train")
    ctx.emit(C.STAGE_PSI, f"intersection: {inter} firms")

    # --- split and per-party preparation -------------------------------------
    end = stage(C.STAGE_SPLIT, "aligning and splitting")
    local.align(psi_out)
    mask = local.test
    if mask is None:
        raise RuntimeError("split mask missing after alignment")
    x_all = local.x()
    x_tr, x_te = x_all[~mask], x_all[mask]
    tree_prep = TreePrep.fit(x_tr)
    lin_prep = LinearPrep.fit(x_tr)
    y_all = local.y() if ctx.party == spec.label_party else None
    if y_all is not None and len(np.unique(y_all[mask])) < 2:
        raise JobFailedError("the held-out split holds one class only; use more rows or another split seed")
    result["split"] = {"train": int((~mask).sum()), "test": int(mask.sum())}
    end()

    def vdf(frames: Callable[[], pd.DataFrame]) -> VDataFrame:
        # The same callable at every party; it runs only where it is local.
        return VDataFrame({pyu: partition(data=frames, device=pyu, backend="pandas") for pyu in pyus.values()})

    def label_vdf(rows: np.ndarray) -> VDataFrame:
        def frame() -> pd.DataFrame:
            if y_all is None:
                raise RuntimeError("label requested at a party that does not hold it")
            return pd.DataFrame({spec.label: y_all[rows]})

        return VDataFrame({label_pyu: partition(data=frame, device=label_pyu, backend="pandas")})

    y_tr = label_vdf(~mask)
    scores: dict[str, Any] = {}

    # --- SecureBoost ---------------------------------------------------------
    if spec.sgb is not None:
        p: SgbParams = spec.sgb
        end = stage(C.STAGE_SGB, f"SecureBoost: {p.num_boost_round} trees, depth {p.max_depth}, HEU {p.he}")
        from secretflow.ml.boost.sgb_v import Sgb

        def progress(_model: Any, epoch: int, _log: Any) -> None:
            ctx.emit(C.STAGE_SGB, f"tree {epoch + 1}/{p.num_boost_round}")

        sgb_tr = vdf(lambda: tree_prep.apply(x_tr))
        sgb_te = vdf(lambda: tree_prep.apply(x_te))
        model = Sgb(heu).train(
            {
                "num_boost_round": p.num_boost_round,
                "max_depth": p.max_depth,
                "learning_rate": p.learning_rate,
                "reg_lambda": p.reg_lambda,
                "gamma": p.gamma,
                "sketch_eps": p.sketch_eps,
                "objective": "logistic",
                "base_score": 0.0,
                "seed": spec.seed,
            },
            sgb_tr,
            y_tr,
            dump_function=progress,
        )
        scores["sgb"] = model.predict(sgb_te)  # PYUObject at the label owner only
        part = ctx.model_dir / "sgb"
        model.save_model({pyu: str(part) for pyu in pyus.values()})
        write_json(part / "prep.json", {"features": local.features, "fill": tree_prep.fill})
        result["model_parts"]["sgb"] = _hash_dir(part)
        end()

    # --- secret-shared logistic regression -----------------------------------
    if spec.sslr is not None:
        q = spec.sslr
        end = stage(C.STAGE_SSLR, f"SS-LR (SPU SEMI2K): {q.epochs} epochs")
        from secretflow.ml.linear.ss_sgd import SSRegression

        def epoch_done(epoch: int, _state: Any) -> None:
            ctx.emit(C.STAGE_SSLR, f"epoch {epoch + 1}/{q.epochs}")

        lr_tr = vdf(lambda: lin_prep.apply(x_tr))
        lr_te = vdf(lambda: lin_prep.apply(x_te))
        lr = SSRegression(spu)
        lr.fit(
            lr_tr,
            y_tr,
            epochs=q.epochs,
            learning_rate=q.learning_rate,
            batch_size=q.batch_size,
            sig_type="t1",
            reg_type="logistic",
            penalty="l2",
            l2_norm=q.l2_norm,
            epoch_callback=epoch_done,
        )
        scores["sslr"] = lr.predict(lr_te, to_pyu=label_pyu).partitions[label_pyu]
        # Each party receives only its own slice of the shared weights.
        weights = lr.save_model().weights
        # Partition widths are already known to all: SS-LR shares them to train.
        widths = {pn: int(shape[1]) for pn, shape in ((pyu.party, s) for pyu, s in lr_tr.partition_shape().items())}
        offset, part, saved = 0, ctx.model_dir / "sslr", []
        for pn in names:
            a, b = offset, offset + widths[pn]
            offset = b
            own = spu(lambda w, a=a, b=b: w.reshape(-1)[a:b])(weights).to(pyus[pn])
            saved.append(pyus[pn](_save_linear_part)(own, str(part), lin_prep))
        bias = spu(lambda w, k=offset: w.reshape(-1)[k:])(weights).to(label_pyu)
        saved.append(label_pyu(_save_bias)(bias, str(part)))
        sf.wait(saved)
        result["model_parts"]["sslr"] = ""  # hashed below, once every part is flushed
        end()

    # --- bank-only baseline, entirely inside the label owner's domain --------
    if spec.bank_only is not None:
        end = stage(C.STAGE_BANK_ONLY, "bank-only LightGBM on the label owner's own columns")
        base_params = spec.sgb or SgbParams()

        def bank_only() -> np.ndarray:
            return trees.fit_predict(x_tr, local.y()[~mask], x_te, base_params, spec.seed)[1]

        scores["bank_only"] = label_pyu(bank_only)()
        end()

    # --- evaluation at the label owner ---------------------------------------
    # Runs as a label-owner device call at every party, so the call sequence is
    # identical everywhere; only the label owner executes it, and ``sf.wait``
    # reveals nothing but None.
    end = stage(C.STAGE_SAVE, "scoring and saving model parts")
    kinds = list(scores)

    def evaluate(*vals: np.ndarray) -> None:
        if local.aligned is None:
            raise RuntimeError("align() first")
        keys = local.aligned[local.schema.key].to_numpy()[mask]
        _evaluate(ctx, local.y()[mask], dict(zip(kinds, vals, strict=True)), keys)

    sf.wait([label_pyu(evaluate)(*scores.values())])
    metrics_file = ctx.job_dir / "outputs" / "metrics.json"
    if metrics_file.is_file():
        evaluated = json.loads(metrics_file.read_text())
        result["metrics"], result["artifacts"] = evaluated["metrics"], evaluated["artifacts"]
    if "sslr" in result["model_parts"]:
        result["model_parts"]["sslr"] = _hash_dir(ctx.model_dir / "sslr")
    end()
    result["stage_seconds"] = stage_seconds
    return result


def _save_linear_part(w: np.ndarray, part: str, prep: LinearPrep) -> None:
    d = Path(part)
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "weights.npy", np.asarray(w, dtype="float64"))
    write_json(d / "prep.json", {"median": prep.median, "mean": prep.mean, "std": prep.std, "flags": list(prep.flags)})


def _save_bias(b: np.ndarray, part: str) -> None:
    d = Path(part)
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "bias.npy", np.asarray(b, dtype="float64"))


MODEL_LABELS = {"sgb": "SecureBoost", "sslr": "SS-LR", "bank_only": "bank-only LightGBM"}


def _evaluate(ctx: Context, y_test: np.ndarray, scores: dict[str, np.ndarray], keys: np.ndarray) -> None:
    """Metrics and plots, computed at the label owner from its own labels."""
    flat = {k: np.asarray(v, dtype="float64").ravel() for k, v in scores.items()}
    out = ctx.job_dir / "outputs"
    out.mkdir(parents=True, exist_ok=True)
    found: dict[str, float] = {}
    for k, s in flat.items():
        found[f"{k}_auc"] = metrics.auc(y_test, s)
        found[f"{k}_ks"] = metrics.ks(y_test, s)
    found["test_rows"] = float(len(y_test))
    found["test_default_rate"] = float(np.mean(y_test))
    artifacts = ["roc.png"]
    (out / "roc.png").write_bytes(metrics.roc_plot(y_test, {MODEL_LABELS[k]: s for k, s in flat.items()}))
    for k, s in flat.items():
        (out / f"ks_{k}.png").write_bytes(metrics.ks_plot(y_test, s, MODEL_LABELS[k]))
        artifacts.append(f"ks_{k}.png")
    main = flat.get("sgb", next(iter(flat.values())))
    write_json(out / "score_bands.json", _score_bands(y_test, main))
    (out / "scored_list.csv").write_text(_scored_list(ctx, keys, main))
    artifacts += ["score_bands.json", "scored_list.csv"]
    write_json(out / "metrics.json", {"metrics": found, "artifacts": artifacts})


def _score_bands(y: np.ndarray, score: np.ndarray, bands: int = 20) -> list[dict[str, Any]]:
    """Firms and defaults per score band (riskiest first): an aggregate report."""
    order = np.argsort(-score, kind="stable")
    out = []
    for i, idx in enumerate(np.array_split(order, bands)):
        if len(idx) == 0:
            continue
        out.append({"band": i + 1, "firms": len(idx), "defaults": int(y[idx].sum()),
                    "min_score": float(score[idx].min()), "max_score": float(score[idx].max())})  # fmt: skip
    return out


def _scored_list(ctx: Context, keys: np.ndarray, score: np.ndarray, top: int = 50) -> str:
    """The riskiest held-out firms, desensitised: a per-job HMAC token (the key
    stays in this domain, so only this party can re-identify) and a masked code."""
    key_file = ctx.job_dir / "desens.key"
    key = desens.new_job_key()
    key_file.write_bytes(key)
    key_file.chmod(0o600)
    order = np.argsort(-score, kind="stable")[:top]
    lines = ["token,uscc_masked,score"]
    for i in order:
        code = str(keys[i])
        lines.append(f"{desens.hmac_token(code, key, 'uscc')},{desens.mask_uscc(code)},{score[i]:.4f}")
    return "\n".join(lines) + "\n"
