"""``nogil-toolkit wheel annotate``: add or refresh the declaration record in a built wheel."""

from __future__ import annotations

import argparse
import os
from typing import Any

from nogil_toolkit.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, error, info
from nogil_toolkit.wheel.annotate import AnnotateError, annotate
from nogil_toolkit.console import printable
from nogil_toolkit.wheel.reading import WheelError, read_wheel
from nogil_toolkit.wheel.record import RECORD_NAME

EPILOG = f"""\
The record ({RECORD_NAME} in the wheel's .dist-info, listed in RECORD) is derived from what
the binaries declare, so it can be added to wheels from any backend (maturin, meson-python,
scikit-build) or refreshed after 'auditwheel repair'. A module whose declaration cannot be read
stops the annotation. Everything else in the wheel is kept as it was (names, order, bytes,
timestamps, permissions); the new wheel replaces the old one atomically.

exit status: 0 annotated or already up to date; 1 refused (nothing written); 2 unreadable wheel,
one installers would refuse, or -w DIR that is not a directory

example:
  nogil-toolkit wheel annotate wheelhouse/mypkg-1.0-cp313-cp313t-manylinux_2_28_x86_64.whl
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "annotate", help="add or refresh the declaration record in a wheel",
        description="Record, in the wheel's metadata, what each of its extension modules declares.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", metavar="WHEEL")
    parser.add_argument("-w", "--wheel-dir", metavar="DIR",
                        help="write the annotated wheel into DIR instead of replacing WHEEL")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        report = read_wheel(args.wheel)
    except WheelError as exc:
        error(printable(str(exc)))
        return EXIT_USAGE
    wheel = printable(args.wheel)
    output = None
    if args.wheel_dir:
        if os.path.exists(args.wheel_dir) and not os.path.isdir(args.wheel_dir):
            error("exists and is not a directory", printable(args.wheel_dir))
            return EXIT_USAGE
        try:
            os.makedirs(args.wheel_dir, exist_ok=True)
        except OSError as exc:
            error(f"cannot create the output directory: {exc.strerror}", printable(args.wheel_dir))
            return EXIT_USAGE
        output = os.path.join(args.wheel_dir, os.path.basename(args.wheel))
    try:
        result = annotate(report, output)
    except AnnotateError as exc:
        error(printable(str(exc)), wheel)
        return EXIT_FAILURE
    except WheelError as exc:
        error(printable(str(exc)))
        return EXIT_USAGE
    except OSError as exc:
        error(printable(f"cannot write the annotated wheel: {exc}"), printable(output or args.wheel))
        return EXIT_FAILURE
    if not result.changed:
        info(f"{wheel}: the record is up to date, nothing written")
        return EXIT_OK
    verb = "refreshed" if result.previous is not None else "added"
    counts = {}
    for declaration in result.record.modules.values():
        counts[declaration.value] = counts.get(declaration.value, 0) + 1
    summary = ", ".join(f"{n} {value}" for value, n in sorted(counts.items()))
    info(f"{printable(result.output)}: {verb} {RECORD_NAME} ({summary})")
    return EXIT_OK
