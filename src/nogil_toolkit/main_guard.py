"""``nogil-toolkit guard install|uninstall``: make an environment honour ``NOGIL_MODE``.

A thin shell over :mod:`nogil_toolkit.guard.envhook`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from nogil_toolkit.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, error, info, warning
from nogil_toolkit.guard import envhook
from nogil_toolkit.target import TargetError

EPILOG = """\
NOGIL_MODE, read at every start of the environment's interpreter once the hook is installed:
  nogil         importing an extension module that has not declared it runs without the GIL
                fails with nogil_toolkit.guard.GilRequiredImportError, before its code runs
  unsafe-nogil  it loads with the GIL off and one nogil_toolkit.guard.UndeclaredModuleWarning;
                start Python with PYTHON_GIL=0 as well
  serialize     it loads with the GIL off, and every call into it holds one process-wide
                lock; one nogil_toolkit.guard.SerializeCoverageWarning per module says what is
                locked; start Python with PYTHON_GIL=0 as well
  gil           nothing is checked (start Python with PYTHON_GIL=1 to run with the GIL)
  unset         the hook does nothing (it reads one environment variable)
NOGIL_ALLOW ('MODULE[=REASON];...') and NOGIL_PROJECT (the project whose [tool.nogil.check]
applies; default: the current directory) set the policy. A combination that cannot work
(unsafe-nogil or serialize without PYTHON_GIL=0, the GIL already on, an unknown mode) is explained in one
line on stderr.

exit status:
  0  done (also when there was nothing to do)
  1  the files could not be written or removed
  2  usage error, or the interpreter could not be asked where its packages go
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "guard", help="install or remove the NOGIL_MODE hook in an environment",
        description="Install (or remove) a start-up hook that makes an environment's interpreter honour "
                    "NOGIL_MODE: two files in its site-packages.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    for name, handler, text in (("install", _install, "add the hook (idempotent)"),
                                ("uninstall", _uninstall, "remove the hook and its bytecode")):
        action = actions.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]}.", epilog=EPILOG,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        action.add_argument("--python", metavar="PATH",
                            help="the environment's interpreter (default: the one running this tool)")
        action.set_defaults(handler=handler)
    parser.set_defaults(handler=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _target(args: argparse.Namespace) -> envhook.HookTarget | None:
    try:
        return envhook.hook_target(args.python)
    except TargetError as exc:
        error(str(exc))
        return None


def _install(args: argparse.Namespace) -> int:
    target = _target(args)
    if target is None:
        return EXIT_USAGE
    status = _change(target, envhook.install, "install the hook", "installed the NOGIL_MODE hook in {}",
                     "the NOGIL_MODE hook is already installed in {}")
    if status == EXIT_OK and not target.free_threaded:
        warning(f"{target.interpreter} runs with the GIL: NOGIL_MODE=nogil, unsafe-nogil or serialize will only say so")
    return status


def _uninstall(args: argparse.Namespace) -> int:
    target = _target(args)
    if target is None:
        return EXIT_USAGE
    return _change(target, envhook.uninstall, "remove the hook", "removed the NOGIL_MODE hook from {}",
                   "the NOGIL_MODE hook is not installed in {}")


def _change(target: envhook.HookTarget, change: Callable[[envhook.HookTarget], bool], doing: str,
            changed: str, unchanged: str) -> int:
    """Run ``change`` (which says whether it changed anything) and report it in one line."""
    try:
        done = change(target)
    except OSError as exc:
        error(f"cannot {doing}: {exc.strerror or exc}", str(exc.filename or target.site_packages))
        return EXIT_FAILURE
    info((changed if done else unchanged).format(target.site_packages))
    return EXIT_OK
