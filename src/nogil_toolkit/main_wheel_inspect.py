"""``nogil-toolkit wheel inspect``: what the extension modules in wheels declare."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nogil_toolkit.console import EXIT_OK, EXIT_USAGE, error
from nogil_toolkit.wheel.output import wheel_json, write_wheel_text
from nogil_toolkit.wheel.reading import WheelError, read_wheel

EPILOG = """\
Reads the binaries statically, in memory: nothing is extracted, imported or run. Each module's
verdict is one of not-used (declared safe without the GIL), used, undeclared (CPython then
re-enables the GIL), not-a-module or unknown, with the evidence that decided it.

exit status: 0 all wheels read; 2 a wheel could not be read (the others are still shown)

example:
  nogil-toolkit wheel inspect dist/*.whl
  nogil-toolkit wheel inspect --format json numpy-2.3.0-cp313-cp313t-manylinux_2_28_x86_64.whl
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inspect", help="show what each extension module in a wheel declares",
        description="Show, for each wheel, its tags, Free Threading classifier, declaration record and "
                    "what each extension module declares about the GIL.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheels", nargs="+", metavar="WHEEL")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    reports, code = [], EXIT_OK
    for path in args.wheels:
        try:
            reports.append(read_wheel(path))
        except WheelError as exc:
            error(str(exc))
            code = EXIT_USAGE
    if args.format == "json":
        json.dump({"schema_version": 1, "wheels": [wheel_json(r) for r in reports]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for report in reports:
            write_wheel_text(report, sys.stdout)
    return code
