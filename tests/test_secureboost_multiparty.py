"""SecureBoost across real party processes: SecretFlow production mode over TCP links, two and three parties.

Each party is its own OS process (``tests/helpers/sgb_party.py``) holding only
its own columns, with the workers' allow-listed unpickling installed; the label
owner's held-out scores must equal the plaintext reference on pooled columns.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from models.joint_train.params import SgbParams
from parties.procs import free_ports, kill_group
from tests.test_secureboost_reference import CATEGORIES, NAMES, reference_boost, synthetic

HELPER = Path(__file__).resolve().parent / "helpers" / "sgb_party.py"
PARAMS = SgbParams(num_boost_round=4, max_depth=3, learning_rate=0.3, sketch_eps=0.1, he="ou", key_bits=2048)
DEADLINE = 90.0  # seconds for one run, start to finish


def _write_inputs(work: Path, parties: list[str]) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Each party's own files; returns the pooled training and held-out blocks and the labels, for the reference."""
    train_blocks, y = synthetic(400, seed=11)
    test_blocks, _ = synthetic(150, seed=12)
    for i, party in enumerate(parties):
        arrays = {"x_train": train_blocks[i], "x_test": test_blocks[i]} | ({"y_train": y} if i == 0 else {})
        np.savez(work / f"{party}.npz", **arrays)
        meta = {"features": NAMES[party], "categories": {f: CATEGORIES[f] for f in NAMES[party] if f in CATEGORIES}}
        (work / f"{party}.json").write_text(json.dumps(meta))
    return train_blocks[: len(parties)], test_blocks[: len(parties)], y


def _run(work: Path, parties: list[str]) -> dict[str, dict]:
    """Start every party, wait for all, and return their results; fail with every party's traceback and log."""
    ports = free_ports(2 * len(parties))
    cfg = {"parties": {p: ports[2 * i : 2 * i + 2] for i, p in enumerate(parties)}, "label": parties[0],
           "job": f"sgb-{work.name}-{ports[0]}", "dir": str(work), "params": vars(PARAMS)}  # fmt: skip
    (work / "cfg.json").write_text(json.dumps(cfg))
    procs = {p: subprocess.Popen([sys.executable, str(HELPER), p, str(work / "cfg.json")], cwd=work,
                                 stdout=(work / f"{p}.log").open("wb"), stderr=subprocess.STDOUT,
                                 start_new_session=True) for p in parties}  # fmt: skip
    try:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and any(p.poll() is None for p in procs.values()):
            if any(p.poll() not in (None, 0) for p in procs.values()):
                time.sleep(3.0)  # let the others report the failure they saw, then stop them
                break
            time.sleep(0.2)
    finally:
        for proc in procs.values():
            kill_group(proc)
    results, problems = {}, []
    for p in parties:
        f = work / f"result-{p}.json"
        res = json.loads(f.read_text()) if f.is_file() else {"ok": False, "traceback": "(no result written)"}
        results[p] = res
        if not res["ok"] or procs[p].returncode != 0:
            log = (work / f"{p}.log").read_text(errors="replace")
            first = log[log.find("Traceback") :][:2500] if "Traceback" in log else ""
            problems.append(f"===== {p} (exit {procs[p].returncode}) =====\n{res.get('traceback', '')}\n"
                            f"--- first error in its log ---\n{first}\n--- log tail ---\n{log[-1000:]}")  # fmt: skip
    assert not problems, "\n".join(problems)
    return results


@pytest.mark.multiparty
@pytest.mark.parametrize("parties", [["bank", "platform"], ["bank", "platform", "guarantor"]], ids=["2", "3"])
def test_secureboost_across_processes_equals_the_reference(tmp_path: Path, parties: list[str]) -> None:
    train_blocks, test_blocks, y = _write_inputs(tmp_path, parties)
    results = _run(tmp_path, parties)
    bank = results["bank"]
    # the bank's key came from its helpers, and the one kept was still making zeros when training ended
    assert bank["helpers_alive_at_end"] == [True], bank["helpers_alive_at_end"]
    assert all(results[p]["helpers_alive_at_end"] == [] for p in parties[1:])
    ref = reference_boost(train_blocks, y, PARAMS)
    assert np.abs(np.array(bank["scores"]) - ref.predict(test_blocks)).max() < 1e-6
    assert bank["contributions_gap"] < 1e-9
    assert bank["columns"][:2] == NAMES["bank"] and bank["columns"][-1] == "bias"
    assert not any(f in c for c in bank["columns"] for p in parties[1:] for f in NAMES[p])
    for p in parties[1:]:
        assert results[p]["part_features"] == NAMES[p]
        assert results[p]["split_features"] and set(results[p]["split_features"]) <= set(NAMES[p])
        assert any(c.startswith(f"{p}:") for c in bank["columns"])
    for p in parties:
        assert [t for t, _ in results[p]["progress"]] == list(range(1, PARAMS.num_boost_round + 1))
