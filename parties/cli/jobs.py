"""Commands that run jobs and roles: demo, run, node, coordinator."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from parties.cli import common
from protocols.errors import SafehouseError


def cmd_demo(args: argparse.Namespace) -> int:
    from parties.client import demo

    demo.run(common.home(args), args.rows, args.seed, Path(args.json) if args.json else None)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from parties.client import api

    result = api.run(Path(args.spec), common.home(args), print, coordinator=args.coordinator)
    out = api.public_summary(result)
    print(json.dumps(out["models"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    from parties.node.config import NodeConfig
    from parties.node.server import run

    common.logging_to_stderr()
    config = NodeConfig.load(args.party, common.home(args), args.advertise_host)
    return run(config, args.host, args.port, Path(args.port_file) if args.port_file else None)


def cmd_coordinator(args: argparse.Namespace) -> int:
    from parties.coordinator.server import run

    common.logging_to_stderr()
    nodes = {}
    for item in args.node:
        party, sep, addr = item.partition("=")
        if not sep or ":" not in addr:
            raise SafehouseError(f"--node {item!r}: expected PARTY=HOST:PORT")
        nodes[party] = addr
    return run(common.home(args), nodes, args.host, args.port, Path(args.port_file) if args.port_file else None)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = common.with_home(sub.add_parser("demo", help="run the whole lab on a synthetic city"))
    d.add_argument("--rows", type=int, default=5000, help="bank loans to generate (default 5000)")
    d.add_argument("--seed", type=int, default=20241)
    d.add_argument("--json", help="write the summary JSON here")
    d.set_defaults(fn=cmd_demo, cleanup_on_sigterm=True)

    r = common.with_home(sub.add_parser("run", help="run a job spec"))
    r.add_argument("spec")
    r.add_argument("--json")
    r.add_argument("--coordinator", help="HOST:PORT of a running coordinator (remote deployments)")
    r.set_defaults(fn=cmd_run, cleanup_on_sigterm=True)

    n = common.with_home(sub.add_parser("node", help="run a party node"))
    n.add_argument("--party", required=True)
    n.add_argument("--advertise-host", help="host other parties' workers use to reach this one")
    common.server_args(n)
    n.set_defaults(fn=cmd_node)

    c = common.with_home(sub.add_parser("coordinator", help="run the coordinator"))
    c.add_argument("--node", action="append", default=[], help="PARTY=HOST:PORT of a node (repeat)")
    common.server_args(c)
    c.set_defaults(fn=cmd_coordinator)
