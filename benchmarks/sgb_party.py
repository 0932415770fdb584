"""One party of a ``benchmarks/sgb_speed.py`` run: SecretFlow's ``sgb_v`` or Safehouse's SecureBoost.

    python benchmarks/sgb_party.py ENGINE PARTY CONFIG.json      (ENGINE: sgb_v | safehouse)

The party starts SecretFlow in production mode the way a Safehouse worker does
(``cross_silo_comm_backend="brpc_link"``, one OS process per party), but over
the workers' *plaintext* loopback links (``parties.worker.devices.init_loopback``):
a benchmark of the engines, not of TLS. The workers' allow-listed unpickling
(``parties.worker.hardening.install``) is installed first, as in a worker;
both engines run under it.

It reads only its own ``<dir>/<PARTY>.npz`` (``x_train``, ``x_test``; at the
label owner also ``y_train`` and ``y_test``) and ``<dir>/<PARTY>.json``
(``features``), trains with the CONFIG's ``SgbParams``, scores the held-out
rows (the label owner computes the AUC), and writes
``<dir>/result-<ENGINE>-<PARTY>.json``: training seconds, HE operation counts,
the seconds its key generation took, peak RSS and (label owner) the AUC; on failure its traceback. Lines starting
with ``@progress`` on stderr report finished trees.

Training seconds run from the HE key generation to the trained model for both
engines (Safehouse's ``train`` generates its key; for ``sgb_v`` the clock
starts before its ``sf.HEU`` device is made).

HE counts: Safehouse's engine keeps them on its ``KeyOwner``/``Evaluator``
(``models.secureboost.he.OpCounts``), which this process collects by wrapping
their constructors; ``keygen`` is the number of ``KeyOwner`` made. For
``sgb_v`` the HEU actors' methods are wrapped and count elements from each
call's arguments: encryptions and decryptions are the ciphertexts passed;
additions are, per node of a bucket-sum call, its rows times features plus the
cumulative sum over buckets, and the parent-minus-child subtractions; elementwise
products would count as scalar multiplications (``sgb_v`` makes none in
training); ``keygen`` counts its secret-key keeper actors.

CONFIG: {"parties": {name: [link_port, spu_port]}, "label": name, "job": id,
"dir": path, "params": SgbParams fields, "seed": int}.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models import metrics
from models.joint_train.params import SgbParams
from parties.worker import devices, hardening

OPS = ("keygen", "encrypt", "add", "mul", "decrypt")


def die_with_parent() -> None:
    """Ask Linux to kill this process when the benchmark driver dies (no orphans)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def progress(engine: str, tree: int, trees: int) -> None:
    print(f"@progress {engine} tree {tree}/{trees}", file=sys.stderr, flush=True)


def init(me: str, cfg: dict[str, Any]) -> None:
    """SecretFlow production mode over plaintext loopback brpc links (``devices.init_loopback``)."""
    devices.init_loopback(me, cfg["parties"], cfg["job"], recv_timeout_ms=600_000)


def count_safehouse_ops() -> Callable[[], dict[str, Any]]:
    """Collect every ``KeyOwner``/``Evaluator`` this process creates; returns a reader of their summed counts."""
    from models.secureboost import he

    made: list[Any] = []
    keygen = [0.0]  # seconds in KeyOwner's constructor: key generation
    for cls in (he.KeyOwner, he.Evaluator):
        original = cls.__init__

        def tracked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> None:
            t0 = time.perf_counter()
            _original(self, *args, **kwargs)
            if isinstance(self, he.KeyOwner):
                keygen[0] += time.perf_counter() - t0
            made.append(self)

        cls.__init__ = tracked  # type: ignore[method-assign]

    def read() -> dict[str, Any]:
        out = {op: sum(getattr(x.counts, op) for x in made) for op in (*OPS[1:], "ahead")}
        return {"he_ops": {"keygen": sum(isinstance(x, he.KeyOwner) for x in made), **out}, "keygen_seconds": keygen[0]}

    return read


