"""Commands that run jobs and roles: demo, run, node, coordinator."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from enclave import federation
from enclave.controls.pki import TlsFiles
from parties.cli import common


def cmd_demo(args: argparse.Namespace) -> int:
    from parties.client import demo

    demo.run(common.home(args), args.rows, args.seed, Path(args.json) if args.json else None)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from models import registry
    from parties.client import api

    result = api.run(Path(args.spec), common.home(args), print, coordinator=args.coordinator, as_party=args.as_party,
                     insecure_dev=args.insecure_dev)  # fmt: skip
    out = api.public_summary(result)
    print(json.dumps(out.get(registry.get(out["job"]).headline), indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    from parties.node.config import NodeConfig
    from parties.node.server import run

    common.logging_to_stderr()
    config = NodeConfig.load(args.party, common.home(args), args.advertise_host, args.insecure_dev)
    return run(config, args.host, args.port, Path(args.port_file) if args.port_file else None)


def cmd_coordinator(args: argparse.Namespace) -> int:
    from parties.coordinator.server import run

    common.logging_to_stderr()
    home = common.home(args)
    fed = Path(args.federation) if args.federation else home.root / federation.FILE
    tls = (
        None
        if args.insecure_dev
        else TlsFiles.in_dir(Path(args.tls_dir) if args.tls_dir else home.tls_dir("coordinator"))
    )
    return run(home, fed, tls, args.host, args.port, Path(args.port_file) if args.port_file else None)


def cmd_spec_check(args: argparse.Namespace) -> int:
    from models import registry

    spec = registry.load_spec(Path(args.spec))
    parties = ", ".join(f"{p.name} ({p.dataset}, {len(p.features)} features)" for p in spec.parties)
    print(f"{args.spec}: a valid {spec.job_type} spec {spec.name!r}: {parties}; label {spec.label_party}.{spec.label}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sc = sub.add_parser("spec", help="job specs").add_subparsers(dest="spec_command", required=True)
    ck = sc.add_parser("check", help="validate a job spec; every error names the field at fault")
    ck.add_argument("spec")
    ck.set_defaults(fn=cmd_spec_check)

    d = common.with_home(sub.add_parser("demo", help="run the whole lab on a synthetic city"))
    d.add_argument("--rows", type=int, default=5000, help="bank loans to generate (default 5000)")
    d.add_argument("--seed", type=int, default=20241)
    d.add_argument("--json", help="write the summary JSON here")
    d.set_defaults(fn=cmd_demo, cleanup_on_sigterm=True)

    r = common.with_home(sub.add_parser("run", help="run a job spec"))
    r.add_argument("spec")
    r.add_argument("--json")
    r.add_argument("--coordinator", help="HOST:PORT of the coordinator (default: from the federation file)")
    r.add_argument("--as", dest="as_party", help="submit as this party, with its certificate (default: label owner)")
    insecure(r)
    r.set_defaults(fn=cmd_run, cleanup_on_sigterm=True)

    n = common.with_home(sub.add_parser("node", help="run a party node"))
    n.add_argument("--party", required=True)
    n.add_argument("--advertise-host", help="host other parties' workers use, if the federation file gives none")
    common.server_args(n)
    insecure(n)
    n.set_defaults(fn=cmd_node)

    c = common.with_home(sub.add_parser("coordinator", help="run the coordinator"))
    c.add_argument("--federation", help="federation file (default: federation.yaml in the home)")
    c.add_argument("--tls-dir", help="the coordinator's ca.pem, cert.pem and key.pem (default: tls/ in the home)")
    common.server_args(c)
    insecure(c)
    c.set_defaults(fn=cmd_coordinator)


def insecure(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--insecure-dev", action="store_true",
                    help="plaintext links with no identities: for development only, never with real data")  # fmt: skip
