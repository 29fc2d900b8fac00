"""The ``[tool.nogil]`` table of ``pyproject.toml``: parsed once, validated, one model object.

::

    [tool.nogil]
    thread-safe = true            # the package default

    [tool.nogil.modules]          # per-module overrides
    "pkg._legacy" = false         # exact dotted module name
    "pkg.vendored.*" = false      # or a glob (fnmatch syntax)

    [tool.nogil.check]            # policy of nogil-check-env for this project's environment
    mode = "nogil"
    allow = { "legacy._c" = "audited: all state behind one lock" }

Semantics: an exact name beats any pattern; among patterns the most specific (most literal
characters) wins. A module that neither an override nor ``thread-safe`` covers gets no
declaration at all: the build leaves it exactly as its sources wrote it, and CPython's own
default for an undeclared module is "needs the GIL".

Every problem is reported with the file, line and column, the full key, what was expected and
what was found, all at once rather than one per run.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.tomlpos import locate

TABLE = ("tool", "nogil")
KNOWN_KEYS = ("thread-safe", "modules", "check")
CHECK_KEYS = ("mode", "allow")
CHECK_MODES = ("gil", "nogil", "unsafe-nogil")
_GLOB_CHARS = frozenset("*?[")
_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in the configuration, with where it is."""

    path: Path
    key: str
    message: str
    line: Optional[int] = None
    column: Optional[int] = None

    def __str__(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return f"{where}: {self.key}: {self.message}"


class ConfigError(ValueError):
    """``[tool.nogil]`` could not be read or is invalid; carries every problem found."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class ModuleOverride:
    """One entry of ``[tool.nogil.modules]``."""

    pattern: str
    declaration: GilDeclaration
    line: Optional[int] = None
    column: Optional[int] = None

    @property
    def is_glob(self) -> bool:
        return not _GLOB_CHARS.isdisjoint(self.pattern)

    @property
    def specificity(self) -> int:
        """Literal characters in the pattern: ``pkg.sub.*`` beats ``pkg.*``."""
        return sum(1 for c in self.pattern if c not in _GLOB_CHARS)

    def matches(self, module: str) -> bool:
        return fnmatch.fnmatchcase(module, self.pattern) if self.is_glob else module == self.pattern


@dataclass(frozen=True)
class AllowRule:
    """A module (name or glob) accepted by the environment check although it needs the GIL."""

    pattern: str
    reason: str
    line: Optional[int] = None

    def matches(self, module: str) -> bool:
        return fnmatch.fnmatchcase(module, self.pattern)


@dataclass(frozen=True)
class CheckPolicy:
    """``[tool.nogil.check]``: the environment check's mode and accepted modules."""

    mode: Optional[str] = None
    allow: tuple[AllowRule, ...] = ()


@dataclass(frozen=True)
class NogilConfig:
    """What a project declared in ``[tool.nogil]``."""

    path: Path
    thread_safe: Optional[bool] = None
    overrides: tuple[ModuleOverride, ...] = field(default_factory=tuple)
    check: CheckPolicy = field(default_factory=CheckPolicy)

    def declaration_for(self, module: str) -> Optional[GilDeclaration]:
        """The declaration to compile into ``module``; ``None`` leaves the module untouched.

        Raises ConfigError when two equally specific patterns disagree about ``module``:
        guessing would silently pick a declaration the author did not write.
        """
        for override in self.overrides:
            if not override.is_glob and override.pattern == module:
                return override.declaration
        globs = sorted((o for o in self.overrides if o.is_glob and o.matches(module)),
                       key=lambda o: o.specificity, reverse=True)
        if globs:
            best = globs[0]
            rivals = [o for o in globs[1:] if o.specificity == best.specificity and o.declaration != best.declaration]
            if rivals:
                raise ConfigError([ConfigProblem(
                    self.path, f"tool.nogil.modules.{_quote(best.pattern)}",
                    f"patterns {best.pattern!r} and {rivals[0].pattern!r} both match module {module!r} "
                    "with different values; add an exact entry for it", best.line, best.column)])
            return best.declaration
        if self.thread_safe is None:
            return None
        return GilDeclaration.from_thread_safe(self.thread_safe)


def find_pyproject(start: Union[str, os.PathLike[str]]) -> Path:
    """``start`` itself if it is a file, else ``start/pyproject.toml``."""
    path = Path(start)
    return path if path.is_file() else path / "pyproject.toml"


def load_config(project: Union[str, os.PathLike[str]]) -> Optional[NogilConfig]:
    """Read ``[tool.nogil]`` from a project directory or a ``pyproject.toml`` path.

    Returns ``None`` when the file or the table is absent: the toolkit then changes nothing.
    """
    path = find_pyproject(project)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(path, "pyproject.toml", f"cannot be read: {exc}")]) from exc
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Optional[NogilConfig]:
    """Parse and validate ``[tool.nogil]`` from the text of ``path``."""
    # Imported when there is a file to parse: nogil-check-env runs mostly without one.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on the 3.9/3.10 CI interpreters
        import tomli as tomllib
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, column = decode_error_position(exc)
        raise ConfigError([ConfigProblem(path, "pyproject.toml", f"is not valid TOML: {exc}", line, column)]) from exc
    table = document.get("tool", {}).get("nogil") if isinstance(document.get("tool"), dict) else None
    if table is None:
        return None
    return _Validator(text, path).config(table)


