"""``nogil-toolkit``: one command with a subcommand per job, each a thin shell over the library.

Each subcommand lives in a ``main_<name>.py`` module exposing ``register(subparsers)``, which
adds its parser and sets ``handler`` to a function taking the parsed arguments and returning
the exit code.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from nogil_toolkit import (__version__, main_audit, main_declare, main_guard, main_run, main_shim, main_validate,
                           main_wheel)
from nogil_toolkit.console import EXIT_STATUS_HELP, EXIT_USAGE, run_cli

SUBCOMMANDS = (main_declare, main_validate, main_wheel, main_shim, main_audit, main_run, main_guard)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nogil-toolkit",
        description="Declare, build and verify extension modules that run without the GIL "
                    "on free-threaded CPython.",
        epilog="Run 'nogil-toolkit COMMAND --help' for a command's options. "
               "To check an installed environment, use 'nogil-check-env'.\n\n"
               "exit status (every command):\n"
               "  0    success\n"
               "  1    the check or operation failed (see the command's help)\n"
               "  2    usage error, bad input, or output that cannot be written\n"
               f"{EXIT_STATUS_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


@run_cli
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
