"""``nogil-toolkit wheel``: the commands that read, check, annotate and choose wheels.

Each subcommand lives in its own ``main_wheel_<name>.py`` exposing ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nogil_toolkit import main_wheel_annotate, main_wheel_inspect, main_wheel_select, main_wheel_verify

SUBCOMMANDS = (main_wheel_inspect, main_wheel_verify, main_wheel_annotate, main_wheel_select)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "wheel", help="inspect, verify, annotate and select wheels",
        description="Read what the extension modules in wheels declare about the GIL, check a wheel's "
                    "claims against its binaries, record the declaration in a wheel built by any backend, "
                    "and pick the wheels fit for a free-threaded interpreter.")
    commands = parser.add_subparsers(title="wheel commands", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(commands)
    parser.set_defaults(handler=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2
