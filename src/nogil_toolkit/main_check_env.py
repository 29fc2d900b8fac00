"""``nogil-check-env``: will this environment keep the GIL off? Checked before startup.

A thin shell: arguments and ``[tool.nogil.check]`` become a :class:`CheckRequest` for
:func:`nogil_toolkit.check_env.check_environment` (the library that finds, reads, probes and
judges), whose outcome :mod:`nogil_toolkit.report` prints. Nothing installed in the
environment is imported or run unless ``--probe`` asks for it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from nogil_toolkit import __version__
from nogil_toolkit.console import EXIT_STATUS_HELP, error, run_cli
from nogil_toolkit.modes import ExitCode, Mode

# Not `typing.TYPE_CHECKING`: importing typing (and pathlib) would cost --version more than
# everything else it runs; the checker imports them when a check runs.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Sequence

    from nogil_toolkit.config import AllowRule

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
  nogil-check-env --probe=undecided                # settle what static reading cannot
  nogil-check-env --probe --jobs 8                 # also import each module to confirm
  nogil-check-env --mode nogil --format github     # annotations in a GitHub Actions job
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
    output.add_argument("--format", choices=("text", "json", "github", "sarif"), default="text",
                        help="text for people (default), JSON (schema: check_env.schema.json), GitHub "
                             "workflow commands (annotations), or SARIF 2.1.0 for code scanning")
    output.add_argument("-v", "--verbose", action="store_true", help="also list the modules that pass")
    output.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    probe = parser.add_argument_group("import probe (runs the modules' code)")
    probe.add_argument("--probe", nargs="?", choices=("undecided", "all"), const="all", default="none",
                       help="import modules, each alone in a fresh subprocess of the target (free-threaded "
                            "targets only): 'undecided' settles the modules static reading could not "
                            "decide, 'all' (the default of a bare --probe) confirms every verdict; "
                            "conclusive answers are cached with the file")
    probe.add_argument("--timeout", type=_seconds, default=30, metavar="SECONDS",
                       help="per-module probe timeout (default: %(default)s)")
    cache = parser.add_argument_group("speed")
    cache.add_argument("--jobs", type=_count, default=os.cpu_count() or 2, metavar="N",
                       help="processes reading binaries, and probes run at once (default: %(default)s)")
    cache.add_argument("--no-cache", action="store_true", help="read every binary again; do not update the cache")
    cache.add_argument("--cache-dir", default=None, metavar="DIR",
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
    """Bad arguments or input, printed as one ``error: <what> (<where>)`` line per problem."""

    def __init__(self, what: str, where: Optional[str] = None,
                 more: Sequence[tuple[str, Optional[str]]] = ()) -> None:
        super().__init__(what)
        self.lines: list[tuple[str, Optional[str]]] = [(what, where), *more]


@run_cli
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        for what, where in exc.lines:
            error(what, where)
        return ExitCode.USAGE


def run(args: argparse.Namespace) -> int:
    """Arguments → :class:`CheckRequest` → :func:`check_environment` → the report."""
    # Imported here, not at the top: --version and --help need none of it.
    import json
    from pathlib import Path

    from nogil_toolkit.check_env import CheckEnvError, CheckRequest, ProbeChoice, check_environment
    from nogil_toolkit.report import to_json, write_github, write_sarif, write_text

    policy_mode, allow, policy_source = _policy(args)
    mode = args.mode or policy_mode
    progress = _Progress(enabled=not args.quiet and sys.stderr.isatty())
    request = CheckRequest(
        python=args.python, paths=tuple(args.path), include_stdlib=args.include_stdlib,
        mode=Mode(mode) if mode else None, allow=tuple(allow), policy_source=policy_source,
        probe=ProbeChoice(args.probe), timeout=args.timeout, jobs=args.jobs, use_cache=not args.no_cache,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None, progress=progress.show)
    try:
        outcome = check_environment(request)
    except CheckEnvError as exc:
        raise UsageError(str(exc)) from None
    finally:
        progress.clear()
    if args.format == "json":
        json.dump(to_json(outcome.result, outcome.target, outcome.stats), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.format == "github":
        write_github(outcome.result, outcome.target, sys.stdout)
    elif args.format == "sarif":
        write_sarif(outcome.result, outcome.target, outcome.stats, sys.stdout)
    else:
        write_text(outcome.result, outcome.target, outcome.stats, sys.stdout, verbose=args.verbose)
    return int(outcome.result.exit_code)


def _policy(args: argparse.Namespace) -> tuple[Optional[str], list[AllowRule], Optional[str]]:
    if not args.allow and (args.no_project or not _has_pyproject(args.project)):
        return None, [], None  # nothing to parse: the TOML and policy machinery stays unimported
    from nogil_toolkit.config import AllowRule, ConfigError, is_module_pattern, load_config

    rules: list[AllowRule] = []
    mode, source = None, None
    if not args.no_project:
        try:
            config = load_config(args.project)
        except ConfigError as exc:  # the project's pyproject.toml: one line per problem, with its place
            first, *rest = exc.problems
            raise UsageError(first.what, first.where, [(p.what, p.where) for p in rest]) from None
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


def _has_pyproject(project: str) -> bool:
    """Whether anything is where :func:`~nogil_toolkit.config.load_config` looks (which then
    reads it, or says what is wrong with it): ``project/pyproject.toml``, or ``project`` itself
    when it is not a directory."""
    path = os.path.join(project, "pyproject.toml") if os.path.isdir(project) else project
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except (OSError, ValueError):  # unreadable, a NUL byte...: load_config reports it
        return True
    return True


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
