"""``safehouse demo``: the whole lab on a synthetic city, on this machine.

Generates the platform's and the bank's data into their own domains, starts
one node process per party and a coordinator, runs PSI, SecureBoost and SS-LR
with the bank-only baseline, adds the simulation-only pooled reference, and
prints what a bank risk modeller wants to know.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from enclave import api, synth
from enclave import schema as sch
from enclave.config import Home
from enclave.errors import JobFailedError
from enclave.jobspec import JobSpec, parse

DEFAULT_ROWS = 5000
DEMO_TREES = 25
DEMO_DEPTH = 4


def demo_spec(home: Home, name: str = "demo") -> JobSpec:
    platform = sch.read_schema(home.party(synth.PLATFORM).dataset_dir(synth.PROFILE))
    bank = sch.read_schema(home.party(synth.BANK).dataset_dir(synth.LOANS))
    return parse(
        {
            "name": name,
            "job": "joint_train",
            "key": synth.KEY,
            "parties": {
                synth.PLATFORM: {"dataset": synth.PROFILE, "features": platform.features},
                synth.BANK: {"dataset": synth.LOANS, "features": bank.features},
            },
            "label": {"party": synth.BANK, "column": synth.LABEL},
            "split": {"test_fraction": 0.3, "seed": 7},
            "models": {
                "sgb": {
                    "num_boost_round": DEMO_TREES,
                    "max_depth": DEMO_DEPTH,
                    "learning_rate": 0.15,
                    "sketch_eps": 0.05,
                    "he": "ou",
                },
                "sslr": {"epochs": 8, "learning_rate": 0.2, "batch_size": 512},
                "bank_only": {},
            },
            "reference": {"pooled": True},
            "deployment": "local",
        },
        "demo spec",
    )


def table(result: dict[str, Any]) -> str:
    rows = [
        ("SecureBoost (SGB, HEU OU)", "sgb"),
        ("SS-LR (SPU SEMI2K)", "sslr"),
        ("Bank-only LightGBM", "bank_only"),
        ("Pooled LightGBM [simulation only]", "pooled"),
    ]
    psi = result["psi"]
    lines = [
        f"PSI (RR22): {psi['intersection']} firms in common, {psi['seconds']:.1f} s",
        "",
        f"{'model':<36}{'AUC':>8}{'KS':>8}",
        "-" * 52,
    ]
    for label, key in rows:
        m = result["models"].get(key)
        if m:
            lines.append(f"{label:<36}{m['auc']:>8.4f}{m['ks']:>8.4f}")
    lines.append("-" * 52)
    if "sgb" in result["models"] and "bank_only" in result["models"]:
        lift = result["models"]["sgb"]["auc"] - result["models"]["bank_only"]["auc"]
        lines.append(f"Platform data adds {lift:+.4f} AUC over the bank's own model.")
    ml = result["mlflow"]
    lines.append(f"MLflow run {ml['run_id']}  ({ml['tracking_uri']})")
    for kind, reg in ml.get("models", {}).items():
        lines.append(f"Registered model {reg['name']} version {reg['version']} ({kind} parts manifest)")
    return "\n".join(lines)


def run(home: Home, rows: int, seed: int, json_path: Path | None, progress: api.Progress = print) -> dict[str, Any]:
    t0 = time.perf_counter()
    progress(f"Generating a synthetic city: {rows} bank loans, seed {seed}, home {home.root}")
    fps = synth.write_city(home, rows, seed)
    progress(
        f"  platform: {fps[synth.PLATFORM][synth.PROFILE].rows} firms in {len(fps[synth.PLATFORM])} datasets; "
        f"bank: {fps[synth.BANK][synth.LOANS].rows} loans"
    )
    spec = demo_spec(home)
    result = api.run(spec, home, progress)
    out = api.public_summary(result)
    from enclave import audit

    problems = audit.verify_home(home)
    print()
    print(table(result))
    if problems:
        for p in problems:
            print(f"AUDIT PROBLEM {p}")
        raise JobFailedError(f"audit trail verification found {len(problems)} problem(s)")
    trails = audit.trails(home)
    entries = sum(len(audit.read_entries(t)) for t in trails)
    print(f"Audit trail: {entries} signed entries in {len(trails)} trails verified; "
          f"`safehouse audit show --job {result['job_id']}` tells the story")  # fmt: skip
    print(f"Total {time.perf_counter() - t0:.0f} s")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(out, indent=2))
    return out
