"""The ``safehouse`` command line: one entry point for every role and command.

Each command group lives in its own module (``jobs``, ``data``, ``scoring``, ``controls``)
and registers its subcommands here; an error a user can cause ends in one line
naming what is wrong, and exit status 2.
"""

from __future__ import annotations

import argparse
import signal
import sys

from parties.cli import controls, data, jobs, scoring
from protocols.errors import SafehouseError

GROUPS = (jobs, data, scoring, controls)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safehouse", description="Safehouse (数据安全屋): joint credit modelling")
    p.add_argument("--home", help="state directory (default $SAFEHOUSE_HOME or ./.safehouse)")
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
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
    if getattr(args, "cleanup_on_sigterm", False):
        _exit_on_sigterm()
    try:
        return int(args.fn(args))
    except SafehouseError as e:
        print(f"safehouse: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("safehouse: interrupted", file=sys.stderr)
        return 130
