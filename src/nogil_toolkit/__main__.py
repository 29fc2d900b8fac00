"""``nogil-toolkit``: one command with a subcommand per job, each a thin shell over the library.

Each subcommand lives in a ``main_<name>.py`` module exposing ``register(subparsers)``, which
adds its parser and sets ``handler`` to a function taking the parsed arguments and returning
the exit code.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from nogil_toolkit import __version__, main_declare, main_shim, main_wheel
from nogil_toolkit.console import EXIT_USAGE

SUBCOMMANDS = (main_declare, main_wheel, main_shim)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nogil-toolkit",
        description="Declare, build and verify extension modules that run without the GIL "
                    "on free-threaded CPython.",
        epilog="Run 'nogil-toolkit COMMAND --help' for a command's options. "
               "To check an installed environment, use 'nogil-check-env'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
