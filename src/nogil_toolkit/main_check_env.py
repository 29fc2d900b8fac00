"""``nogil-check-env``: will this environment keep the GIL off? Checked before startup.

A thin shell over :mod:`nogil_toolkit.target` (the interpreter's facts),
:mod:`nogil_toolkit.environment` (which extension files it can import),
:mod:`nogil_toolkit.inspect` (what each declares), :mod:`nogil_toolkit.check` (mode and
policy) and :mod:`nogil_toolkit.report`. Nothing installed in the environment is imported or
run unless ``--probe`` asks for it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from nogil_toolkit import __version__
from nogil_toolkit.cache import CheckCache, default_cache_dir
from nogil_toolkit.check import CheckResult, ExitCode, Mode, check
from nogil_toolkit.config import AllowRule, ConfigError, is_module_pattern, load_config
from nogil_toolkit.console import EXIT_STATUS_HELP, error, run_cli
from nogil_toolkit.environment import ExtensionFile, find_extensions, scanned_folders
from nogil_toolkit.inspect import ModuleInspection, Verdict, inspect_files
from nogil_toolkit.probe import probe_modules
from nogil_toolkit.report import ScanStats, to_json, write_text
from nogil_toolkit.target import TargetError, TargetInterpreter, interpreter_identity, query_target, search_path

EPILOG = f"""\
modes:
  nogil         strict: a module that needs the GIL (declared 'used' or undeclared) or that the
                interpreter cannot load fails the check; an undecided module makes it undecided
  unsafe-nogil  the same findings are warnings; the check passes
  gil           report only
  Default: nogil on a free-threaded interpreter, gil otherwise; a [tool.nogil.check] table in
  the project's pyproject.toml may set it.

exit status:
  0    the environment passes
  1    the policy is violated (or a --probe contradicts a static verdict)
  2    usage error or bad input (unknown interpreter, invalid pyproject.toml), or the
       report cannot be written (a closed pipe, a full disk)
  3    some module could not be decided, and nothing else failed
{EXIT_STATUS_HELP}

examples:
  nogil-check-env                                  # the running interpreter's environment
  nogil-check-env --python .venv/bin/python        # another environment
  nogil-check-env --allow 'legacy._c=audited, one lock' --format json
  nogil-check-env --probe --jobs 8                 # also import each module to confirm
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nogil-check-env",
        description="Check, before starting an application, that every extension module its "
                    "environment can import declares it runs without the GIL. Reads binaries "
                    "statically: nothing is imported or run (unless --probe).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    where = parser.add_argument_group("what to check")
    where.add_argument("--python", metavar="PATH", help="the interpreter whose environment is checked "
                       "(default: the one running this tool)")
    where.add_argument("--path", metavar="DIR", action="append", default=[],
                       help="also check extension modules under DIR, imported before site-packages "
                            "(as PYTHONPATH would); repeatable")
    where.add_argument("--include-stdlib", action="store_true",
                       help="also check the standard library's extension modules (lib-dynload)")
    policy = parser.add_argument_group("policy")
    policy.add_argument("--mode", choices=[m.value for m in Mode], help="see 'modes' below")
    policy.add_argument("--allow", metavar="MODULE[=REASON]", action="append", default=[],
                        help="accept a module (or glob) that needs the GIL; repeatable")
    policy.add_argument("--project", metavar="DIR", default=".",
                        help="read [tool.nogil.check] from DIR/pyproject.toml (default: current directory)")
    policy.add_argument("--no-project", action="store_true", help="ignore any pyproject.toml")
    output = parser.add_argument_group("output")
    output.add_argument("--format", choices=("text", "json"), default="text",
                        help="text for people (default) or JSON (schema: check_env.schema.json)")
    output.add_argument("-v", "--verbose", action="store_true", help="also list the modules that pass")
    output.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    probe = parser.add_argument_group("import probe (runs the modules' code)")
    probe.add_argument("--probe", action="store_true",
                       help="confirm each verdict by importing the module alone in a fresh subprocess "
                            "of the target (free-threaded targets only)")
    probe.add_argument("--timeout", type=_seconds, default=30, metavar="SECONDS",
                       help="per-module probe timeout (default: %(default)s)")
    cache = parser.add_argument_group("speed")
    cache.add_argument("--jobs", type=_count, default=os.cpu_count() or 2, metavar="N",
                       help="processes reading binaries, and probes run at once (default: %(default)s)")
    cache.add_argument("--no-cache", action="store_true", help="read every binary again; do not update the cache")
    cache.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                       help="where verdicts are cached (default: $NOGIL_TOOLKIT_CACHE or ~/.cache/nogil-toolkit)")
    return parser


