"""Helpers every command module shares: the home, logging, warnings, common flags."""

from __future__ import annotations

import argparse
import logging
import sys

from enclave.home import Home
from protocols.errors import SafehouseError


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


def duration(text: str) -> float:
    """Seconds in a period such as ``1d``, ``6h``, ``30m`` or ``45s``."""
    units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.replace(".", "", 1).isdigit() or float(number) <= 0:
        raise SafehouseError(f"--every {text!r}: expected a period like 1d, 6h, 30m or 45s")
    return float(number) * units[unit]
