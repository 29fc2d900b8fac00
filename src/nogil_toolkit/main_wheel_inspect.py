"""``nogil-toolkit wheel inspect``: what the extension modules in wheels declare."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from nogil_toolkit.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, error, plural, style
from nogil_toolkit.wheel.output import (Verified, printable, wheel_json, write_findings, write_verify_github,
                                        write_verify_sarif, write_wheel_text)
from nogil_toolkit.wheel.reading import WheelError, read_wheel
from nogil_toolkit.wheel.verify import Severity, verify

SCHEMA_VERSION = 2
"""Of the ``--format json`` document (``wheel_report.schema.json``); 2 added unreadable entries."""

EPILOG = """\
Reads the binaries statically, in memory: nothing is extracted, imported or run. Each module's
verdict is one of not-used (declared safe without the GIL), used, undeclared (CPython then
re-enables the GIL), not-a-module or unknown, with the evidence that decided it.

A wheel installers would refuse (a member outside the install folder, two members of one name,
a RECORD that disagrees with the archive) counts as unreadable. A binary larger than 1 GiB, or
past 4 GiB of binaries in one wheel, is not read: its verdict is unknown and says so.
With --format json every wheel given is an entry, an unreadable one with its error
(schema: wheel_report.schema.json).

exit status: 0 all wheels read; 2 a wheel could not be read (the others are still shown)

example:
  nogil-toolkit wheel inspect dist/*.whl
  nogil-toolkit wheel inspect --format json numpy-2.3.0-cp313-cp313t-manylinux_2_28_x86_64.whl
"""


def register(subparsers: Any) -> None:
    add_report_command(
        subparsers, "inspect", check=False, epilog=EPILOG,
        help="show what each extension module in a wheel declares",
        description="Show, for each wheel, its tags, Free Threading classifier, declaration record and "
                    "what each extension module declares about the GIL.")


def add_report_command(subparsers: Any, name: str, *, check: bool, epilog: str, help: str,
                       description: str, formats: Sequence[str] = ("text", "json"), format_help: str = "") -> None:
    """The parser of ``inspect`` or (``check``) ``verify``: the same arguments, one loop."""
    parser = subparsers.add_parser(name, help=help, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheels", nargs="+", metavar="WHEEL")
    parser.add_argument("--format", choices=formats, default="text", help=format_help or None)
    parser.set_defaults(handler=lambda args: report(args.wheels, args.format, check=check))


def report(paths: Sequence[str], output_format: str, *, check: bool) -> int:
    """The loop of ``inspect`` and, with ``check``, of ``verify``: every path given is read,
    shown and (with ``check``) held to its claims; an unreadable one is an error on stderr and,
    in JSON, an entry with that error, so the document accounts for every input."""
    code = EXIT_OK
    documents: list[dict[str, Any]] = []
    verified: list[Verified] = []
    for path in paths:
        try:
            wheel = read_wheel(path)
        except WheelError as exc:
            error(printable(str(exc)))
            code = EXIT_USAGE
            documents.append({"path": path, "error": exc.reason, **({"ok": False} if check else {})})
            verified.append(Verified(path, unreadable=exc.reason))
            if output_format == "github":
                write_verify_github(verified[-1], sys.stdout)
            continue
        findings = verify(wheel) if check else None
        failed = any(f.severity is Severity.ERROR for f in findings or ())
        if failed and code == EXIT_OK:
            code = EXIT_FAILURE
        if findings is not None and output_format in ("github", "sarif"):
            verified.append(Verified(wheel.path, wheel, findings))
            if output_format == "github":
                write_verify_github(verified[-1], sys.stdout)
        elif output_format == "json":
            documents.append({**wheel_json(wheel, findings), **({"ok": not failed} if check else {})})
        elif findings is None:
            write_wheel_text(wheel, sys.stdout)
        else:
            verdict = style("FAIL", "red", sys.stdout) if failed else style("ok", "green", sys.stdout)
            print(f"{verdict}  {printable(wheel.path)} ({plural(len(wheel.extension_modules), 'extension module')})")
            write_findings(findings, sys.stdout)
    if output_format == "json":
        json.dump({"schema_version": SCHEMA_VERSION, "wheels": documents}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif output_format == "sarif":
        write_verify_sarif(verified, sys.stdout)
    return code
