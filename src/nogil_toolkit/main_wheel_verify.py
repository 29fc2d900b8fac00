"""``nogil-toolkit wheel verify``: fail when a wheel's claims disagree with its binaries."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nogil_toolkit.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, error, plural, style
from nogil_toolkit.wheel.output import wheel_json, write_findings
from nogil_toolkit.wheel.reading import WheelError, read_wheel
from nogil_toolkit.wheel.verify import Severity, verify

EPILOG = """\
checks, each against what the binaries declare (read statically):
  record      nogil-declaration.json lists each module with the declaration its binary carries
  tag         a free-threaded ABI tag (cp313t) only with modules that declare not-used
              (an explicit 'used' is a warning: declared, but it re-enables the GIL)
  suffix      no t-only module in a cp313/abi3 wheel, no GIL or abi3 module in a cp313t wheel
  classifier  'Programming Language :: Python :: Free Threading' only when every module declares
              not-used (level 1 - Unstable: warning)

exit status: 0 no errors (warnings allowed); 1 some claim is wrong; 2 a wheel could not be read

example:
  nogil-toolkit wheel verify wheelhouse/*.whl
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify", help="check a wheel's tags, record and classifier against its binaries",
        description="Exit non-zero, with a reason per module, when a wheel's free-threading claims "
                    "disagree with what its extension modules declare.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheels", nargs="+", metavar="WHEEL")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    code = EXIT_OK
    documents = []
    for path in args.wheels:
        try:
            report = read_wheel(path)
        except WheelError as exc:
            error(str(exc))
            code = EXIT_USAGE
            continue
        findings = verify(report)
        failed = any(f.severity is Severity.ERROR for f in findings)
        if failed and code == EXIT_OK:
            code = EXIT_FAILURE
        if args.format == "json":
            documents.append({**wheel_json(report, findings), "ok": not failed})
            continue
        verdict = style("FAIL", "red", sys.stdout) if failed else style("ok", "green", sys.stdout)
        print(f"{verdict}  {report.path} ({plural(len(report.extension_modules), 'extension module')})")
        write_findings(findings, sys.stdout)
    if args.format == "json":
        json.dump({"schema_version": 1, "wheels": documents}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return code
