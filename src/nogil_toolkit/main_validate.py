"""``nogil-toolkit validate``: check ``[tool.nogil]`` of one or more ``pyproject.toml`` files.

The smallest command a pre-commit hook or CI step needs: it reads each file with the same
defensive reader and validates with the same rules as the build plugins, and prints each
problem as one ``error:`` line with ``file:line:column``. Nothing is built, edited or imported.
"""

from __future__ import annotations

import argparse

from nogil_toolkit.config import ConfigError, parse_config
from nogil_toolkit.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, error, info
from nogil_toolkit.pyproject_file import PYPROJECT, PyprojectFileError, find_pyproject, read_pyproject

DESCRIPTION = """\
Check the [tool.nogil] table of each pyproject.toml with the rules the build plugins use: every
problem is one line, error: <key>: <what> (<file>:<line>:<column>). A file without [tool.nogil]
is valid (it declares nothing). Use it in CI or as the nogil-declaration pre-commit hook.
"""

EPILOG = """\
exit status:
  0  every file is valid
  1  a [tool.nogil] table is invalid, or a file is not valid TOML
  2  usage error: a path that is no pyproject.toml, or one that is not a regular, readable
     UTF-8 file of at most 4 MiB
"""


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "validate", help="check [tool.nogil] in pyproject.toml files",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", metavar="PATH", nargs="*", default=["."],
                        help="pyproject.toml files or project directories (default: the current directory)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    worst = EXIT_OK
    for given in args.paths:
        worst = max(worst, _validate(given))
    return worst


def _validate(given: str) -> int:
    path = find_pyproject(given)
    try:
        text = read_pyproject(path)
    except PyprojectFileError as exc:
        error(exc.message, str(path))
        return EXIT_USAGE
    if text is None:
        error(f"no {PYPROJECT} found" if path.name == PYPROJECT else "no such file or directory", str(path))
        return EXIT_USAGE
    try:
        config = parse_config(text, path)
    except ConfigError as exc:
        for problem in exc.problems:
            error(problem.what, problem.where)
        return EXIT_FAILURE
    info(f"{path}: " + ("[tool.nogil] is valid" if config else "no [tool.nogil] table, nothing declared"))
    return EXIT_OK
