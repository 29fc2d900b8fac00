"""``nogil-toolkit run``: run a command with the import guard on in every Python process it starts.

The launcher sets the environment and replaces itself with the command (``exec``), so signals
and the exit status are the command's own:

- ``NOGIL_MODE``, ``NOGIL_ALLOW``, ``NOGIL_PROJECT``: what the guard enforces (see
  :mod:`nogil_toolkit.guard.policy`);
- ``PYTHONPATH`` gets a folder (:func:`nogil_toolkit.guard.envhook.run_folder`) holding a
  ``sitecustomize`` that starts the guard and then runs the environment's own
  ``sitecustomize``: any interpreter the command starts (``python script.py``, ``python -m
  pkg``, a console script such as ``pytest``, their children) picks it up, as long as it is
  not started with ``-E``/``-I``;
- ``PYTHON_GIL``: ``0`` for ``unsafe-nogil`` and ``serialize`` (CPython cannot turn the GIL off once it is on),
  ``1`` for ``gil``; left as it is for ``nogil``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from nogil_toolkit.cache_location import default_cache_dir
from nogil_toolkit.config import ConfigError, load_config
from nogil_toolkit.console import EXIT_USAGE, error
from nogil_toolkit.guard.envhook import run_folder
from nogil_toolkit.guard.policy import (ALLOW_SEPARATOR, GIL, MODES, NOGIL, SERIALIZE, UNSAFE_NOGIL, PolicyError,
                                        parse_allow)

EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127

EPILOG = """\
modes (what happens when an extension module has not declared it runs without the GIL):
  nogil         its import fails with nogil_toolkit.guard.GilRequiredImportError, before any of
                its code runs (default; a [tool.nogil.check] mode in pyproject.toml may change it)
  unsafe-nogil  it loads with the GIL off (PYTHON_GIL=0 is set) and a one-time
                nogil_toolkit.guard.UndeclaredModuleWarning names it
  serialize     it loads with the GIL off (PYTHON_GIL=0 is set) and every call into it holds one
                process-wide lock, so one thread at a time runs undeclared extensions while
                the rest runs in parallel; a nogil_toolkit.guard.SerializeCoverageWarning per
                module says what is locked and what could not be
  gil           nothing is checked; the interpreter runs with the GIL (PYTHON_GIL=1 is set)

exit status:
  the command's own (the launcher replaces itself with the command), or
  2    usage error: no command, a bad --allow, an invalid pyproject.toml
  126  the command cannot be executed
  127  the command was not found

examples:
  nogil-toolkit run -- python app.py
  nogil-toolkit run --mode unsafe-nogil -- python -W ignore::nogil_toolkit.guard.UndeclaredModuleWarning app.py
  nogil-toolkit run --allow 'legacy._c=audited, one lock' -- pytest -x
  nogil-toolkit run --mode serialize -- python app.py
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="run a command with the import guard (gil / nogil / unsafe-nogil / serialize)",
        description="Run COMMAND with every extension module it imports checked before it is loaded, in "
                    "every Python process the command starts.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [--mode MODE] [--allow MODULE[=REASON]] [--project DIR | --no-project] -- COMMAND [ARG...]")
    policy = parser.add_argument_group("policy (the same as nogil-check-env's)")
    policy.add_argument("--mode", choices=MODES, help="see 'modes' below")
    policy.add_argument("--allow", metavar="MODULE[=REASON]", action="append", default=[],
                        help="accept a module (or glob) that needs the GIL; repeatable")
    policy.add_argument("--project", metavar="DIR", default=".",
                        help="use [tool.nogil.check] of DIR/pyproject.toml (default: current directory)")
    policy.add_argument("--no-project", action="store_true", help="ignore any pyproject.toml")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]", help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def guard_environment(mode: str, allow: Sequence[str], project: str | None, bootstrap: Path,
                      environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with what the guard in ``mode`` needs in every process the command starts."""
    env = dict(environ)
    env["NOGIL_MODE"] = mode
    env["NOGIL_ALLOW"] = ALLOW_SEPARATOR.join(allow)
    env["NOGIL_PROJECT"] = project or ""
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(bootstrap)]
    env["PYTHONPATH"] = os.pathsep.join([str(bootstrap), *paths])
    if mode in (UNSAFE_NOGIL, SERIALIZE):
        env["PYTHON_GIL"] = "0"
    elif mode == GIL:
        env["PYTHON_GIL"] = "1"
    return env


def run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        error("no command to run", "nogil-toolkit run [options] -- COMMAND [ARG...]")
        return EXIT_USAGE
    project = None if args.no_project else os.path.abspath(args.project)
    mode = args.mode
    try:
        config = load_config(project) if project else None
        for entry in args.allow:
            parse_allow(entry)
    except ConfigError as exc:
        error(f"invalid pyproject.toml: {str(exc).splitlines()[0]}")
        return EXIT_USAGE
    except PolicyError as exc:
        error(f"--{exc}")
        return EXIT_USAGE
    if mode is None:
        mode = (config.check.mode if config is not None else None) or NOGIL
    env = guard_environment(mode, args.allow, project, run_folder(Path(default_cache_dir())), os.environ)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        error(f"command not found: {command[0]}")
        return EXIT_NOT_FOUND
    except OSError as exc:
        error(f"cannot execute {command[0]}: {exc.strerror or exc}")
        return EXIT_CANNOT_EXECUTE
    return EXIT_CANNOT_EXECUTE  # not reached: exec does not return
