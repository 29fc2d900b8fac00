"""``nogil-toolkit declare``: edit the GIL declaration in ``pyproject.toml`` from the command line.

A thin shell over :mod:`nogil_toolkit.pyproject_edit`: it turns options into
:class:`~nogil_toolkit.pyproject_edit.DeclarationChange` values, checks the result with the
same validator the build uses, and writes the file atomically (or shows the diff).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from nogil_toolkit.build_integration import BuildIntegration, integrate_build_system
from nogil_toolkit.config import ConfigError, ConfigProblem, parse_config
from nogil_toolkit.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, error, info, warning
from nogil_toolkit.pyproject_edit import (
    FREE_THREADING_PREFIX,
    DeclarationChange,
    DeclareError,
    FreeThreadingLevel,
    TomlSyntaxError,
    declare_in_text,
    parse_toml,
)
from nogil_toolkit.pyproject_file import PYPROJECT, PyprojectFileError, find_pyproject, read_pyproject
from nogil_toolkit.replace_file import NotDurable, ReplaceRefused, check_replaceable, new_file_status, replace_file

DESCRIPTION = """\
Declare in pyproject.toml which extension modules run without the GIL.

Edits [tool.nogil] (and, with --classifier, [project].classifiers) in place: comments, blank
lines, quoting and key order outside the edited keys are kept byte for byte, and an existing
dotted-key or inline-table [tool.nogil] keeps its style. The result is validated like the
build validates it before anything is written, and the file is replaced atomically.

With --build-system it also completes the build integration in the same write: the toolkit's
plugin for the project's build backend goes into [build-system] (setuptools: nogil-setuptools;
meson-python: nogil-meson, which wraps mesonpy; scikit-build-core: nogil-cmake), and what must
still be added to meson.build or CMakeLists.txt is printed. It is an option rather than the
default so that a script that sets a declaration keeps changing only [tool.nogil]; a first
setup is one command: nogil-toolkit declare --thread-safe true --build-system
"""

EPILOG = """\
examples:
  nogil-toolkit declare --thread-safe true --build-system   # first setup: declaration and plugin
  nogil-toolkit declare --thread-safe true
  nogil-toolkit declare --module 'pkg._legacy=false' --module 'pkg.vendored.*=false'
  nogil-toolkit declare --unset-module pkg._legacy --classifier stable
  nogil-toolkit declare --project ../other --thread-safe false --dry-run
  nogil-toolkit declare --show          # print the current declaration as JSON

--show prints one JSON object on stdout:
  {"pyproject": PATH, "thread-safe": true|false|null,
   "modules": {NAME: true|false, ...}, "classifier": CLASSIFIER|null}

--build-system, by build-backend:
  setuptools.build_meta[:__legacy__], or none given   adds "nogil-setuptools" to requires
  no [build-system] table (a setup.py project)        writes pip's assumption plus the plugin
  (a setup.py project without pyproject.toml gets one):
      requires = ["setuptools>=40.8.0", "nogil-setuptools"]
      build-backend = "setuptools.build_meta:__legacy__"
  mesonpy                    build-backend = "nogil_meson", adds "nogil-meson"; prints the
                             meson.build block to paste (unless meson.build uses nogil_toolkit)
  scikit_build_core.build    adds "nogil-cmake"; prints the CMakeLists.txt lines (unless it
                             calls nogil_declare)
  any other backend          changes nothing in [build-system]; a warning says what to do
  A requirement already present in any spelling or with a version (Nogil_Setuptools>=0.1) is
  left as it is; running it again changes nothing.

writing:
  The file is replaced atomically (a temporary file renamed over it) and keeps its owner, group
  and mode. A read-only file (no write permission, e.g. mode 0444) is refused unless --force is
  given by its owner or root; a file you could not write in place, or that belongs to another
  user (unless you are root), is refused. Ctrl-C never leaves a partial or temporary file.

exit status:
  0  the file was updated, or already said what was asked (nothing written); also when
     --build-system met a backend it has no integration for (a warning says so)
  1  the edit was refused (dynamic classifiers, a result that would not validate, with
     --build-system a [build-system] that is not a table or whose requires is not an array of
     strings, a read-only or foreign file) or the file could not be written; the file is unchanged
  2  usage error: bad options; no pyproject.toml; a pyproject.toml that is not a regular,
     readable UTF-8 file of at most 4 MiB, or not valid TOML
  3  the file was updated, but syncing its directory failed: a crash may still undo it