def _bucket_adds(data: Any, subgroups: Any, order_map: Any, buckets: Any, cumsum: bool = False) -> int:
    """Additions of one (batch) feature-wise bucket sum: rows times features per node, plus the cumsum."""
    groups = subgroups if isinstance(subgroups, list) else [subgroups]
    features = int(np.asarray(order_map).shape[1])
    per_node = features * (int(np.max(buckets)) - 1) if cumsum else 0
    return sum(int(np.asarray(g).sum()) * features + per_node for g in groups) * int(data.cols)


def count_sgb_v_ops() -> Callable[[], dict[str, Any]]:
    """Wrap the HEU actors' methods (before SecretFlow creates them); returns a reader of the counts."""
    from heu import numpy as hnp
    from secretflow.device.device import heu as dev

    counts = dict.fromkeys(OPS, 0)
    keygen = [0.0]  # seconds in the secret-key keeper's constructor: key generation

    def size(data: Any, *_: Any, **__: Any) -> int:
        return int(data.size) if isinstance(data, hnp.CiphertextArray) else 0

    def binary(name: str, a: Any, b: Any) -> tuple[str, int]:
        """Elementwise ciphertext operations: sums and differences are additions, products scalar products."""
        n = max(size(a), size(b)) if name in ("add", "sub", "mul") else 0
        return ("mul" if name == "mul" else "add"), n

    wraps: list[tuple[type, str, Callable[..., tuple[str, int]]]] = [
        (dev.HEUSkKeeper, "__init__", lambda *_, **__: ("keygen", 1)),
        (dev.HEUActor, "encrypt", lambda data, *_, **__: ("encrypt", int(data.size))),
        (dev.HEUSkKeeper, "decrypt", lambda data, *_, **__: ("decrypt", size(data))),
        (dev.HEUActor, "batch_feature_wise_bucket_sum", lambda *a, **k: ("add", _bucket_adds(*a, **k))),
        (dev.HEUActor, "feature_wise_bucket_sum", lambda *a, **k: ("add", _bucket_adds(*a, **k))),
        (dev.HEUActor, "do_binary_op", binary),
    ]
    for cls, name, count in wraps:
        original = getattr(cls, name)

        def wrapped(self: Any, *args: Any, _o: Any = original, _c: Any = count, **kwargs: Any) -> Any:
            op, n = _c(*args, **kwargs)
            counts[op] += n
            t0 = time.perf_counter()
            try:
                return _o(self, *args, **kwargs)
            finally:
                if op == "keygen":
                    keygen[0] += time.perf_counter() - t0

        setattr(cls, name, wrapped)
    return lambda: {"he_ops": dict(counts), "keygen_seconds": keygen[0]}


