"""Time the demo's joint job at several sizes; one JSON line per size.

    uv run python benchmarks/demo_speed.py [ROWS ...]   (default: 2000 5000)

Each line: rows, wall seconds of the whole command, job seconds, PSI and SGB
seconds, AUCs, and each party worker's peak memory (MiB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from parties.client.local import safehouse_command


def one(rows: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        t0 = time.perf_counter()
        subprocess.run(
            [*safehouse_command(), "--home", str(Path(tmp) / "home"), "demo", "--rows", str(rows), "--json", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t0
        doc = json.loads(out.read_text())
    stages = doc["stage_seconds"]
    return {
        "bench": "demo",
        "rows": rows,
        "wall_seconds": round(wall, 1),
        "job_seconds": doc["seconds"],
        "psi_seconds": doc["psi"]["seconds"],
        "psi_intersection": doc["psi"]["intersection"],
        "sgb_seconds": max(s.get("sgb", 0.0) for s in stages.values()),
        "sslr_seconds": max(s.get("sslr", 0.0) for s in stages.values()),
        "auc": {k: round(v["auc"], 4) for k, v in doc["models"].items()},
        "peak_rss_mb": {k: round(v, 1) for k, v in doc["peak_rss_mb"].items()},
    }


def main(argv: list[str]) -> int:
    for rows in [int(a) for a in argv] or [2000, 5000]:
        print(json.dumps(one(rows)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
