"""The ``safehouse`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from enclave.home import Home
from protocols.errors import SafehouseError


def _home(args: argparse.Namespace) -> Home:
    return Home.resolve(args.home)


def _logging(verbose: bool = True) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from parties.client import demo

    demo.run(_home(args), args.rows, args.seed, Path(args.json) if args.json else None)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from parties.client import api

    result = api.run(Path(args.spec), _home(args), print, coordinator=args.coordinator)
    out = api.public_summary(result)
    print(json.dumps(out["models"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    from parties.node.config import NodeConfig
    from parties.node.server import run

    _logging()
    config = NodeConfig.load(args.party, _home(args), args.advertise_host)
    return run(config, args.host, args.port, Path(args.port_file) if args.port_file else None)


def cmd_coordinator(args: argparse.Namespace) -> int:
    from parties.coordinator.server import run

    _logging()
    nodes = {}
    for item in args.node:
        party, sep, addr = item.partition("=")
        if not sep or ":" not in addr:
            raise SafehouseError(f"--node {item!r}: expected PARTY=HOST:PORT")
        nodes[party] = addr
    return run(_home(args), nodes, args.host, args.port, Path(args.port_file) if args.port_file else None)


def cmd_data_generate(args: argparse.Namespace) -> int:
    from parties.client import workflows

    fps = workflows.generate_city(_home(args), args.rows, args.seed)
    for party, sets in fps.items():
        for name, fp in sets.items():
            print(f"{party}/{name}: {fp.rows} rows, {fp.columns} columns, sha256 {fp.sha256[:16]}")
    return 0


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def cmd_data_import(args: argparse.Namespace) -> int:
    from enclave.data import importing
    from parties.client import api

    path = Path(args.file)
    dataset = args.dataset or importing.dataset_name(path)
    if args.review:
        print(api.review_schema(path, args.party, dataset, args.key, args.label, _warn, args.positive), end="")
        return 0
    rep = api.import_table(
        path, _home(args), args.party, dataset, args.key, args.label,
        Path(args.schema) if args.schema else None, args.on_duplicate, _warn, args.positive,
    )  # fmt: skip
    fp = rep.fingerprint
    print(f"{args.party}/{dataset}: {fp.rows} rows, {len(rep.schema.features)} features, sha256 {fp.sha256[:16]}")
    return 0


def cmd_data_split(args: argparse.Namespace) -> int:
    from parties.client import api

    bank_cols = [c.strip() for c in args.bank_columns.split(",") if c.strip()]
    rep = api.split_table(
        Path(args.file), _home(args), args.label, bank_cols, Path(args.out), key=args.key, name=args.name,
        keep=args.keep, seed=args.seed, sample=args.sample, trees=args.trees, depth=args.depth,
        on_duplicate=args.on_duplicate, positive=args.positive, warn=_warn,
    )  # fmt: skip
    for party, r in rep.imports.items():
        print(f"{party}/{rep.dataset}: {r.fingerprint.rows} rows, {len(r.schema.features)} features")
    print(f"job spec: {rep.spec_path}  (run it: safehouse run {rep.spec_path})")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from enclave.data import schema as sch

    schema, df = sch.load(Path(args.dir))
    print(f"{args.dir}: dataset {schema.name!r} of {schema.owner!r}: {len(df)} rows, {len(df.columns)} columns, valid")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from enclave.controls import audit

    home = _home(args)
    trails = audit.trails(home)
    if not trails:
        print(f"safehouse: error: no audit trails under {home.root}", file=sys.stderr)
        return 2
    problems = audit.verify_home(home)
    for p in problems:
        print(f"TAMPERED {p}")
    entries = sum(len(audit.read_entries(t)) for t in trails)
    if problems:
        print(f"audit: {len(problems)} problem(s) in {len(trails)} trail(s)", file=sys.stderr)
        return 1
    print(f"audit: {entries} entries in {len(trails)} trails verified (chains, signatures, cross-references)")
    return 0


def cmd_audit_show(args: argparse.Namespace) -> int:
    from enclave.controls import audit

    entries = audit.story(_home(args), args.job)
    if not entries:
        print(f"safehouse: error: no audit entries for job {args.job!r}", file=sys.stderr)
        return 2
    for e in entries:
        print(audit.describe(e))
    return 0


def cmd_consent(args: argparse.Namespace) -> int:
    from enclave.controls import consent

    home = _home(args)
    root = home.party(args.party).root
    signer = consent.consent_signer(root, home.trust_dir)
    if args.consent_command == "grant":
        granted = consent.grant(root, signer, args.uscc, args.grantee, args.purpose, args.days)
        for a in granted:
            print(f"authorisation {a.id}: {a.uscc} -> {a.grantee} for {a.purpose} until {a.expires}")
    else:
        r = consent.revoke(root, signer, args.id)
        print(f"authorisation {r.id} revoked at {r.revoked}; applies from the next job")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safehouse", description="Safehouse (数据安全屋): joint credit modelling")
    p.add_argument("--home", help="state directory (default $SAFEHOUSE_HOME or ./.safehouse)")
    sub = p.add_subparsers(dest="command", required=True)

    def with_home(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--home", default=argparse.SUPPRESS, help="state directory")
        return sp

    d = with_home(sub.add_parser("demo", help="run the whole lab on a synthetic city"))
    d.add_argument("--rows", type=int, default=5000, help="bank loans to generate (default 5000)")
    d.add_argument("--seed", type=int, default=20241)
    d.add_argument("--json", help="write the summary JSON here")
    d.set_defaults(fn=cmd_demo)

    r = with_home(sub.add_parser("run", help="run a job spec"))
    r.add_argument("spec")
    r.add_argument("--json")
    r.add_argument("--coordinator", help="HOST:PORT of a running coordinator (remote deployments)")
    r.set_defaults(fn=cmd_run)

    def server_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--host", default="127.0.0.1", help="listen host")
        sp.add_argument("--port", type=int, default=0, help="listen port (0: the OS picks)")
        sp.add_argument("--port-file", help="write the bound port here")

    n = with_home(sub.add_parser("node", help="run a party node"))
    n.add_argument("--party", required=True)
    n.add_argument("--advertise-host", help="host other parties' workers use to reach this one")
    server_args(n)
    n.set_defaults(fn=cmd_node)

    c = with_home(sub.add_parser("coordinator", help="run the coordinator"))
    c.add_argument("--node", action="append", default=[], help="PARTY=HOST:PORT of a node (repeat)")
    server_args(c)
    c.set_defaults(fn=cmd_coordinator)

    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    g = with_home(data.add_parser("generate", help="write the synthetic city into the parties' homes"))
    g.add_argument("--rows", type=int, default=5000)
    g.add_argument("--seed", type=int, default=20241)
    g.set_defaults(fn=cmd_data_generate)
    im = with_home(data.add_parser("import", help="load a CSV/Parquet file into one party's domain"))
    im.add_argument("file")
    im.add_argument("--party", required=True)
    im.add_argument("--dataset", help="dataset name (default: from the file name)")
    im.add_argument("--key", required=True, help="key column (e.g. the USCC)")
    im.add_argument("--label", help="label column, for the label owner")
    im.add_argument("--schema", help="use this schema YAML instead of inferring one")
    im.add_argument("--review", action="store_true", help="print the inferred schema and import nothing")
    im.add_argument("--on-duplicate", default="error", choices=["error", "first", "last", "drop"])
    im.add_argument("--positive", help="the label value that marks the positive class (e.g. bad, Y, 2)")
    im.set_defaults(fn=cmd_data_import)
    sp = with_home(data.add_parser("split", help="split one table into bank and platform datasets plus a job spec"))
    sp.add_argument("file")
    sp.add_argument("--label", required=True)
    sp.add_argument("--bank-columns", required=True, help="comma-separated columns the bank holds")
    sp.add_argument("--out", required=True, help="directory for the per-party files and job.yaml")
    sp.add_argument("--key", help="key column; a synthetic USCC is added when absent")
    sp.add_argument("--name", help="dataset name (default: from the file name)")
    sp.add_argument("--keep", type=float, default=0.95, help="share of rows each side keeps (default 0.95)")
    sp.add_argument("--sample", type=int, help="use a seeded sample of this many rows")
    sp.add_argument("--seed", type=int, default=7)
    sp.add_argument("--trees", type=int, default=25)
    sp.add_argument("--depth", type=int, default=4)
    sp.add_argument("--on-duplicate", default="error", choices=["error", "first", "last", "drop"])
    sp.add_argument("--positive", help="the label value that marks the positive class (e.g. bad, Y, 2)")
    sp.set_defaults(fn=cmd_data_split)
    ck = data.add_parser("check", help="validate a dataset directory against its schema")
    ck.add_argument("dir")
    ck.set_defaults(fn=cmd_data_check)

    au = sub.add_parser("audit", help="audit trails").add_subparsers(dest="audit_command", required=True)
    v = with_home(au.add_parser("verify", help="verify every trail's chain, signatures and cross-references"))
    v.set_defaults(fn=cmd_audit_verify)
    sh = with_home(au.add_parser("show", help="the whole story of one job across all trails"))
    sh.add_argument("--job", required=True)
    sh.set_defaults(fn=cmd_audit_show)

    co = sub.add_parser("consent", help="firm authorisations").add_subparsers(dest="consent_command", required=True)
    gr = with_home(co.add_parser("grant", help="record signed authorisations"))
    gr.add_argument("--party", default="platform", help="data owner holding the consent book")
    gr.add_argument("--grantee", required=True, help="the bank authorised")
    gr.add_argument("--purpose", default="credit_risk_model")
    gr.add_argument("--days", type=int, default=365)
    gr.add_argument("uscc", nargs="+")
    gr.set_defaults(fn=cmd_consent)
    rv = with_home(co.add_parser("revoke", help="revoke an authorisation by id"))
    rv.add_argument("--party", default="platform")
    rv.add_argument("id")
    rv.set_defaults(fn=cmd_consent)
    return p


def _exit_on_sigterm() -> None:
    # Turn SIGTERM/SIGHUP into an exception so every context manager (such as
    # a LocalCluster holding party processes) runs its cleanup.
    def bail(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, bail)
    signal.signal(signal.SIGHUP, bail)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in ("demo", "run"):
        _exit_on_sigterm()
    try:
        return int(args.fn(args))
    except SafehouseError as e:
        print(f"safehouse: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("safehouse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
