"""``safehouse demo``: the whole lab on a synthetic city, on this machine.

Generates the platform's and the bank's data into their own domains with
their default controls, starts one node process per party and a coordinator,
runs PSI, SecureBoost and SS-LR with the bank-only baseline, adds the
simulation-only pooled reference, verifies the audit trails, and prints what a
bank risk modeller wants to know.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from enclave.controls import audit
from enclave.data import catalogue as cat
from enclave.home import Home
from models import registry
from parties.client import api, workflows
from parties.client.local import LocalCluster
from protocols.errors import JobFailedError

DEFAULT_ROWS = 5000


def table(result: dict[str, Any], job_type: str = "joint_train") -> str:
    describe = registry.get(job_type)
    psi = result["psi"]
    lines = [
        f"PSI (RR22): {psi['intersection']} firms in common, {psi['seconds']:.1f} s",
        "",
        f"{'model':<40}{'AUC':>8}{'KS':>8}",
        "-" * 56,
    ]
    order = {k: i for i, k in enumerate(describe.model_kinds)}
    for kind, m in sorted(result["models"].items(), key=lambda km: order.get(km[0], len(order))):
        title = "pooled LightGBM [simulation only]" if m.get("simulation_only") else describe.model_title(kind)
        lines.append(f"{title:<40}{m['auc']:>8.4f}{m['ks']:>8.4f}")
    lines.append("-" * 56)
    if "sgb" in result["models"] and "bank_only" in result["models"]:
        lift = result["models"]["sgb"]["auc"] - result["models"]["bank_only"]["auc"]
        lines.append(f"Platform data adds {lift:+.4f} AUC over the bank's own model.")
    security = result.get("security", {})
    if security:
        lines.append(f"Links: {security.get('tls', '?')}; SS-LR: SPU {security.get('spu_protocol', '?')} "
                     f"(dealer: {security.get('beaver', '?')}); SecureBoost: HEU {security.get('he_schema', '?')}-"
                     f"{security.get('he_key_bits', '?')}")  # fmt: skip
    ml = result["mlflow"]
    lines.append(f"MLflow run {ml['run_id']}  ({ml['tracking_uri']})")
    for kind, reg in ml.get("models", {}).items():
        lines.append(f"Registered model {reg['name']} version {reg['version']} ({kind} parts manifest)")
    return "\n".join(lines)


def run(home: Home, rows: int, seed: int, json_path: Path | None, progress: api.Progress = print) -> dict[str, Any]:
    t0 = time.perf_counter()
    # Nodes first: each warms a worker (imports the modelling libraries) while the city is generated,
    # as a deployed node keeps one warm between jobs.
    progress(f"Starting a node per party and the coordinator (home {home.root})")
    with LocalCluster(home, [cat.PLATFORM, cat.BANK]) as cluster:
        progress(f"Generating a synthetic city: {rows} bank loans, seed {seed}")
        fps = workflows.generate_city(home, rows, seed)
        progress(
            f"  platform: {fps[cat.PLATFORM][cat.PROFILE].rows} firms in {len(fps[cat.PLATFORM])} datasets; "
            f"bank: {fps[cat.BANK][cat.LOANS].rows} loans"
        )
        result = api.run(workflows.demo_spec(home), home, progress, cluster=cluster)
    out = api.public_summary(result)
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
