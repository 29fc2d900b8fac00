"""The guard's mode and allowlist: the same ``[tool.nogil.check]`` and ``--allow`` rules as
``nogil-check-env``, read from the environment the launcher (or the user) set.

``NOGIL_MODE``
    ``gil``, ``nogil``, ``unsafe-nogil`` or ``serialize``; unset: no guard.
``NOGIL_ALLOW``
    ``MODULE[=REASON]`` entries separated by ``;``, as ``--allow`` takes them.
``NOGIL_PROJECT``
    The directory (or ``pyproject.toml``) whose ``[tool.nogil.check] allow`` table applies;
    unset: the current directory when the guard starts; empty: none.

Without ``NOGIL_ALLOW`` and without a ``pyproject.toml`` in the project nothing is parsed:
most guarded processes never import a TOML parser.
"""

from __future__ import annotations

import os

from nogil_toolkit.modes import Mode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping, Sequence

    from nogil_toolkit.config import AllowRule

GIL, NOGIL, UNSAFE_NOGIL = Mode.GIL.value, Mode.NOGIL.value, Mode.UNSAFE_NOGIL.value
SERIALIZE = "serialize"
"""A guard-only mode: what it adds to ``unsafe-nogil`` (a lock around each call into an undeclared
module) happens at run time, so ``nogil-check-env`` has no such mode; its ``unsafe-nogil``
report names the modules ``serialize`` would lock (README, "Running an application")."""
MODES = (*(m.value for m in Mode), SERIALIZE)
ALLOW_SEPARATOR = ";"


class PolicyError(ValueError):
    """An allow entry or the project's ``[tool.nogil.check]`` is invalid; one line."""


def parse_allow(text: str) -> AllowRule:
    """``pkg.mod=reason`` (or a glob, reason optional) → an :class:`AllowRule`, as ``--allow``."""
    from nogil_toolkit.config import AllowRule, is_module_pattern

    pattern, _, reason = text.partition("=")
    pattern = pattern.strip()
    if not is_module_pattern(pattern):
        raise PolicyError(f"allow entry {text!r}: expected a dotted module name or glob, optionally =REASON")
    if ALLOW_SEPARATOR in reason:
        raise PolicyError(f"allow entry {text!r}: a reason cannot contain {ALLOW_SEPARATOR!r}")
    return AllowRule(pattern, reason.strip() or "allowed on the command line")


def project_rules(project: str) -> tuple[AllowRule, ...]:
    """The ``[tool.nogil.check] allow`` rules of ``project`` (none without a pyproject.toml)."""
    from nogil_toolkit.config import ConfigError, load_config

    try:
        config = load_config(project)
    except ConfigError as exc:
        first = str(exc).splitlines()[0]
        raise PolicyError(f"invalid pyproject.toml: {first}") from None
    return config.check.allow if config is not None else ()


class GuardPolicy:
    """The allowlist of one guarded process as (pattern, reason) pairs, the project's first.

    Read once, when the guard starts (nothing is half-imported then), so that deciding a module
    later needs no TOML parser and no checker: :meth:`allowed_because` matches the way
    :class:`~nogil_toolkit.config.AllowRule` does."""

    def __init__(self, allow: Sequence[tuple[str, str]] = ()) -> None:
        self.allow = tuple((pattern, reason) for pattern, reason in allow)

    def allowed_because(self, module: str) -> str | None:
        """The reason of the first rule matching ``module``, or None."""
        if not self.allow:
            return None
        from fnmatch import fnmatchcase

        return next((reason for pattern, reason in self.allow if fnmatchcase(module, pattern)), None)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> GuardPolicy:
        """``NOGIL_PROJECT``'s rules, then ``NOGIL_ALLOW``'s. Invalid parts are left out and
        named on stderr, one line each: a module is then not allowed, the safe side of a
        broken policy. Without either source nothing is imported."""
        text = environ.get("NOGIL_ALLOW", "")
        project = environ.get("NOGIL_PROJECT")
        project = os.getcwd() if project is None else (project or None)
        has_pyproject = project is not None and (os.path.isfile(project) or
                                                 os.path.isfile(os.path.join(project, "pyproject.toml")))
        if not text.strip() and not has_pyproject:
            return cls()
        rules: list[tuple[str, str]] = []
        problems: list[str] = []
        if has_pyproject:
            try:
                rules.extend((r.pattern, r.reason) for r in project_rules(project))  # type: ignore[arg-type]
            except PolicyError as exc:
                problems.append(f"{exc} (NOGIL_PROJECT={project})")
        for entry in filter(None, (e.strip() for e in text.split(ALLOW_SEPARATOR))):
            try:
                rule = parse_allow(entry)
                rules.append((rule.pattern, rule.reason))
            except PolicyError as exc:
                problems.append(f"NOGIL_ALLOW: {exc}")
        if problems:
            from nogil_toolkit.console import warning

            for problem in problems:
                warning(f"nogil-toolkit guard: {problem}; ignored")
        return cls(rules)
