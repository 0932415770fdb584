"""Joint jobs on the two public credit datasets; one JSON line each.

    uv run python benchmarks/public_datasets.py [--only gmsc|taiwan] [--data DIR] [--trees 25] [--depth 4]
        [--scorecard] [--markdown]

UCI Taiwan ships with the repository (data/public/); Give Me Some Credit is read
from ``--data`` (default ../shared/data when it exists) and reported as skipped,
with the reason, when it is not there.

Each dataset is split the way README.md documents (the bank holds the label
and the repayment-history columns, the platform the rest), then run as a local
job with real party processes: SecureBoost, SS-LR, the bank-only LightGBM and
the simulation-only pooled LightGBM with the same trees and depth. Figures:
AUC and KS per model, wall time, and each party worker's peak memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from enclave.home import Home
from parties.client import api

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "data" / "public"
SHARED = ROOT.parent / "shared" / "data"

DATASETS: dict[str, dict[str, Any]] = {
    "gmsc": {
        "file": "give_me_some_credit.csv.gz",
        "title": "Give Me Some Credit (150k)",
        "label": "SeriousDlqin2yrs",
        "bank": ["NumberOfTime30-59DaysPastDueNotWorse", "NumberOfTime60-89DaysPastDueNotWorse",
                 "NumberOfTimes90DaysLate"],
    },
    "taiwan": {
        "file": "uci_taiwan_credit_card.csv.gz",
        "title": "UCI Taiwan credit card (30k)",
        "label": "default.payment.next.month",
        "bank": [f"PAY_{i}" for i in (0, 2, 3, 4, 5, 6)] + [f"PAY_AMT{i}" for i in range(1, 7)],
    },
}  # fmt: skip


def source(key: str, data_dir: Path | None) -> Path:
    """The dataset's file: in ``data_dir`` if given and present there, else the shipped copy."""
    name = DATASETS[key]["file"]
    for d in (data_dir, SHIPPED):
        if d is not None and (d / name).is_file():
            return d / name
    return (data_dir or SHARED) / name


def with_scorecard(spec_path: Path) -> None:
    """Add a scorecard (default parameters) to the split's spec."""
    import yaml

    doc = yaml.safe_load(spec_path.read_text())
    doc["models"]["scorecard"] = {}
    spec_path.write_text(yaml.safe_dump(doc, sort_keys=False))


def run_one(key: str, path: Path, trees: int, depth: int, scorecard: bool = False) -> dict[str, Any]:
    d = DATASETS[key]
    with tempfile.TemporaryDirectory(prefix=f"bench-{key}-") as tmp:
        home = Home.resolve(Path(tmp) / "home")
        t0 = time.perf_counter()
        split = api.split_table(path, home, d["label"], d["bank"], home.root / "split",
                                name=key, trees=trees, depth=depth)  # fmt: skip
        t_split = time.perf_counter() - t0
        if scorecard:
            with_scorecard(split.spec_path)
        result = api.run(split.spec_path, home, progress=lambda m: print(m, file=sys.stderr))
        wall = time.perf_counter() - t0
    m = result["models"]
    return {
        "bench": "public_dataset",
        "dataset": key,
        "title": d["title"],
        "rows_intersection": result["psi"]["intersection"],
        "trees": trees,
        "depth": depth,
        "auc": {k: round(v["auc"], 4) for k, v in m.items()},
        "ks": {k: round(v["ks"], 4) for k, v in m.items()},
        "sgb_minus_pooled_auc": round(m["sgb"]["auc"] - m["pooled"]["auc"], 4),
        "sgb_minus_bank_only_auc": round(m["sgb"]["auc"] - m["bank_only"]["auc"], 4),
        **({"scorecard_minus_sgb_auc": round(m["scorecard"]["auc"] - m["sgb"]["auc"], 4),
            "scorecard_minus_bank_only_auc": round(m["scorecard"]["auc"] - m["bank_only"]["auc"], 4)}
           if "scorecard" in m else {}),
        "seconds": {"split": round(t_split, 1), "job": result["seconds"], "wall": round(wall, 1),
                    "sgb": max(s.get("sgb", 0.0) for s in result["stage_seconds"].values()),
                    "scorecard": max(s.get("scorecard", 0.0) for s in result["stage_seconds"].values())},
        "peak_rss_mb": {p: round(v, 0) for p, v in result["peak_rss_mb"].items()},
    }  # fmt: skip


def markdown(rows: list[dict[str, Any]]) -> str:
    out = [
        "| dataset | model | AUC | KS |",
        "|---|---|---|---|",
    ]
    names = {"sgb": "SecureBoost (HEU OU)", "sslr": "SS-LR (SPU)", "scorecard": "scorecard (WOE LR, SPU)",
             "bank_only": "bank-only LightGBM", "pooled": "pooled LightGBM (simulation only)"}  # fmt: skip
    for r in rows:
        for k in (k for k in names if k in r["auc"]):
            out.append(f"| {r['title']} | {names[k]} | {r['auc'][k]:.4f} | {r['ks'][k]:.4f} |")
    out += [
        "",
        "| dataset | firms aligned | trees x depth | job s | SGB s | peak MiB platform / bank |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        mem = r["peak_rss_mb"]
        secs = f"{r['seconds']['job']:.0f} | {r['seconds']['sgb']:.0f}"
        out.append(f"| {r['title']} | {r['rows_intersection']} | {r['trees']} x {r['depth']} | {secs} | "
                   f"{mem['platform']:.0f} / {mem['bank']:.0f} |")  # fmt: skip
    return "\n".join(out)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=sorted(DATASETS))
    p.add_argument(
        "--data",
        type=Path,
        default=SHARED if SHARED.is_dir() else None,
        help="directory holding the public tables (default ../shared/data when it exists)",
    )
    p.add_argument("--trees", type=int, default=25)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--markdown", action="store_true", help="also print the README table")
    p.add_argument("--scorecard", action="store_true", help="also train a scorecard (default parameters)")
    args = p.parse_args(argv)
    rows = []
    for key in [args.only] if args.only else ["taiwan", "gmsc"]:
        path = source(key, args.data)
        if not path.is_file():
            print(json.dumps({"bench": "public_dataset", "dataset": key, "skipped": f"{path} not found"}), flush=True)
            continue
        row = run_one(key, path, args.trees, args.depth, args.scorecard)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.markdown:
        print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
