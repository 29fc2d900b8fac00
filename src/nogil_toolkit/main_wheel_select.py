"""``nogil-toolkit wheel select``: the wheel pip would install for a target, per project."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from nogil_toolkit.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, error, info, plural, style, warning
from nogil_toolkit.console import printable
from nogil_toolkit.wheel.select import (
    DropKind,
    ProjectChoice,
    Rejection,
    Selection,
    SelectError,
    collect_wheels,
    link_wheels,
    query_target_tags,
    rank_wheels,
    require_declared,
    selection_json,
)

EPILOG = """\
For each project, the wheel chosen is the one pip would install on the target: the target's
own packaging.tags.sys_tags() order (asked once, with -I -S), then highest version, best tag,
highest build tag; pre-releases only when no final release fits (or with --pre). With
--require-declared, wheels with an extension module that does not declare Py_MOD_GIL_NOT_USED
are dropped and the next-best wheel (often the pure one) takes their place.

The chosen paths go to stdout, one per line; why every other wheel was dropped goes to stderr.

exit status:
  0  every project got a wheel
  1  some project has no suitable wheel (they are listed)
  2  bad arguments or input: a path, the target interpreter, the link directory, or a wheel
     --require-declared had to read and could not (the rest is still selected and printed)

example:
  nogil-toolkit wheel select --python .venv/bin/python --require-declared \\
      --link-dir selected/ wheelhouse/
  .venv/bin/python -m pip install --no-index --find-links selected/ markupsafe
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "select", help="pick the wheel pip would install on a target, optionally only declared ones",
        description="From a set of wheels, pick per project the wheel a target interpreter would install\n"
                    "(exactly as pip ranks them), optionally only among wheels whose extension modules\n"
                    "all declare they run without the GIL.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheels", nargs="+", metavar="WHEEL_OR_DIR",
                        help="wheel files, or directories whose *.whl files are candidates")
    target = parser.add_argument_group("target")
    target.add_argument("--python", required=True, metavar="PATH",
                        help="the interpreter that will install the wheels (it computes its own tags)")
    policy = parser.add_argument_group("selection")
    policy.add_argument("--require-declared", action="store_true",
                        help="drop wheels with an extension module that is undeclared, declares "
                             "Py_MOD_GIL_USED or cannot be read, and fall back to the next-best wheel")
    policy.add_argument("--pre", action="store_true",
                        help="consider pre-releases even when a final release fits (as pip --pre)")
    output = parser.add_argument_group("output")
    output.add_argument("--format", choices=("list", "json"), default="list",
                        help="list: chosen paths on stdout, reasons on stderr (default); "
                             "json: one document on stdout (schema: wheel_select.schema.json)")
    output.add_argument("--link-dir", metavar="DIR",
                        help="create DIR holding a symlink to each chosen wheel, ready for "
                             "pip install --no-index --find-links DIR")
    output.add_argument("--copy", action="store_true", help="with --link-dir: copy the wheels instead of linking")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.copy and not args.link_dir:
        error("--copy needs --link-dir")
        return EXIT_USAGE
    try:
        wheels, skipped = collect_wheels(args.wheels)
        if not wheels:
            raise SelectError("no wheels found", ", ".join(args.wheels))
        for message in skipped:
            warning(printable(message))
        selection = rank_wheels(wheels, query_target_tags(args.python), allow_prereleases=args.pre)
        if args.require_declared:
            selection = require_declared(selection)
        links = link_wheels([r.wheel for r in selection.chosen], args.link_dir, copy=args.copy) \
            if args.link_dir else []
    except SelectError as exc:
        error(*map(printable, exc.args))
        return EXIT_USAGE

    if args.format == "json":
        json.dump(selection_json(selection, require_declared=args.require_declared, allow_prereleases=args.pre,
                                 link_dir=args.link_dir, links=links), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for ranked in selection.chosen:
            print(printable(ranked.wheel.path))
        _write_reasons(selection)

    unreadable = [r for p in selection.projects for r in p.rejected if r.kind is DropKind.UNREADABLE]
    for rejection in unreadable:
        error(printable(rejection.reason))
    if selection.unsatisfied:
        error(f"no suitable wheel for {plural(len(selection.unsatisfied), 'project')}: "
              f"{', '.join(selection.unsatisfied)}")
    if unreadable:
        return EXIT_USAGE
    return EXIT_FAILURE if selection.unsatisfied else EXIT_OK


def _write_reasons(selection: Selection) -> None:
    """Per project with something dropped: what was chosen, then each dropped wheel and why."""
    target = selection.target
    info(f"target: {target.name} ({printable(target.executable)}), {len(target.tags)} supported tags, most preferred "
         f"{target.tags[0] if target.tags else 'none'}")
    for project in selection.projects:
        dropped = project.dropped(target)
        if dropped or project.chosen is None:
            _write_project(project, dropped)


def _write_project(project: ProjectChoice, dropped: Sequence[Rejection]) -> None:
    stream = sys.stderr
    chosen = f"chose {printable(project.chosen.wheel.filename)}" if project.chosen else \
        style("no suitable wheel", "red", stream)
    info(f"{style(project.project, 'bold', stream)}: {chosen}")
    for rejection in dropped:
        info(printable(f"  dropped {rejection.wheel.filename}: {rejection.reason}"))
        for problem in rejection.modules:
            info(printable(f"      {problem.module} ({problem.member}): {problem.detail}"))