def train_safehouse(me: str, cfg: dict[str, Any], data: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Safehouse's SecureBoost (``models.secureboost``); the label owner gets the held-out AUC."""
    import secretflow as sf

    from models.secureboost import predict, train

    label = cfg["label"]
    pyus = {p: sf.PYU(p) for p in cfg["parties"]}
    params = SgbParams(**cfg["params"])
    y = data["y_train"] if me == label else None
    t0 = time.perf_counter()
    part = train(pyus, label, me, params, meta["features"], data["x_train"], y, None,
                 lambda t, n: progress("safehouse", t, n))  # fmt: skip
    seconds = time.perf_counter() - t0
    got = predict(pyus, label, me, part, data["x_test"])
    out: dict[str, Any] = {"seconds": seconds}
    if me == label:
        if got is None:
            raise RuntimeError("the label owner got no prediction")
        out["auc"] = metrics.auc(data["y_test"], got.raw)
    return out


def _heu(parties: list[str], label: str, key_bits: int) -> Any:
    """The HEU device as Safehouse configured it for ``sgb_v`` (the label owner keeps the secret key)."""
    import secretflow as sf
    import spu as spulib

    config = {
        "sk_keeper": {"party": label},
        "evaluators": [{"party": p} for p in parties if p != label],
        "mode": "PHEU",
        "he_parameters": {"schema": "ou", "key_pair": {"generate": {"bit_size": key_bits}}},
    }
    return sf.HEU(config, spulib.spu_pb2.FM128)


def train_sgb_v(me: str, cfg: dict[str, Any], data: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """SecretFlow's ``sgb_v`` on VDataFrames, as Safehouse's ``joint_train`` ran it before its own engine."""
    import pandas as pd
    import secretflow as sf
    from secretflow.data import partition
    from secretflow.data.vertical import VDataFrame
    from secretflow.ml.boost.sgb_v import Sgb

    label = cfg["label"]
    pyus = {p: sf.PYU(p) for p in cfg["parties"]}
    q = SgbParams(**cfg["params"])
    if q.he != "ou":
        raise ValueError("the sgb_v baseline runs OU only")

    def frame(block: str) -> Any:  # each callable runs only at its owner, i.e. here for this party's own block
        return VDataFrame({pyu: partition(data=lambda: pd.DataFrame(data[block], columns=meta["features"]),
                                          device=pyu, backend="pandas") for pyu in pyus.values()})  # fmt: skip

    y = VDataFrame({pyus[label]: partition(data=lambda: pd.DataFrame({"y": data["y_train"]}), device=pyus[label],
                                           backend="pandas")})  # fmt: skip
    params = {"num_boost_round": q.num_boost_round, "max_depth": q.max_depth, "learning_rate": q.learning_rate,
              "reg_lambda": q.reg_lambda, "gamma": q.gamma, "sketch_eps": q.sketch_eps, "objective": "logistic",
              "base_score": 0.0, "seed": cfg["seed"]}  # fmt: skip
    train = frame("x_train")
    t0 = time.perf_counter()  # from the key generation on, as Safehouse's engine is timed
    heu = _heu(list(pyus), label, q.key_bits)
    model = Sgb(heu).train(
        params, train, y, dump_function=lambda _m, epoch, _log: progress("sgb_v", epoch + 1, q.num_boost_round)
    )
    seconds = time.perf_counter() - t0  # fmt: skip
    scores = model.predict(frame("x_test"))  # a PYU object of the label owner
    out: dict[str, Any] = {"seconds": seconds}

    def evaluate(s: Any) -> None:
        out["auc"] = metrics.auc(data["y_test"], np.asarray(s).ravel())

    sf.wait([pyus[label](evaluate)(scores)])
    return out


def run(engine: str, me: str, cfg: dict[str, Any]) -> dict[str, Any]:
    work = Path(cfg["dir"])
    meta = json.loads((work / f"{me}.json").read_text())
    data = dict(np.load(work / f"{me}.npz"))
    hardening.install()
    read_counts = count_safehouse_ops() if engine == "safehouse" else count_sgb_v_ops()
    init(me, cfg)
    out = (train_safehouse if engine == "safehouse" else train_sgb_v)(me, cfg, data, meta)
    # this process's peak plus its largest ended child's (the label owner's HE helpers): an upper bound
    peak = sum(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    out |= {"ok": True, **read_counts(), "peak_mib": peak / 1024}
    devices.shutdown_within(30.0)
    return out


def main() -> None:
    engine, me, config = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if engine not in ("sgb_v", "safehouse"):
        raise SystemExit(f"unknown engine {engine!r}: sgb_v or safehouse")
    die_with_parent()
    cfg = json.loads(config.read_text())
    try:
        result = run(engine, me, cfg)
    except BaseException:  # the driver prints every failing party's traceback
        result = {"ok": False, "traceback": traceback.format_exc()}
        print(result["traceback"], file=sys.stderr)
    (Path(cfg["dir"]) / f"result-{engine}-{me}.json").write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if result["ok"] else 1)  # SecretFlow's teardown can hang on a link a failed peer left


if __name__ == "__main__":
    main()
