"""``nogil-toolkit shim``: the shim and compile flags of each module, for build systems without
Python plugins (meson, CMake).

The setuptools plugin calls :mod:`nogil_toolkit.shim` in-process; meson and CMake run this
command at configure time instead, so all three backends compile the same generated C with the
same flags. Output is one tab-separated line per module, in the order given, made to be split
by a build language that has no JSON parser (meson)::

    MODULE <TAB> DECLARATION <TAB> SHIM <TAB> RENAME <TAB> CYTHON <TAB> LINK <TAB> HOOK

``DECLARATION`` is ``not-used``, ``used`` or ``none`` (no rule covers the module: the build
leaves it untouched and the other fields are empty). ``RENAME``, ``CYTHON`` and ``HOOK`` are
``-D`` compile flags for the module's own sources (``HOOK`` renames Python 3.15's export hook
``PyModExport_<name>``, harmless where there is none); ``LINK`` is a linker flag, empty except
on macOS.

A module that defines the export hook (PEP 793) is named with ``--export-hook``: its shim then
wraps the hook too. Unlike setuptools, meson and CMake cannot relink a module after looking at
it (see :mod:`nogil_toolkit.export_hooks`), so the build says which modules have one.

With ``--check-built FILE MODULE`` nothing is written or printed: the linked module is checked
for an export hook its shim does not wrap (CMake runs it after linking each declared module).

With ``--record FILE`` the modules are taken as all the modules the build declares: the
declaration record is written to ``FILE`` and an override of ``[tool.nogil.modules]`` that names
none of them fails, as it fails a setuptools build. It is written as ``declare`` writes
``pyproject.toml`` (:mod:`nogil_toolkit.replace_file`), and only over a regular file.
"""

from __future__ import annotations

import argparse
import stat
import sys
from pathlib import Path
from typing import Any, Optional

from nogil_toolkit.abi import dotted_module_name
from nogil_toolkit.config import ConfigError, NogilConfig, load_config, unmatched_overrides_error
from nogil_toolkit.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, error, warning
from nogil_toolkit.export_hooks import mapped_binary, unwrapped_hook_problem
from nogil_toolkit.regular_file import file_kind
from nogil_toolkit.replace_file import NotDurable, ReplaceRefused, new_file_status, replace_file
from nogil_toolkit.shim import ShimPlan, write_shim
from nogil_toolkit.wheel.record import DeclarationRecord

