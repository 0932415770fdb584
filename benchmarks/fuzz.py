"""Fuzz the CLI and real nodes with mutated job specs and data files; one JSON line of counts.

    uv run python benchmarks/fuzz.py [--specs 1000] [--tables 200]

The same engine as tests/test_fuzz_multiparty.py (tests/fuzzing.py), on a fresh
600-loan synthetic city with one node process per party: every case must be
accepted or get a one-line error naming the file and field or column at fault,
and the nodes must stay up. Non-zero failures print their first lines to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from enclave.controls.pki import TlsFiles
from enclave.home import Home
from parties.client import workflows
from parties.client.local import LocalCluster
from parties.transport.grpc_links import GrpcNodeLink
from tests import test_fuzz_multiparty as fz


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--specs", type=int, default=fz.SPECS)
    p.add_argument("--tables", type=int, default=fz.TABLES)
    args = p.parse_args(argv)
    fz.SPECS, fz.TABLES = args.specs, args.tables
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        home = Home.resolve(Path(tmp) / "home")
        workflows.generate_city(home, 600, seed=11)
        with LocalCluster(home, ["platform", "bank"]) as cluster:
            tls = TlsFiles.in_dir(home.tls_dir("coordinator"))
            links = {party: GrpcNodeLink(party, a, tls) for party, a in cluster.node_addresses.items()}
            out = Path(tmp) / "cases"
            out.mkdir()
            results = [*fz.fuzz_specs(home, links, out), *fz.fuzz_tables(home, links, out)]
            alive = all(proc.poll() is None for proc in cluster.procs.values())
    counts: dict[str, object] = {"bench": "fuzz"}
    for prefix, c in zip(("spec_cli", "spec_node", "table_cli", "table_node"), results, strict=True):
        counts.update(c.as_dict(prefix))
    counts["node_crashes"] = 0 if alive else 1
    print(json.dumps(counts), flush=True)
    failures = [f for c in results for f in c.failures]
    for f in failures[:20]:
        print(f, file=sys.stderr)
    return 1 if failures or not alive else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