"""

EXIT_NOT_DURABLE = 3

_BOOLEANS = {"true": True, "false": False}


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "declare", help="set the GIL declaration in pyproject.toml",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", metavar="PATH", default=".",
                        help="project directory or pyproject.toml file (default: the current directory)")
    package = parser.add_argument_group("package default")
    default = package.add_mutually_exclusive_group()
    default.add_argument("--thread-safe", metavar="{true,false}", type=_boolean,
                         help="set [tool.nogil].thread-safe: the declaration of every extension module")
    default.add_argument("--unset-thread-safe", action="store_true",
                         help="remove [tool.nogil].thread-safe (modules without an override keep their sources' "
                              "declaration)")
    modules = parser.add_argument_group("per-module overrides")
    modules.add_argument("--module", metavar="NAME=true|false", action="append", default=[], type=_module_override,
                         help='set an override in [tool.nogil.modules]; NAME is a dotted module name or a glob '
                              '("pkg.vendored.*"); repeatable')
    modules.add_argument("--unset-module", metavar="NAME", action="append", default=[], type=_module_removal,
                         help="remove an override (and the [tool.nogil.modules] table once empty); repeatable")
    metadata = parser.add_argument_group("metadata")
    metadata.add_argument("--classifier", metavar="LEVEL", type=_level,
                          help=f'add "{FREE_THREADING_PREFIX}<level>" to [project].classifiers, replacing any other '
                               f"level; LEVEL is one of {FreeThreadingLevel.choices()}")
    build = parser.add_argument_group("build integration")
    build.add_argument("--build-system", action="store_true",
                       help="also add the toolkit's plugin for the project's build backend to [build-system] "
                            "(see below)")
    output = parser.add_argument_group("writing and output")
    output.add_argument("--force", action="store_true",
                        help="replace a read-only pyproject.toml (you must own it, or be root); it stays read-only")
    output.add_argument("--dry-run", action="store_true",
                        help="write nothing; print the unified diff of every change on stdout (with --show: the "
                             "JSON instead)")
    output.add_argument("--show", action="store_true",
                        help="print the resulting declaration as JSON on stdout (see below)")
    parser.set_defaults(handler=run)


def _boolean(text: str) -> bool:
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}") from None


def _module_override(text: str) -> DeclarationChange:
    name, separator, value = text.rpartition("=")
    if not separator or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=true or NAME=false, got {text!r}")
    if value.strip().lower() not in _BOOLEANS:
        raise argparse.ArgumentTypeError(f"expected NAME=true or NAME=false, got {text!r}")
    try:
        return DeclarationChange.module(name.strip(), _BOOLEANS[value.strip().lower()])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (in {text!r})") from None


def _module_removal(name: str) -> DeclarationChange:
    try:
        return DeclarationChange.module(name.strip(), None)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _level(text: str) -> FreeThreadingLevel:
    try:
        return FreeThreadingLevel.from_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def requested_changes(args: argparse.Namespace) -> list[DeclarationChange]:
    """The changes the options ask for, in a fixed order; ValueError for contradictions."""
    changes: dict[tuple[str, ...], DeclarationChange] = {}

    def add(change: DeclarationChange) -> None:
        earlier = changes.setdefault(change.key, change)
        if earlier != change:
            raise ValueError(f"conflicting requests for {change.dotted_key}")

    if args.thread_safe is not None or args.unset_thread_safe:
        add(DeclarationChange.thread_safe(args.thread_safe))
    for change in (*args.module, *args.unset_module):
        add(change)
    if args.classifier is not None:
        add(DeclarationChange.classifier(args.classifier))
    return list(changes.values())


def run(args: argparse.Namespace) -> int:
    try:
        changes = requested_changes(args)
    except ValueError as exc:
        error(str(exc), "command line")
        return EXIT_USAGE
    if not changes and not args.show and not args.build_system:
        error("nothing to declare: give --thread-safe, --unset-thread-safe, --module, --unset-module, "
              "--classifier, --build-system or --show", "command line")
        return EXIT_USAGE
    path = find_pyproject(args.project)
    try:
        text = read_pyproject(path)
    except PyprojectFileError as exc:
        error(exc.message, str(path))
        return EXIT_USAGE
    setup_py_project = path.name == PYPROJECT and (path.parent / "setup.py").is_file() and not path.is_symlink()
    if text is None and args.build_system and setup_py_project:
        return _declare(path, "", changes, args, new_file=True)
    if text is None:
        error("no pyproject.toml found" if path.name == PYPROJECT else "no such file or directory", str(path))
        if setup_py_project:
            info("a setup.py project: --build-system creates pyproject.toml with the [build-system] table pip "
                 "assumes for it")
        return EXIT_USAGE
    return _declare(path, text, changes, args)


def _declare(path: Path, text: str, changes: list[DeclarationChange], args: argparse.Namespace,
             new_file: bool = False) -> int:
    integration = BuildIntegration(text)
    try:
        new_text = declare_in_text(text, changes)
        if args.build_system:
            integration = integrate_build_system(new_text, path.resolve().parent)
            new_text = integration.text
    except TomlSyntaxError as exc:
        error(f"refusing to edit a file that is {exc.message}", _place(path, exc))
        return EXIT_USAGE
    except DeclareError as exc:
        error(exc.message, _place(path, exc))
        return EXIT_FAILURE
    existing = _problems(text, path)
    remaining = _problems(new_text, path)
    if remaining:
        # Point at the file as it is on disk where its own problems are the cause.
        for problem in existing or remaining:
            error(problem.what, problem.where)
        info("nothing was written: [tool.nogil] would still not validate after this edit")
        return EXIT_FAILURE
    before, after = parse_toml(text), parse_toml(new_text)
    summary = [line for line in (change.describe(before, after) for change in changes) if line]
    summary += integration.changes
    code = EXIT_OK
    if new_text == text:
        info(f"{path}: no change needed, nothing written")
    elif args.dry_run:
        if not args.show:
            sys.stdout.write(_diff(text, new_text, path))
        _print_summary(summary, existing)
        info("dry run: nothing written")
    else:
        code = _write(path, new_text, args.force, new_file)
        if code == EXIT_FAILURE:
            return code
        _print_summary(summary, existing)
    _print_todo(integration)
    if args.show:
        print(json.dumps(_shown(path, after), indent=2))
    return code


def _print_todo(integration: BuildIntegration) -> None:
    """What only the user can do (their build files), or why nothing was done."""
    for step in integration.todo:
        if integration.supported:
            info(f"to do: {step}")
        else:
            warning(step)


def _write(path: Path, text: str, force: bool, new_file: bool = False) -> int:
    """Replace (or create) the file; the status says whether (and how durably) it was written."""
    target = path.absolute() if new_file else path.resolve()
    try:
        status = new_file_status(target.parent) if new_file else check_replaceable(target, force)
        replace_file(target, text.encode("utf-8"), status)
    except ReplaceRefused as exc:
        error(str(exc), str(path))
        return EXIT_FAILURE
    except OSError as exc:
        error(f"cannot write pyproject.toml, it was left unchanged: {exc.strerror or exc}", str(path))
        return EXIT_FAILURE
    except NotDurable as exc:
        warning(f"{path} was written, but syncing its directory failed ({exc}): "
                "a crash or power loss may still undo the change")
        return EXIT_NOT_DURABLE
    return EXIT_OK


def _print_summary(lines: list[str], fixed: Sequence[ConfigProblem]) -> None:
    """What changed, printed only once it has been (or, with --dry-run, would be) done."""
    for line in lines:
        info(line)
    if fixed:
        info("note: the existing [tool.nogil] did not validate; this edit fixes it:")
        info("\n".join(f"  {problem}" for problem in fixed))


def _place(path: Path, exc: DeclareError) -> str:
    return f"{path}:{exc.where}" if exc.where else str(path)


def _problems(text: str, path: Path) -> tuple[ConfigProblem, ...]:
    try:
        parse_config(text, path)
    except ConfigError as exc:
        return exc.problems
    return ()


def _diff(old: str, new: str, path: Path) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=f"{path} (current)", tofile=f"{path} (declared)"))


def _shown(path: Path, document: dict[str, Any]) -> dict[str, Any]:
    """What --show prints; the document has validated, so the tables have their types."""
    tool = document.get("tool")
    nogil = tool.get("nogil", {}) if isinstance(tool, dict) else {}
    project = document.get("project")
    classifiers = project.get("classifiers", []) if isinstance(project, dict) else []
    return {
        "pyproject": str(path.resolve()),
        "thread-safe": nogil.get("thread-safe"),
        "modules": nogil.get("modules", {}),
        "classifier": next((c for c in classifiers if c.startswith(FREE_THREADING_PREFIX)), None),
    }

