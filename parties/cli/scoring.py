"""Commands that use a trained model: score (batch or online), monitor, serve."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from parties.cli import common


def _write(doc: object, path: str | None) -> None:
    text = json.dumps(doc, indent=2, default=str)
    print(text)
    if path:
        Path(path).write_text(text)


def cmd_score(args: argparse.Namespace) -> int:
    from parties.client import scoring

    home = common.home(args)
    if args.online:
        from parties.serving import client

        if not args.uscc:
            raise SystemExit("safehouse score: --uscc is required with --online")
        _write(client.score_online(home, args.model, args.uscc, args.url, args.party), args.json)
        return 0
    if not args.dataset:
        raise SystemExit("safehouse score: --dataset is required for batch scoring")
    _write(scoring.score(home, args.model, args.dataset, print, reasons=args.reasons), args.json)
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from models.joint_score.params import MonitorParams
    from parties.client import scoring

    every = common.duration(args.every) if args.every else None
    watch = MonitorParams(args.threshold_band, args.band_moves)
    for summary in scoring.monitor(common.home(args), args.model, args.dataset, every, print, monitor=watch):
        _write(summary, args.json)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from parties.node.config import NodeConfig
    from parties.serving.server import ServeOptions, run

    common.logging_to_stderr()
    config = NodeConfig.load(args.party, common.home(args), None, args.insecure_dev)
    options = ServeOptions(args.host, args.port, args.http_port, tuple(args.model or ()), args.dataset, args.reasons,
                           tuple(args.client or ()))  # fmt: skip
    return run(config, options)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = common.with_home(sub.add_parser("score", help="score firms with a registered joint model"))
    s.add_argument("--model", required=True, help="registered model NAME or NAME:VERSION")
    s.add_argument("--dataset", help="the bank's table of firms to score (batch)")
    s.add_argument("--reasons", type=int, default=3, help="reason codes per firm (default 3)")
    s.add_argument("--online", action="store_true", help="ask the bank's scoring service about one firm")
    s.add_argument("--uscc", help="the firm to score online")
    s.add_argument("--url", help="the bank's scoring service (default: from its serving.json)")
    s.add_argument("--party", help="call as this party (default: the model's label owner)")
    s.add_argument("--json", help="also write the result here")
    s.set_defaults(fn=cmd_score, cleanup_on_sigterm=True)

    m = common.with_home(sub.add_parser("monitor", help="re-score a loan book and raise early warnings"))
    m.add_argument("--model", required=True, help="registered model NAME or NAME:VERSION")
    m.add_argument("--dataset", required=True, help="the bank's loan book")
    m.add_argument("--every", help="repeat on this period (e.g. 1d, 6h, 30m); once when absent")
    m.add_argument("--threshold-band", default="D", help="alert when a firm crosses into this band or worse")
    m.add_argument("--band-moves", type=int, default=2, help="alert when a firm moves this many bands")
    m.add_argument("--json", help="also write each round's summary here")
    m.set_defaults(fn=cmd_monitor, cleanup_on_sigterm=True)

    v = common.with_home(sub.add_parser("serve", help="keep a party's model parts loaded for online scoring"))
    v.add_argument("--party", required=True)
    v.add_argument("--model", action="append", help="NAME or NAME:VERSION to serve as label owner (repeatable; "
                   "default: every registered model this party is the label owner of)")  # fmt: skip
    v.add_argument("--dataset", help="the label owner's table to look firms up in (default: the training table)")
    v.add_argument("--reasons", type=int, default=3, help="reason codes per firm (default 3)")
    v.add_argument("--http-port", type=int, default=0, help="the label owner's HTTPS port (0: the OS picks)")
    v.add_argument("--client", action="append", help="a certificate identity allowed to call POST /score "
                   "(repeatable; default: the party's own)")  # fmt: skip
    v.add_argument("--host", default="127.0.0.1", help="listen host")
    v.add_argument("--port", type=int, default=0, help="the gRPC port partners call (0: the OS picks)")
    v.add_argument("--insecure-dev", action="store_true", help="plaintext, no identities: development only")
    v.set_defaults(fn=cmd_serve)
