"""The source audit as a build step: what the build plugins run for each module they declare
``not-used``, and the lines they print.

A declaration is a promise made at the moment the module is built, so that is when its author
should see the audit's findings: as compiler warnings (``file:line:col: warning: ...``, which
editors, terminals and CI log parsers link to the source), one summary line per module, and
with ``[tool.nogil.audit] build = "error"`` one error that fails the build. Modules declared
``used`` or not declared at all promise nothing and are not audited.

The files audited are the module's own sources and the project headers they include with
``#include "..."`` (resolved as the compiler does: beside the including file, then along the
include path), since header code is compiled into the module as well. Headers outside the
project (Python's, the system's) are not the author's to fix and are left out.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, TextIO, Tuple, Union

from nogil_toolkit.audit import AuditResult, audit_files
from nogil_toolkit.audit.output import shown, summary
from nogil_toolkit.audit.sources import language_of
from nogil_toolkit.config import ConfigError, NogilConfig
from nogil_toolkit.console import error, plural
from nogil_toolkit.declaration import GilDeclaration

PathLike = Union[str, "os.PathLike[str]"]
_QUOTED_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.MULTILINE)
_INCLUDE_DEPTH = 64
"""How many headers deep includes are followed: far beyond real projects, and a bound for cycles."""


@dataclass(frozen=True)
class ModuleAudit:
    """The build-time audit of one declared module."""

    module: str
    result: AuditResult
    mode: str = "warn"

    @property
    def failed(self) -> bool:
        """True when the findings must fail the build (``build = "error"`` and at least one finding)."""
        return bool(self.result.findings) and self.mode == "error"


def audits_module(config: Optional[NogilConfig], module: str) -> bool:
    """Is ``module`` audited at build time: declared ``not-used``, and the build audit not off?

    Raises ConfigError like :meth:`NogilConfig.declaration_for` when the declaration is ambiguous.
    """
    return (config is not None and config.audit.build != "off"
            and config.declaration_for(module) is GilDeclaration.NOT_USED)


def audit_module(config: NogilConfig, module: str, sources: Iterable[PathLike],
                 include_dirs: Sequence[PathLike] = ()) -> Optional[ModuleAudit]:
    """Audit the sources of ``module`` with the project's ``[tool.nogil.audit]``; None when the
    module is not audited (see :func:`audits_module`).

    Paths are shown relative to the working folder when they are inside it (builds run in the
    project folder), so the warnings link to the files."""
    if not audits_module(config, module):
        return None
    root = config.path.parent
    files = [_display(p) for p in with_project_headers(sources, include_dirs, root)]
    result = audit_files(((p, False) for p in files), config.audit, root, f"the sources of {module}")
    return ModuleAudit(module, result, config.audit.build)


def with_project_headers(sources: Iterable[PathLike], include_dirs: Sequence[PathLike], root: Path) -> List[Path]:
    """``sources`` (C, C++ and Cython, as named), then the project headers they include, each once.

    A quoted include is looked up beside the including file and then in ``include_dirs``, the
    compiler's order; only existing files under ``root`` count. The raw text is searched, so an
    include inside a comment or a dead ``#if`` branch is followed too: that audits a project
    header more, never one less."""
    root = root.resolve()
    folders = [Path(d) for d in include_dirs]
    ordered: List[Path] = []
    seen = set()
    pending: List[Tuple[Path, int]] = [(Path(p), 0) for p in sources if language_of(Path(p))]
    pending.reverse()
    while pending:
        path, depth = pending.pop()
        key = os.path.normcase(os.path.abspath(path))
        if key in seen:
            continue
        seen.add(key)
        ordered.append(path)
        if depth >= _INCLUDE_DEPTH or language_of(path) != "c":
            continue
        for header in reversed(_included(path, folders, root)):
            pending.append((header, depth + 1))
    return ordered


def _included(path: Path, folders: Sequence[Path], root: Path) -> List[Path]:
    try:
        with open(path, "rb") as stream:
            text = stream.read()
    except OSError:
        return []  # the audit itself says why, or the compiler does
    found = []
    for match in _QUOTED_INCLUDE.finditer(text):
        name = os.fsdecode(match.group(1))
        for folder in (path.parent, *folders):
            candidate = folder / name
            if candidate.is_file():
                if candidate.resolve().is_relative_to(root) and language_of(candidate):
                    found.append(candidate)
                break
    return found


def _display(path: Path) -> Path:
    """``path`` relative to the working folder when it is inside it."""
    here = Path.cwd().resolve()
    if path.is_absolute() and path.resolve().is_relative_to(here):
        return Path(os.path.relpath(path.resolve(), here))
    return path


def warning_lines(audit: ModuleAudit) -> List[str]:
    """One compiler-style line per finding, then the summary line of the module."""
    lines = [f"{shown(f.path)}:{f.line}:{f.column}: warning: {f.rule.id}: {f.message} "
             f"(instead: {f.rule.replacement_text})" for f in audit.result.findings]
    lines.append(f"nogil: {summary(audit.result)}")
    return lines


def failure_message(config: NogilConfig, audits: Sequence[ModuleAudit]) -> Tuple[str, str]:
    """(what, where) of the one error that fails a build in ``error`` mode."""
    failed = [a for a in audits if a.failed]
    count = sum(len(a.result.findings) for a in failed)
    modules = ", ".join(a.module for a in failed)
    position = config.audit.build_position
    where = f"{config.path}:{position[0]}:{position[1]}" if position else str(config.path)
    return (f"nogil: {plural(count, 'audit finding')} in {modules}, and [tool.nogil.audit] build = \"error\" "
            f"fails the build on findings (fix them, suppress a line with '// nogil-audit: ignore[rule]', "
            f"or set build = \"warn\")", where)


def print_audit(audit: ModuleAudit, stream: Optional[TextIO] = None) -> None:
    """Print the warning lines of ``audit`` (stderr by default, where compilers write theirs)."""
    stream = stream or sys.stderr
    for line in warning_lines(audit):
        print(line, file=stream)
    stream.flush()


def build_step(config: Optional[NogilConfig], module: str, sources: Sequence[PathLike],
               include_dirs: Sequence[PathLike] = (), sources_dir: Optional[PathLike] = None) -> int:
    """The audit as one step of a build that is not run from Python (CMake's ``nogil_declare``):
    print the findings of ``module``; 1 when they fail the build (``error`` mode), 2 when the
    configuration cannot say how ``module`` is declared, else 0.

    Relative ``sources`` and ``include_dirs`` are relative to ``sources_dir`` (the folder of the
    target's ``CMakeLists.txt``); entries that are not sources (object files) are left out."""
    if config is None:
        return 0
    base = Path(sources_dir) if sources_dir is not None else Path.cwd()
    try:
        audit = audit_module(config, module, [base / p for p in sources if str(p)],
                             [base / d for d in include_dirs if str(d)])
    except ConfigError as exc:
        for problem in exc.problems:
            error(problem.what, problem.where)
        return 2
    if audit is None:
        return 0
    print_audit(audit)
    if audit.failed:
        error(*failure_message(config, [audit]))
        return 1
    return 0
