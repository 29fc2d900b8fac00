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

    [tool.nogil.audit]            # what `nogil-toolkit audit` leaves out
    ignore = ["allow-threads-serialises"]   # rule ids
    exclude = ["vendor", "src/legacy/*.c"]  # globs relative to the project directory
    build = "warn"                # the build plugins' audit of not-used modules: warn, error, off

Semantics: an exact name beats any pattern; among patterns the most specific (most literal
characters) wins. A module that neither an override nor ``thread-safe`` covers gets no
declaration at all: the build leaves it exactly as its sources wrote it, and CPython's own
default for an undeclared module is "needs the GIL".

Every problem is reported with the full key, what was expected and what was found, and the
file, line and column, all at once rather than one per run. A problem renders as
``<key>: <what was wrong> (<file>:<line>:<column>)``, so a command prints each one as
``error: <what> (<where>)`` like every other error of the toolkit.
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
from nogil_toolkit.pyproject_file import PyprojectFileError, find_pyproject, read_pyproject
from nogil_toolkit.tomlpos import locate

TABLE = ("tool", "nogil")
KNOWN_KEYS = ("thread-safe", "modules", "check", "audit")
CHECK_KEYS = ("mode", "allow")
CHECK_MODES = ("gil", "nogil", "unsafe-nogil")
AUDIT_KEYS = ("ignore", "exclude", "build")
AUDIT_BUILD_MODES = ("warn", "error", "off")
_GLOB_CHARS = frozenset("*?[")
_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in the configuration, with where it is."""

    path: Path
    key: str
    """The full dotted key (``tool.nogil.modules."pkg.mod"``); empty for the file as a whole."""
    message: str
    line: Optional[int] = None
    column: Optional[int] = None

    @property
    def what(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message

    @property
    def where(self) -> str:
        """``file:line:column``, the form editors and terminals turn into a link."""
        if self.line is None:
            return str(self.path)
        return f"{self.path}:{self.line}:{self.column or 1}"

    def __str__(self) -> str:
        return f"{self.what} ({self.where})"


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
class AuditPolicy:
    """``[tool.nogil.audit]``: the rules and the paths the source audit leaves out."""

    ignore: tuple[str, ...] = ()
    """Rule ids, each checked against the audit's rule table."""
    exclude: tuple[str, ...] = ()
    """``fnmatch`` globs of paths relative to the project directory; a folder covers its contents."""
    build: str = "warn"
    """What a build plugin does with the findings in a module declared ``not-used``: print them as
    warnings, print them and fail the build (``error``), or not audit at all (``off``)."""
    build_position: Optional[tuple[int, int]] = None
    """Line and column of the ``build`` key, for the error that fails a build."""


@dataclass(frozen=True)
class NogilConfig:
    """What a project declared in ``[tool.nogil]``."""

    path: Path
    thread_safe: Optional[bool] = None
    overrides: tuple[ModuleOverride, ...] = field(default_factory=tuple)
    check: CheckPolicy = field(default_factory=CheckPolicy)
    audit: AuditPolicy = field(default_factory=AuditPolicy)

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


def load_config(project: Union[str, os.PathLike[str]]) -> Optional[NogilConfig]:
    """Read ``[tool.nogil]`` from a project directory or a ``pyproject.toml`` path.

    Returns ``None`` when the file or the table is absent: the toolkit then changes nothing.
    Anything at that path that is not a readable UTF-8 text file is a ConfigError (see
    :func:`~nogil_toolkit.pyproject_file.read_pyproject`); nothing here blocks or reads without bound.
    """
    path = find_pyproject(project)
    try:
        text = read_pyproject(path)
    except PyprojectFileError as exc:
        raise ConfigError([ConfigProblem(path, "", exc.message)]) from None
    return None if text is None else parse_config(text, path)


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
        raise ConfigError([ConfigProblem(path, "", f"pyproject.toml is not valid TOML: {decode_error_message(exc)}",
                                         line, column)]) from None
    except RecursionError:
        raise ConfigError([ConfigProblem(path, "", f"pyproject.toml is not valid TOML: {NESTED_TOO_DEEPLY}")]) from None
    table = document.get("tool", {}).get("nogil") if isinstance(document.get("tool"), dict) else None
    if table is None:
        return None
    return _Validator(text, path).config(table)


NESTED_TOO_DEEPLY = "arrays or inline tables nested too deeply to read"
"""Why a document deeper than the parser's recursion is refused (a 2 kB file of ``[`` does it):
the parsers recurse once per level, so only a bound keeps such a file from being a traceback."""


def decode_error_position(exc: Exception) -> tuple[Optional[int], Optional[int]]:
    line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    if line is None:  # tomli < 2.1 and tomllib < 3.14 only put it in the message
        match = re.search(r"line (\d+), column (\d+)", str(exc))
        if match:
            line, column = int(match[1]), int(match[2])
    return line, column