EPILOG = """\
output, one line per MODULE, fields separated by a tab:
  MODULE  DECLARATION  SHIM  RENAME  CYTHON  LINK  HOOK
  DECLARATION is not-used, used, or none (no rule of [tool.nogil] covers the module: leave it
  as it is; the other fields are then empty)

exit status: 0 done; 1 [tool.nogil] is invalid, (with --record) an override names no module or
FILE is not a regular file, (with --check-built) the module defines an export hook its shim does
not wrap or FILE is not a regular file, or a file cannot be read or written;
2 usage error (no [tool.nogil] table, a module name that is not a dotted identifier)

--record writes FILE atomically (complete or not at all, no temporary file left behind) and
replaces only a regular file: a directory, FIFO or device at FILE is refused. A symlink to a
regular file is followed, as declare follows one to pyproject.toml: the file it points to is
replaced and the link stays.

examples:
  nogil-toolkit shim --output-dir build/shims pkg._speedups pkg.legacy._old
  nogil-toolkit shim --output-dir build/shims --export-hook pkg._speedups pkg._speedups
  nogil-toolkit shim --record build/nogil-declaration.json pkg._speedups pkg.legacy._old
  nogil-toolkit shim --check-built build/_speedups.cpython-315-x86_64-linux-gnu.so pkg._speedups
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "shim", help="write the module-init shims and print their compile flags (for meson, CMake)",
        description="Write the generated module-init shim of each MODULE that [tool.nogil] declares and "
                    "print the flags its sources need: the integration point of build systems that "
                    "cannot run Python plugins.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="+", metavar="MODULE", help="dotted name of an extension module")
    parser.add_argument("--project", metavar="PATH", default=".",
                        help="project directory or pyproject.toml file (default: the current directory)")
    parser.add_argument("--output-dir", metavar="DIR", type=Path,
                        help="write the shims here (default: print the flags only, SHIM is empty)")
    parser.add_argument("--cplusplus", action="store_true",
                        help="name the shims .cpp, for a project that enables no C compiler")
    parser.add_argument("--export-hook", metavar="MODULE", action="append", default=[],
                        help="MODULE (one of the MODULEs) also defines Python 3.15's export hook "
                             "PyModExport_<name>: its shim wraps the hook too (repeat for each such module)")
    parser.add_argument("--check-built", metavar="FILE", type=Path,
                        help="FILE is the linked MODULE (give one): fail if it defines Python 3.15's export "
                             "hook and its shim does not wrap it (MODULE missing from --export-hook); "
                             "prints nothing")
    parser.add_argument("--record", metavar="FILE", type=Path,
                        help="the MODULEs are all the build declares: check the overrides against them "
                             "and write the declaration record (nogil-declaration.json) to FILE (a regular "
                             "file or none; a symlink's target is written)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.project)
    except ConfigError as exc:
        _config_errors(exc)
        return EXIT_FAILURE
    if config is None:
        error("no [tool.nogil] table", str(Path(args.project)))
        return EXIT_USAGE
    strangers = sorted(set(args.export_hook) - set(args.modules))
    if strangers:
        error(f"--export-hook names {', '.join(strangers)}, which is not among the MODULEs", str(config.path))
        return EXIT_USAGE
    try:
        plans = module_plans(config, args.modules, frozenset(args.export_hook))
    except ConfigError as exc:  # patterns that disagree about a module
        _config_errors(exc)
        return EXIT_FAILURE
    except ValueError as exc:
        error(str(exc), str(config.path))
        return EXIT_USAGE
    if args.check_built is not None:
        return _check_built(args.check_built, args.modules, plans)
    if args.record is not None:
        unmatched = unmatched_overrides_error(config, args.modules)
        if unmatched is not None:
            _config_errors(unmatched)
            return EXIT_FAILURE
        declared = {module: plan.declaration for module, plan in plans.items() if plan is not None}
        if not _record(args.record, DeclarationRecord(declared, config.thread_safe).to_text()):
            return EXIT_FAILURE
    try:
        lines = ["\t".join(plan_fields(module, plan, args.output_dir, args.cplusplus))
                 for module, plan in plans.items()]
    except OSError as exc:
        error(f"cannot write: {exc.strerror or exc}", exc.filename or str(args.output_dir))
        return EXIT_FAILURE
    print("\n".join(lines))
    return EXIT_OK


def _check_built(built: Path, modules: list[str], plans: dict[str, Optional[ShimPlan]]) -> int:
    """The linked module against its plan: a build that cannot relink a module after looking at
    it (CMake) runs this once the module is linked."""
    if len(modules) != 1:
        error(f"--check-built takes one MODULE, not {len(modules)}", str(built))
        return EXIT_USAGE
    plan = plans[modules[0]]
    if plan is None or plan.export_hook:
        return EXIT_OK
    remedy = f"name it with --export-hook {plan.module} (CMake: nogil_declare(<target> {plan.module} EXPORT_HOOK))"
    try:
        with mapped_binary(built) as binary:
            problem = unwrapped_hook_problem(plan, binary, remedy)
    except OSError as exc:  # NotRegularFile among them: a FIFO or a device is never read
        error(f"cannot read the built module: {exc.strerror or exc}", str(built))
        return EXIT_FAILURE
    if problem is not None:
        error(problem, str(built))
        return EXIT_FAILURE
    return EXIT_OK


def _config_errors(exc: ConfigError) -> None:
    """One ``error: <what> (<file>:<line>:<col>)`` line per problem, as every command prints them."""
    for problem in exc.problems:
        error(problem.what, problem.where)


def module_plans(config: NogilConfig, modules: list[str],
                 export_hooks: frozenset[str] = frozenset()) -> dict[str, Optional[ShimPlan]]:
    """The shim plan of each module, ``None`` where no rule of ``config`` covers it; the
    modules in ``export_hooks`` get their export hook wrapped.

    Raises ValueError for a name no shim can be made for, ConfigError for patterns that
    disagree about a module."""
    plans: dict[str, Optional[ShimPlan]] = {}
    for module in modules:
        # Checked before anything is written. ASCII only: the shim defines PyInit_<name>, and
        # non-ASCII names would need PEP 489's PyInitU_ with punycode.
        if dotted_module_name(module.split(".")) is None or not module.isascii():
            raise ValueError(f"extension module name {module!r} is not a dotted name of identifiers (ASCII)")
        declaration = config.declaration_for(module)
        plans[module] = None if declaration is None else ShimPlan(module, declaration, module in export_hooks)
    return plans


def plan_fields(module: str, plan: Optional[ShimPlan], output_dir: Optional[Path], cplusplus: bool) -> list[str]:
    """The seven output fields of one module; writes its shim when ``output_dir`` is given."""
    if plan is None:
        return [module, "none", "", "", "", "", ""]
    shim = str(write_shim(plan, output_dir, cplusplus).resolve()) if output_dir is not None else ""
    hidden = [plan.alias, *([plan.hook_alias] if plan.export_hook else [])]
    link = " ".join(f"-Wl,-unexported_symbol,_{name}" for name in hidden) if sys.platform == "darwin" else ""
    return [module, plan.declaration.value, shim, _define(plan.rename_macro()), _define(plan.cython_macro()), link,
            _define(plan.hook_rename_macro())]


def _define(macro: tuple[str, str]) -> str:
    return f"-D{macro[0]}={macro[1]}"


def _record(path: Path, text: str) -> bool:
    """Write the declaration record; False (and one error line) if it was not written."""
    try:
        write_record(path, text)
    except ReplaceRefused as exc:
        error(str(exc), str(path))
        return False
    except OSError as exc:
        error(f"cannot write the declaration record: {exc.strerror or exc}; nothing was written", str(path))
        return False
    except NotDurable as exc:
        warning(f"{path} was written, but syncing its directory failed ({exc}): a crash may still undo it")
    return True


def write_record(path: Path, text: str) -> None:
    """Write whole or not at all: a build must never pick up a half-written record, nor find a
    temporary file next to it. ReplaceRefused when something other than a regular file is at
    ``path``: a rename would replace a FIFO or a device node (as root, ``/dev/full``) with a
    file. A symlink to a regular file is followed, as ``declare`` follows one; a dangling one
    is replaced, as ``declare`` replaces one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        status = path.stat()
    except FileNotFoundError:
        target, status = path.absolute(), new_file_status(path.parent)
    else:
        if not stat.S_ISREG(status.st_mode):
            raise ReplaceRefused(f"{path.name} is {file_kind(status.st_mode)}, not a regular file; "
                                 "nothing was written")
        target = path.resolve()
    replace_file(target, text.encode("utf-8"), status)
