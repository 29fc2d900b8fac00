"""The guard's mode and allowlist: the same ``[tool.nogil.check]`` and ``--allow`` rules as
``nogil-check-env``, read from the environment the launcher (or the user) set.

``NOGIL_MODE``
    ``gil``, ``nogil`` or ``unsafe-nogil``; unset: no guard.
``NOGIL_ALLOW``
    ``MODULE[=REASON]`` entries separated by ``;``, as ``--allow`` takes them.
``NOGIL_PROJECT``
    The directory (or ``pyproject.toml``) whose ``[tool.nogil.check] allow`` table applies;
    unset: the current directory when the guard starts; empty: none.

The allowlist only matters for a module that needs the GIL, so it is read the first time one
is met, not at start-up: most processes never pay for parsing TOML.
"""

from __future__ import annotations

import _thread
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping

    from nogil_toolkit.config import AllowRule

GIL, NOGIL, UNSAFE_NOGIL = "gil", "nogil", "unsafe-nogil"
MODES = (GIL, NOGIL, UNSAFE_NOGIL)
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
    """The allowlist of one guarded process, read once, when first needed."""

    def __init__(self, allow: str = "", project: str | None = None) -> None:
        self.allow_text = allow
        self.project = project
        self._rules: tuple[AllowRule, ...] | None = None
        self._problems: tuple[str, ...] = ()
        self._lock = _thread.allocate_lock()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> GuardPolicy:
        project = environ.get("NOGIL_PROJECT")
        return cls(environ.get("NOGIL_ALLOW", ""), os.getcwd() if project is None else (project or None))

    def rules(self) -> tuple[AllowRule, ...]:
        """Project rules first, then ``NOGIL_ALLOW``'s. Invalid parts are left out and named
        once on stderr (:meth:`problems`): a refusal then says the module is not allowed, which
        is the safe side of a broken policy."""
        with self._lock:
            if self._rules is None:
                self._rules, self._problems = self._read()
                if self._problems:
                    from nogil_toolkit.console import warning

                    for problem in self._problems:
                        warning(f"nogil-toolkit guard: {problem}; ignored")
            return self._rules

    def _read(self) -> tuple[tuple[AllowRule, ...], tuple[str, ...]]:
        rules: list[AllowRule] = []
        problems: list[str] = []
        if self.project:
            try:
                rules.extend(project_rules(self.project))
            except PolicyError as exc:
                problems.append(f"{exc} (NOGIL_PROJECT={self.project})")
        for entry in filter(None, (e.strip() for e in self.allow_text.split(ALLOW_SEPARATOR))):
            try:
                rules.append(parse_allow(entry))
            except PolicyError as exc:
                problems.append(f"NOGIL_ALLOW: {exc}")
        return tuple(rules), tuple(problems)