def _seconds(text: str) -> float:
    """A finite, positive number of seconds: ``nan`` would never time out, ``inf`` neither."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds above 0, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {text!r}")
    return value


class UsageError(Exception):
    pass


@run_cli
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        error(str(exc))
        return ExitCode.USAGE


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    mode_from_policy, allow, policy_source = _policy(args)
    try:
        identity = interpreter_identity(args.python)
    except OSError as exc:
        raise UsageError(f"--python {args.python}: {exc.strerror or exc}") from None
    cache = None if args.no_cache else CheckCache(args.cache_dir or default_cache_dir(), identity[0])
    target = _target(args.python, cache, [*identity, _pyvenv_stamp(args.python)])
    mode = Mode(args.mode or mode_from_policy or (Mode.NOGIL.value if target.free_threaded else Mode.GIL.value))
    if args.probe and not target.free_threaded:
        raise UsageError(f"--probe needs a free-threaded interpreter; {target.executable} is {target.name}")
    extra = tuple(os.path.realpath(p) for p in args.path)
    missing = [p for p in extra if not os.path.isdir(p)]
    if missing:
        raise UsageError(f"--path {missing[0]} is not a directory")
    folders = search_path(target, extra, args.include_stdlib)
    files = find_extensions(target, folders)
    progress = _Progress(enabled=not args.quiet and sys.stderr.isatty())
    inspected, from_cache = _inspect_all(files, cache, args.jobs, progress)
    probes = None
    if args.probe:
        candidates = [f for f, i in inspected if f.importable and i is not None and i.verdict is not Verdict.NOT_A_MODULE]
        probes = probe_modules(target.executable, candidates, extra, args.timeout, args.jobs,
                               progress=lambda done, total: progress.show(f"probing {done}/{total}"))
        progress.clear()
    result: CheckResult = check(inspected, mode, allow, probes, policy_source)
    stats = ScanStats(tuple(scanned_folders(target, folders)), len(files), time.perf_counter() - started, from_cache)
    if args.format == "json":
        json.dump(to_json(result, target, stats), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_text(result, target, stats, sys.stdout, verbose=args.verbose)
    return int(result.exit_code)


def _policy(args: argparse.Namespace) -> tuple[Optional[str], list[AllowRule], Optional[str]]:
    rules: list[AllowRule] = []
    mode, source = None, None
    if not args.no_project:
        try:
            config = load_config(args.project)
        except ConfigError as exc:
            raise UsageError(f"invalid pyproject.toml:\n{exc}") from None
        if config is not None and (config.check.mode or config.check.allow):
            mode, source = config.check.mode, str(config.path)
            rules.extend(config.check.allow)
    for text in args.allow:
        pattern, _, reason = text.partition("=")
        pattern = pattern.strip()
        if not is_module_pattern(pattern):
            raise UsageError(f"--allow {text!r}: expected a dotted module name or glob, optionally =REASON")
        rules.append(AllowRule(pattern, reason.strip() or "allowed on the command line"))
    return mode, rules, source


def _target(python: Optional[str], cache: Optional[CheckCache], identity: list[Any]) -> TargetInterpreter:
    if cache is not None:
        facts = cache.target_facts(identity)
        if facts is not None:
            return TargetInterpreter.from_json(facts)
    try:
        target = query_target(python)
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    if cache is not None:
        cache.store_target_facts(identity, target.to_json())
    return target


def _pyvenv_stamp(python: Optional[str]) -> Optional[int]:
    """The venv's configuration decides which site-packages count: part of the facts' key."""
    folder = Path(python or sys.executable).absolute().parent
    for candidate in (folder / "pyvenv.cfg", folder.parent / "pyvenv.cfg"):
        try:
            return candidate.stat().st_mtime_ns
        except OSError:
            continue
    return None


def _inspect_all(files: list[ExtensionFile], cache: Optional[CheckCache], jobs: int,
                 progress: _Progress) -> tuple[list[tuple[ExtensionFile, Optional[ModuleInspection]]], int]:
    """Each file's inspection: from the cache when the file is unchanged, else read (in
    parallel). Shadowed files are never imported, so they are not read."""
    known: dict[str, ModuleInspection] = {}
    stats: dict[str, os.stat_result] = {}
    todo: list[str] = []
    for file in files:
        if file.shadowed_by is not None:
            continue
        try:
            stats[file.path] = os.stat(file.path)
        except OSError:
            pass  # the inspector reports why it cannot read the file
        cached = cache.lookup(file.path, stats[file.path]) if cache is not None and file.path in stats else None
        if cached is not None:
            known[file.path] = cached
        else:
            todo.append(file.path)
    from_cache = len(known)
    fresh = inspect_files(todo, jobs, progress=lambda done, total: progress.show(f"inspecting {done}/{total}"))
    progress.clear()
    for path, inspection in zip(todo, fresh):
        known[path] = inspection
        if cache is not None and path in stats:
            cache.store(path, stats[path], inspection)
    if cache is not None:
        cache.forget_missing({f.path for f in files})
        cache.save()
    return [(f, known.get(f.path)) for f in files], from_cache


class _Progress:
    """One rewritten line on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.shown = False

    def show(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r{text}\033[K")
            sys.stderr.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False


if __name__ == "__main__":
    sys.exit(main())