def decode_error_position(exc: Exception) -> tuple[Optional[int], Optional[int]]:
    line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    if line is None:  # tomli < 2.1 and tomllib < 3.14 only put it in the message
        match = re.search(r"line (\d+), column (\d+)", str(exc))
        if match:
            line, column = int(match[1]), int(match[2])
    return line, column


def _quote(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'


def _describe(value: Any) -> str:
    """How a found value is named in an error: its TOML type and a short rendering."""
    kind = {bool: "boolean", int: "integer", float: "float", str: "string",
            dict: "table", list: "array"}.get(type(value), type(value).__name__)
    shown = repr(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else (
        str(value).lower() if isinstance(value, bool) else f'"{value}"' if isinstance(value, str) else "")
    return f"{kind} {shown}".rstrip()


class _Validator:
    """Collects every problem of one ``[tool.nogil]`` table before raising."""

    def __init__(self, text: str, path: Path) -> None:
        self.text = text
        self.path = path
        self.problems: list[ConfigProblem] = []

    def problem(self, keys: Sequence[str], message: str) -> None:
        position = locate(self.text, keys)
        line, column = position if position else (None, None)
        dotted = ".".join(_quote(k) for k in keys)
        self.problems.append(ConfigProblem(self.path, dotted, message, line, column))

    def config(self, table: Any) -> NogilConfig:
        if not isinstance(table, dict):
            self.problem(TABLE, f"expected a table, got {_describe(table)}")
            raise ConfigError(self.problems)
        for key in table:
            if key not in KNOWN_KEYS:
                self.problem((*TABLE, key), f"unknown key{_did_you_mean(key, KNOWN_KEYS)}; "
                             f"known keys: {', '.join(KNOWN_KEYS)}")
        thread_safe = table.get("thread-safe")
        if thread_safe is not None and not isinstance(thread_safe, bool):
            self.problem((*TABLE, "thread-safe"), f"expected a boolean (true or false), got {_describe(thread_safe)}")
        overrides = self.overrides(table.get("modules", {}))
        check = self.check(table.get("check", {}))
        if self.problems:
            raise ConfigError(self.problems)
        return NogilConfig(self.path, thread_safe, overrides, check)

    def check(self, table: Any) -> CheckPolicy:
        keys = (*TABLE, "check")
        if not isinstance(table, dict):
            self.problem(keys, f"expected a table, got {_describe(table)}")
            return CheckPolicy()
        for key in table:
            if key not in CHECK_KEYS:
                self.problem((*keys, key), f"unknown key{_did_you_mean(key, CHECK_KEYS)}; "
                             f"known keys: {', '.join(CHECK_KEYS)}")
        mode = table.get("mode")
        if mode is not None and mode not in CHECK_MODES:
            self.problem((*keys, "mode"), f"expected one of {', '.join(repr(m) for m in CHECK_MODES)}, "
                         f"got {_describe(mode)}")
            mode = None
        allow = table.get("allow", {})
        if not isinstance(allow, dict):
            self.problem((*keys, "allow"), 'expected a table of module names to reasons, like '
                         f'"pkg.mod" = "audited: ...", got {_describe(allow)}')
            return CheckPolicy(mode)
        rules = []
        for name, reason in allow.items():
            where = (*keys, "allow", name)
            if not is_module_pattern(name):
                self.problem(where, f'expected a dotted module name (pkg.mod) or a glob (pkg.*), got "{name}"')
            elif not isinstance(reason, str) or not reason.strip():
                self.problem(where, "expected a non-empty string saying why the module is accepted, "
                             f"got {_describe(reason)}")
            else:
                position = locate(self.text, where)
                rules.append(AllowRule(name, reason.strip(), position[0] if position else None))
        return CheckPolicy(mode, tuple(rules))

    def overrides(self, modules: Any) -> tuple[ModuleOverride, ...]:
        keys = (*TABLE, "modules")
        if not isinstance(modules, dict):
            self.problem(keys, f'expected a table of module names to booleans, like "pkg.mod" = true, '
                         f"got {_describe(modules)}")
            return ()
        result = []
        for name, value in modules.items():
            where = (*keys, name)
            if not is_module_pattern(name):
                self.problem(where, "expected a dotted module name (pkg.mod) or a glob (pkg.*), "
                             f'got "{name}"')
            elif not isinstance(value, bool):
                self.problem(where, f"expected a boolean (true or false), got {_describe(value)}")
            else:
                line, column = locate(self.text, where) or (None, None)
                result.append(ModuleOverride(name, GilDeclaration.from_thread_safe(value), line, column))
        return tuple(result)


def is_module_pattern(name: str) -> bool:
    parts = name.split(".")
    return all(_NAME_PART.fullmatch(p) or (p and not _GLOB_CHARS.isdisjoint(p) and " " not in p) for p in parts)


def _did_you_mean(key: str, known: Sequence[str]) -> str:
    import difflib  # only a mistake needs it

    normalised = key.replace("_", "-").lower()
    close = difflib.get_close_matches(normalised, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unmatched_overrides_error(config: NogilConfig, built: Iterable[str]) -> Optional[ConfigError]:
    """The error for overrides that name no module of ``built``, or ``None`` if all match."""
    names = sorted(built)
    unmatched = [o for o in config.overrides if not any(o.matches(m) for m in names)]
    if not unmatched:
        return None
    return ConfigError([
        ConfigProblem(config.path, f"tool.nogil.modules.{_quote(o.pattern)}",
                      f"names no extension module this build produces (it builds: {', '.join(names) or 'none'})",
                      o.line, o.column)
        for o in unmatched
    ])
