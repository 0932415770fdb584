"""Online scoring latency and throughput against the demo model; one JSON line.

    uv run python benchmarks/online_score.py [--home DIR] [--model demo-sgb] [--requests 1000] [--clients 8]

The home is the demo's (``./demo.sh`` first); a home without the model gets a
fresh demo run in a temporary directory. The party nodes, the platform's and
the bank's scoring services start as separate processes on this machine, with
mutual TLS on every link, and the bank's own certificate calls ``POST /score``
for firms of its loan book: ``requests`` calls one after another on one
keep-alive connection, then ``requests`` calls spread over ``clients``
threads, each with its own connection. The line holds p50/p99 latency (ms) and
throughput (calls/s) of each, and the error count (which must be zero).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from enclave.data import catalogue as cat
from enclave.data import dataset
from enclave.home import Home
from parties.client.local import LocalCluster, safehouse_command
from parties.serving.client import OnlineClient, client_for
from parties.tracking import Tracker
from protocols.errors import SafehouseError


def _has_model(home: Home, model: str) -> bool:
    try:
        Tracker(home.tracking_uri).manifest(model)
    except SafehouseError:
        return False
    except Exception:  # no MLflow database yet
        return False
    return True


def _figures(latencies: list[float], wall: float) -> dict[str, float]:
    ms = np.array(latencies) * 1000.0
    return {"requests": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "throughput_per_s": round(len(ms) / wall, 1)}  # fmt: skip


def _sequential(client: OnlineClient, firms: list[str], model: str) -> tuple[list[float], float, int]:
    out, errors = [], 0
    t0 = time.perf_counter()
    for code in firms:
        t = time.perf_counter()
        try:
            client.score(code, model)
        except SafehouseError:
            errors += 1
        out.append(time.perf_counter() - t)
    return out, time.perf_counter() - t0, errors


def _concurrent(clients: list[OnlineClient], firms: list[str], model: str) -> tuple[list[float], float, int]:
    shares = [firms[i :: len(clients)] for i in range(len(clients))]
    results: list[tuple[list[float], float, int]] = [([], 0.0, 0)] * len(clients)

    def work(i: int) -> None:
        results[i] = _sequential(clients[i], shares[i], model)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clients))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return [x for r in results for x in r[0]], wall, sum(r[2] for r in results)


def bench(home: Home, model: str, requests: int, n_clients: int) -> dict[str, Any]:
    _, codes = dataset.load(home.party(cat.BANK).dataset_dir(cat.LOANS), [])
    pool = codes[cat.KEY].astype(str).tolist()
    rng = np.random.default_rng(7)
    firms = [pool[i] for i in rng.integers(0, len(pool), size=requests)]
    with LocalCluster(home, [cat.PLATFORM, cat.BANK]) as cluster:
        cluster.serve([cat.PLATFORM, cat.BANK])
        clients = [client_for(home, cat.BANK) for _ in range(max(1, n_clients))]
        for c in clients:  # connections and TLS sessions are set up before timing
            c.score(firms[0], model)
        seq, seq_wall, seq_err = _sequential(clients[0], firms, model)
        conc, conc_wall, conc_err = _concurrent(clients, firms, model)
        for c in clients:
            c.close()
    return {"bench": "online_score", "model": model, "clients": n_clients,
            "sequential": _figures(seq, seq_wall), "concurrent": _figures(conc, conc_wall),
            "errors": seq_err + conc_err}  # fmt: skip


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--home", default=None, help="a home holding the demo model (default: $SAFEHOUSE_HOME or .safehouse)"
    )
    p.add_argument("--model", default="demo-sgb")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--clients", type=int, default=8)
    args = p.parse_args(argv)
    home = Home.resolve(args.home)
    with tempfile.TemporaryDirectory() as tmp:
        if not _has_model(home, args.model):
            print(f"no {args.model} in {home.root}; running the demo in a temporary home first", file=sys.stderr)
            home = Home.resolve(str(Path(tmp) / "home"))
            subprocess.run([*safehouse_command(), "--home", str(home.root), "demo"], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
        print(json.dumps(bench(home, args.model, args.requests, args.clients)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
