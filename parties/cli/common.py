"""Helpers every command module shares: the home, logging, warnings, common flags."""

from __future__ import annotations

import argparse
import logging
import sys

from enclave.home import Home


def home(args: argparse.Namespace) -> Home:
    return Home.resolve(args.home)


def logging_to_stderr(verbose: bool = True) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def with_home(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument("--home", default=argparse.SUPPRESS, help="state directory")
    return sp


def server_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--host", default="127.0.0.1", help="listen host")
    sp.add_argument("--port", type=int, default=0, help="listen port (0: the OS picks)")
    sp.add_argument("--port-file", help="write the bound port here")