def decode_error_message(exc: Exception) -> str:
    """The parser's message without its "(at line 2, column 15)": the position is printed once, as where."""
    return re.sub(r"\s*\(at line \d+, column \d+\)$", "", str(exc))


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
        audit = self.audit(table.get("audit", {}))
        if self.problems:
            raise ConfigError(self.problems)
        return NogilConfig(self.path, thread_safe, overrides, check, audit)

    def audit(self, table: Any) -> AuditPolicy:
        # Imported here: the rule table lives with the audit, which itself reads this module.
        from nogil_toolkit.audit.rules import rule_ids

        keys = (*TABLE, "audit")
        if not isinstance(table, dict):
            # `audit = "warn"` is how the mode was first proposed; it lives in the table instead.
            hint = f'; the build audit\'s mode is written [tool.nogil.audit] build = "{table}"' \
                if table in AUDIT_BUILD_MODES else ""
            self.problem(keys, f"expected a table, got {_describe(table)}{hint}")
            return AuditPolicy()
        for key in table:
            if key not in AUDIT_KEYS:
                self.problem((*keys, key), f"unknown key{_did_you_mean(key, AUDIT_KEYS)}; "
                             f"known keys: {', '.join(AUDIT_KEYS)}")
        known = rule_ids()
        ignore = self.strings((*keys, "ignore"), table.get("ignore", []), "rule ids")
        for rule in ignore:
            if rule not in known:
                self.problem((*keys, "ignore"), f'unknown rule "{rule}"{_did_you_mean(rule, known)}; '
                             f"rules: {', '.join(known)}")
        exclude = self.strings((*keys, "exclude"), table.get("exclude", []), "path globs")
        for pattern in exclude:
            if pattern.startswith("/") or ".." in pattern.split("/") or "\\" in pattern:
                self.problem((*keys, "exclude"), f'expected a glob relative to the project directory with "/" '
                             f'separators and no "..", got "{pattern}"')
        build = table.get("build", "warn")
        if build not in AUDIT_BUILD_MODES:
            self.problem((*keys, "build"), f"expected one of {', '.join(repr(m) for m in AUDIT_BUILD_MODES)}, "
                         f"got {_describe(build)}")
            build = "warn"
        return AuditPolicy(tuple(r for r in ignore if r in known), tuple(exclude), build,
                           locate(self.text, (*keys, "build")) if "build" in table else None)

    def strings(self, keys: tuple[str, ...], value: Any, what: str) -> tuple[str, ...]:
        """An array of non-empty strings, or a problem at ``keys``."""
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            shown = next((v for v in value if not isinstance(v, str) or not v.strip()), value) \
                if isinstance(value, list) else value
            self.problem(keys, f"expected an array of {what} (non-empty strings), got {_describe(shown)}")
            return ()
        return tuple(v.strip() for v in value)

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
            elif isinstance(reason, dict) and reason:
                self.unquoted_dotted_keys((*keys, "allow"), name, reason, str)
            elif not isinstance(reason, str) or not reason.strip():
                self.problem(where, "expected a non-empty string saying why the module is accepted, "
                             f"got {_describe(reason)}")
            else:
                position = locate(self.text, where)
                rules.append(AllowRule(name, reason.strip(), position[0] if position else None))
        return CheckPolicy(mode, tuple(rules))

    def unquoted_dotted_keys(self, keys: tuple[str, ...], name: str, table: dict[str, Any], leaf: type) -> None:
        """``pkg.mod = false`` is the table ``pkg = {mod = false}`` in TOML, not the key "pkg.mod".

        Module names are dotted, so this is the most likely mistake in a table keyed by them:
        name the quoted key that was meant, at the line where the bare one is written.
        """
        for parts, value in _leaves((name,), table):
            dotted = ".".join(parts)
            shown = _toml_value(value)
            if not isinstance(value, leaf):
                shown = "true or false" if leaf is bool else '"<reason>"'
            self.problem((*keys, *parts), "unquoted, the dots make nested tables, not the module name "
                         f'"{dotted}": did you mean "{dotted}" = {shown} (quoted)?')

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
            elif isinstance(value, dict) and value:
                self.unquoted_dotted_keys(keys, name, value, bool)
            elif not isinstance(value, bool):
                self.problem(where, f"expected a boolean (true or false), got {_describe(value)}")
            else:
                line, column = locate(self.text, where) or (None, None)
                result.append(ModuleOverride(name, GilDeclaration.from_thread_safe(value), line, column))
        return tuple(result)


def _leaves(prefix: tuple[str, ...], table: dict[str, Any]) -> Iterable[tuple[tuple[str, ...], Any]]:
    for key, value in table.items():
        if isinstance(value, dict) and value:
            yield from _leaves((*prefix, key), value)
        else:
            yield (*prefix, key), value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else _describe(value)


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
