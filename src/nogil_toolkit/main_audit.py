"""``nogil-toolkit audit``: find thread-unsafe C-API use in a project's C, C++ and Cython sources.

A thin shell over :mod:`nogil_toolkit.audit`: it picks the files (the build configuration's
sources, or the paths given), applies ``[tool.nogil.audit]`` and ``--ignore``, prints the
findings and turns them into an exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from nogil_toolkit.audit import AuditPolicy, audit_paths, audit_project
from nogil_toolkit.audit.build import build_step
from nogil_toolkit.audit.output import dump, render_text, shown, summary, to_json, to_sarif
from nogil_toolkit.audit.rules import Severity, load_rules, rule_ids
from nogil_toolkit.config import ConfigError, load_config
from nogil_toolkit.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, error, info, warning

DESCRIPTION = """\
Find C-API uses in C, C++ and Cython sources that are unsafe once no GIL serialises the
threads: borrowed references from mutable containers, PyDict_Next outside a critical
section, static and global object pointers, single-phase modules with global state, and the
GIL-state patterns that assumed one thread at a time (CPython's HOWTO "C API Extension
Support for Free Threading"). Comments, strings, '#if 0' and code under '#ifndef
Py_GIL_DISABLED' (or any condition false on free-threaded CPython 3.13+) never produce
findings.
"""

EPILOG = """\
what is audited:
  without PATH, the sources the project's build configuration lists statically
  ([[tool.setuptools.ext-modules]] in pyproject.toml, literal Extension(...) sources in
  setup.py), else every C, C++ and Cython file of the project tree (build, dist, .git, venvs
  and other tool folders left out). [tool.nogil.audit] in pyproject.toml:
    ignore = ["rule-id", ...]     exclude = ["vendor", "src/legacy/*.c"]
  A file named on the command line is audited even if excluded.

suppressing one line:
  PyObject *v = PyDict_GetItem(d, k);  // nogil-audit: ignore[borrowed-dict-item]
  (without [...] every rule on that line is silenced)

exit status:
  0  no finding at or above --fail-on (default: warning)
  1  findings at or above --fail-on
  2  usage error, a path that does not exist, or an invalid [tool.nogil] table
"""

_FAIL_ON = ("error", "warning", "note", "never")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit", help="find thread-unsafe C-API use in C, C++ and Cython sources",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", metavar="PATH", type=Path,
                        help="files or folders to audit (default: the project's extension sources)")
    parser.add_argument("--project", metavar="DIR", type=Path, default=Path("."),
                        help="project directory whose pyproject.toml and sources are used (default: .)")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                        help="text for people, json (audit.schema.json), or SARIF 2.1.0 for code scanning")
    parser.add_argument("--fail-on", choices=_FAIL_ON, default="warning",
                        help="lowest severity that makes the exit status 1 (default: warning)")
    parser.add_argument("--ignore", metavar="RULE", action="append", default=[], type=_rule_id,
                        help="leave out a rule (repeatable); adds to [tool.nogil.audit].ignore")
    parser.add_argument("--list-rules", action="store_true", help="print the rules and exit")
    build = parser.add_argument_group("as a build step (what CMake's nogil_declare() runs)")
    build.add_argument("--build", metavar="MODULE", help="audit the PATHs as the sources of MODULE, as the build "
                       "plugins do: only if [tool.nogil] declares it not-used, findings as compiler warnings, "
                       "exit 1 only under [tool.nogil.audit] build = \"error\"")
    build.add_argument("--sources-dir", metavar="DIR", type=Path, help="folder that relative PATHs are in")
    build.add_argument("-I", dest="include_dirs", metavar="DIR", action="append", default=[],
                       help="include path, to find the project headers the sources include (repeatable)")
    parser.set_defaults(handler=run)


def _rule_id(text: str) -> str:
    if text not in rule_ids():
        raise argparse.ArgumentTypeError(f"unknown rule {text!r}; rules: {', '.join(rule_ids())}")
    return text


def run(args: argparse.Namespace) -> int:
    if args.list_rules:
        _to_stdout(_list_rules)
        return EXIT_OK
    try:
        config = load_config(args.project)
    except ConfigError as exc:
        for problem in exc.problems:
            error(problem.what, problem.where)
        return EXIT_USAGE
    if args.build is not None:
        return build_step(config, args.build, args.paths, args.include_dirs, args.sources_dir)
    policy = config.audit if config is not None else AuditPolicy()
    policy = AuditPolicy(tuple(dict.fromkeys((*policy.ignore, *args.ignore))), policy.exclude)
    missing = [p for p in args.paths if not p.exists() and not p.is_symlink()]
    if missing:
        for path in missing:
            error("no such file or directory", shown(str(path)))
        return EXIT_USAGE
    if not args.paths and not args.project.is_dir():
        error("the project is not a directory", str(args.project))
        return EXIT_USAGE
    result = audit_paths(args.paths, policy, args.project) if args.paths else audit_project(args.project, policy)
    threshold = None if args.fail_on == "never" else Severity.parse(args.fail_on)
    failed = threshold is not None and any(f.rule.severity >= threshold for f in result.findings)
    code = EXIT_FAILURE if failed else EXIT_OK
    for path, reason in result.skipped:
        warning(f"skipped {shown(path)}: {reason}")
    for path, note in result.notes:
        warning(f"{shown(path)}: {note}")
    if args.format == "json":
        written = _to_stdout(lambda: dump(to_json(result, code), sys.stdout))
    elif args.format == "sarif":
        written = _to_stdout(lambda: dump(to_sarif(result, args.project), sys.stdout))
    else:
        written = _to_stdout(lambda: render_text(result, sys.stdout))
    if written:
        info(summary(result))
    return code


def _list_rules() -> None:
    for rule in load_rules():
        print(f"{rule.id} ({rule.severity}): {', '.join(rule.apis) or rule.detector}\n"
              f"    {rule.why}\n    instead: {rule.replacement_text}\n    source: {rule.section}")


def _to_stdout(write: Callable[[], None]) -> bool:
    """Run ``write``; False when the reader went away (``| head``): it has what it wanted.

    stdout is then pointed at /dev/null so that the interpreter's final flush cannot fail again.
    """
    try:
        write()
        sys.stdout.flush()
        return True
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m nogil_toolkit.main_audit``: the same command on its own."""
    parser = argparse.ArgumentParser(prog="nogil-toolkit")
    register(parser.add_subparsers())
    args = parser.parse_args(["audit", *(sys.argv[1:] if argv is None else argv)])
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
