"""Data commands: generate the synthetic city, import, split, check."""

from __future__ import annotations

import argparse
from pathlib import Path

from parties.cli import common


def cmd_data_generate(args: argparse.Namespace) -> int:
    from parties.client import workflows

    fps = workflows.generate_city(common.home(args), args.rows, args.seed)
    for party, sets in fps.items():
        for name, fp in sets.items():
            print(f"{party}/{name}: {fp.rows} rows, {fp.columns} columns, sha256 {fp.sha256[:16]}")
    return 0


def cmd_data_import(args: argparse.Namespace) -> int:
    from enclave.data import importing
    from parties.client import api

    path = Path(args.file)
    dataset = args.dataset or importing.dataset_name(path)
    if args.review:
        print(api.review_schema(path, args.party, dataset, args.key, args.label, common.warn, args.positive), end="")
        return 0
    rep = api.import_table(
        path, common.home(args), args.party, dataset, args.key, args.label,
        Path(args.schema) if args.schema else None, args.on_duplicate, common.warn, args.positive,
    )  # fmt: skip
    fp = rep.fingerprint
    print(f"{args.party}/{dataset}: {fp.rows} rows, {len(rep.schema.features)} features, sha256 {fp.sha256[:16]}")
    return 0


def cmd_data_split(args: argparse.Namespace) -> int:
    from parties.client import api

    bank_cols = [c.strip() for c in args.bank_columns.split(",") if c.strip()]
    rep = api.split_table(
        Path(args.file), common.home(args), args.label, bank_cols, Path(args.out), key=args.key, name=args.name,
        keep=args.keep, seed=args.seed, sample=args.sample, trees=args.trees, depth=args.depth,
        on_duplicate=args.on_duplicate, positive=args.positive, warn=common.warn,
    )  # fmt: skip
    for party, r in rep.imports.items():
        print(f"{party}/{rep.dataset}: {r.fingerprint.rows} rows, {len(r.schema.features)} features")
    print(f"job spec: {rep.spec_path}  (run it: safehouse run {rep.spec_path})")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from enclave.data import dataset

    schema, df = dataset.load(Path(args.dir))

    print(f"{args.dir}: dataset {schema.name!r} of {schema.owner!r}: {len(df)} rows, {len(df.columns)} columns, valid")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    g = common.with_home(data.add_parser("generate", help="write the synthetic city into the parties' homes"))
    g.add_argument("--rows", type=int, default=5000)
    g.add_argument("--seed", type=int, default=20241)
    g.set_defaults(fn=cmd_data_generate)
    positive = "the label value that marks the positive class (e.g. bad, Y, 2)"
    rules = ["error", "first", "last", "drop"]
    im = common.with_home(data.add_parser("import", help="load a CSV/Parquet file into one party's domain"))
    im.add_argument("file")
    im.add_argument("--party", required=True)
    im.add_argument("--dataset", help="dataset name (default: from the file name)")
    im.add_argument("--key", required=True, help="key column (e.g. the USCC)")
    im.add_argument("--label", help="label column, for the label owner")
    im.add_argument("--positive", help=positive)
    im.add_argument("--schema", help="use this schema YAML instead of inferring one")
    im.add_argument("--review", action="store_true", help="print the inferred schema and import nothing")
    im.add_argument("--on-duplicate", default="error", choices=rules)
    im.set_defaults(fn=cmd_data_import)
    sp = common.with_home(data.add_parser("split", help="split one table into bank and platform datasets and a spec"))
    sp.add_argument("file")
    sp.add_argument("--label", required=True)
    sp.add_argument("--positive", help=positive)
    sp.add_argument("--bank-columns", required=True, help="comma-separated columns the bank holds")
    sp.add_argument("--out", required=True, help="directory for the per-party files and job.yaml")
    sp.add_argument("--key", help="key column; a synthetic USCC is added when absent")
    sp.add_argument("--name", help="dataset name (default: from the file name)")
    sp.add_argument("--keep", type=float, default=0.95, help="share of rows each side keeps (default 0.95)")
    sp.add_argument("--sample", type=int, help="use a seeded sample of this many rows")
    sp.add_argument("--seed", type=int, default=7)
    sp.add_argument("--trees", type=int, default=25)
    sp.add_argument("--depth", type=int, default=4)
    sp.add_argument("--on-duplicate", default="error", choices=rules)
    sp.set_defaults(fn=cmd_data_split)
    ck = data.add_parser("check", help="validate a dataset directory against its schema")
    ck.add_argument("dir")
    ck.set_defaults(fn=cmd_data_check)
