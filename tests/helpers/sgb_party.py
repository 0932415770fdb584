"""One party of a SecureBoost run, set up the way a Safehouse worker sets up SecretFlow.

    python sgb_party.py PARTY CONFIG.json

The worker's allow-listed unpickling is installed first, so every peer message
must pass it; the links are the worker's plaintext plan over TCP. The party
reads only its own ``<dir>/<PARTY>.npz`` (``x_train``, ``x_test``, and
``y_train`` at the label owner) and ``<dir>/<PARTY>.json`` (features and
categories), trains, saves and reloads its part, scores the held-out rows, and
writes ``<dir>/result-<PARTY>.json``: seconds, the part's features, and (label
owner) scores and contributions; on failure its traceback. CONFIG: {"parties":
{name: [link_port, spu_port]}, "label": name, "job": id, "dir": path,
"params": SgbParams fields}.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from models.joint_train.params import SgbParams
from models.secureboost import ActivePart, he, load_part, predict, save_part, train
from parties.worker import devices, hardening


def init(me: str, cfg: dict[str, Any]) -> None:
    """SecretFlow production mode over plaintext loopback brpc links (``devices.init_loopback``)."""
    devices.init_loopback(me, cfg["parties"], cfg["job"], recv_timeout_ms=120_000)


def run(me: str, cfg: dict[str, Any]) -> dict[str, Any]:
    import secretflow as sf

    work = Path(cfg["dir"])
    meta = json.loads((work / f"{me}.json").read_text())
    data = np.load(work / f"{me}.npz")
    label = cfg["label"]
    hardening.install()
    init(me, cfg)
    pyus = {p: sf.PYU(p) for p in cfg["parties"]}
    params = SgbParams(**cfg["params"])
    trees: list[tuple[int, int]] = []
    owners: list[he.KeyOwner] = []  # the label owner's, to check its helper lived through training
    made = he.KeyOwner.__init__

    def tracked(self: he.KeyOwner, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        owners.append(self)

    he.KeyOwner.__init__ = tracked  # type: ignore[method-assign]
    t0 = time.perf_counter()
    part = train(pyus, label, me, params, meta["features"], data["x_train"],
                 data["y_train"] if me == label else None, meta.get("categories"),
                 lambda t, n: trees.append((t, n)))  # fmt: skip
    seconds = time.perf_counter() - t0
    save_part(part, work / "parts" / me)
    part = load_part(work / "parts" / me)
    got = predict(pyus, label, me, part, data["x_test"], contributions=True, categories=meta.get("categories"))
    out: dict[str, Any] = {
        "ok": True,
        "seconds": seconds,
        "part_features": part.features,
        "progress": trees,
        "helpers_alive_at_end": [o.ahead.kept_alive for o in owners if o.ahead is not None],
    }
    if isinstance(part, ActivePart):
        if got is None or got.contributions is None:
            raise RuntimeError("the label owner got no prediction")
        out |= {
            "scores": got.raw.tolist(),
            "columns": list(got.contributions.columns),
            "contributions_gap": float(np.abs(got.contributions.to_numpy().sum(axis=1) - got.raw).max()),
        }
    else:
        if got is not None:
            raise RuntimeError("a passive party got a prediction")
        out["split_features"] = sorted({f for t in part.trees for f, _ in t.values()})
    devices.shutdown_within(30.0)
    return out


def main() -> None:
    me, config = sys.argv[1], Path(sys.argv[2])
    cfg = json.loads(config.read_text())
    try:
        result = run(me, cfg)
    except BaseException:  # the test reports every party's traceback
        result = {"ok": False, "traceback": traceback.format_exc()}
    (Path(cfg["dir"]) / f"result-{me}.json").write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if result["ok"] else 1)  # SecretFlow's teardown can hang on a link a failed peer left


if __name__ == "__main__":
    main()
