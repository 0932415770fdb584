"""What the label owner learns from a joint_train job: metrics, plots and aggregates.

Everything here runs at the label owner, from its own labels and the
predictions revealed to it alone. The score bands are an aggregate report (the
output gate suppresses small cells); the scored list carries per-job HMAC
tokens and masked codes only, and its key stays in the label owner's domain.
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
from enclave.files import write_atomic, write_json
from models import metrics

DESENS_KEY = "desens.key"


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    files: dict[str, bytes]  # artifact name -> content, written to the outputs directory


def evaluate(
    y: np.ndarray, scores: Mapping[str, np.ndarray], keys: np.ndarray, titles: Mapping[str, str], hmac_key: bytes
) -> Evaluation:
    """AUC and KS per model, ROC and KS plots, score bands and the scored list of the main model."""
    flat = {k: np.asarray(v, dtype="float64").ravel() for k, v in scores.items()}
    found: dict[str, float] = {}
    for k, s in flat.items():
        found[f"{k}_auc"] = metrics.auc(y, s)
        found[f"{k}_ks"] = metrics.ks(y, s)
    found["test_rows"] = float(len(y))
    found["test_default_rate"] = float(np.mean(y))
    files = {"roc.png": metrics.roc_plot(y, {titles[k]: s for k, s in flat.items()})}
    for k, s in flat.items():
        files[f"ks_{k}.png"] = metrics.ks_plot(y, s, titles[k])
        files[f"bands_{k}.json"] = json.dumps(score_bands(y, s, bands=10), indent=1).encode()  # deciles
    main = flat.get("sgb", next(iter(flat.values())))
    files["score_bands.json"] = json.dumps(score_bands(y, main), indent=1).encode()
    files["scored_list.csv"] = scored_list(keys, main, hmac_key).encode()
    return Evaluation(found, files)


def score_bands(y: np.ndarray, score: np.ndarray, bands: int = 20) -> list[dict[str, Any]]:
    """Firms and defaults per score band (riskiest first): an aggregate report."""
    order = np.argsort(-score, kind="stable")
    out = []
    for i, idx in enumerate(np.array_split(order, bands)):
        if len(idx) == 0:
            continue
        out.append({"band": i + 1, "firms": len(idx), "defaults": int(y[idx].sum()),
                    "min_score": float(score[idx].min()), "max_score": float(score[idx].max())})  # fmt: skip
    return out


def scored_list(keys: np.ndarray, score: np.ndarray, hmac_key: bytes, top: int = 50) -> str:
    """The riskiest held-out firms, desensitised: a per-job HMAC token (only the
    holder of the key can re-identify) and a masked code."""
    order = np.argsort(-score, kind="stable")[:top]
    lines = ["token,uscc_masked,score"]
    for i in order:
        code = str(keys[i])
        lines.append(f"{desens.hmac_token(code, hmac_key, 'uscc')},{desens.mask_uscc(code)},{score[i]:.4f}")
    return "\n".join(lines) + "\n"


def write(evaluation: Evaluation, outputs_dir: Path, job_dir: Path, hmac_key: bytes) -> None:
    """Write the artifacts and the metrics where the program and the node read them."""
    for name, data in evaluation.files.items():
        write_atomic(outputs_dir / name, data)
    write_json(outputs_dir / "metrics.json", {"metrics": evaluation.metrics, "artifacts": list(evaluation.files)})
    key_file = job_dir / DESENS_KEY
    write_atomic(key_file, hmac_key)
    key_file.chmod(0o600)


HOLDOUT = "holdout_scores.parquet"


def write_holdout(scores: Mapping[str, np.ndarray], keys: np.ndarray, outputs_dir: Path, model_dir: Path) -> None:
    """Per-firm held-out scores (they stay with the label owner), and each joint model's
    score distribution in its part: the population later scorings are compared with."""
    table = pd.DataFrame({"uscc": keys})
    for kind, s in scores.items():
        table[f"score_{kind}"] = np.asarray(s, dtype="float64").ravel()
        if (model_dir / kind).is_dir():
            np.save(model_dir / kind / "population.npy", table[f"score_{kind}"].to_numpy())
    table.to_parquet(outputs_dir / HOLDOUT, index=False)
