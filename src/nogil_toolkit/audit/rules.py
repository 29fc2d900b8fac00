"""The audit's rules, read from ``rules.toml``: one table is the documentation and the code.

Each rule says which C-API names (or which structural pattern) it looks for, why that is risky
once no GIL serialises the threads, what to write instead, from which CPython version, whether
``pythoncapi_compat.h`` backports it, and which section of CPython's documentation says so.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on the 3.9/3.10 CI interpreters
    import tomli as tomllib


class Severity(enum.IntEnum):
    """How sure and how bad: ``error`` is wrong under free threading whatever the context,
    ``warning`` is wrong unless the object is private to the thread, ``note`` asks for a look."""

    NOTE = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Severity":
        return cls[text.upper()]


DETECTORS = ("api", "mutable-global-state", "single-phase-global-state")


@dataclass(frozen=True)
class Rule:
    """One row of ``rules.toml``."""

    id: str
    severity: Severity
    detector: str
    apis: tuple[str, ...]
    why: str
    replacement: str
    since: str
    pythoncapi_compat: bool
    section: str
    url: str
    skip_private_kwargs: bool = False
    outside_critical_section: bool = False

    @property
    def replacement_text(self) -> str:
        """``X (CPython 3.13+; pythoncapi-compat backports it)``: what a finding advises."""
        notes = []
        if self.since:
            notes.append(f"CPython {self.since}+")
        if self.pythoncapi_compat:
            notes.append("pythoncapi_compat.h backports it")
        return f"{self.replacement} ({'; '.join(notes)})" if notes else self.replacement


_FIELDS = {"id": str, "severity": str, "detector": str, "apis": list, "why": str, "replacement": str,
           "since": str, "pythoncapi_compat": bool, "section": str, "url": str}
_OPTIONAL = {"skip_private_kwargs": bool, "outside_critical_section": bool}


def _rule(table: Mapping[str, Any]) -> Rule:
    missing = [k for k in _FIELDS if k not in table]
    unknown = [k for k in table if k not in _FIELDS and k not in _OPTIONAL]
    wrong = [k for k, kind in {**_FIELDS, **_OPTIONAL}.items() if k in table and not isinstance(table[k], kind)]
    if missing or unknown or wrong or table["detector"] not in DETECTORS:
        raise ValueError(f"rules.toml: bad rule {table.get('id')!r}: missing {missing}, unknown {unknown}, "
                         f"wrong type {wrong}, detector {table.get('detector')!r}")
    return Rule(table["id"], Severity.parse(table["severity"]), table["detector"], tuple(table["apis"]),
                table["why"], table["replacement"], table["since"], table["pythoncapi_compat"],
                table["section"], table["url"], table.get("skip_private_kwargs", False),
                table.get("outside_critical_section", False))


@lru_cache(maxsize=None)
def load_rules() -> tuple[Rule, ...]:
    """Every rule, in the file's order. Read once per process."""
    text = resources.files("nogil_toolkit.audit").joinpath("rules.toml").read_text(encoding="utf-8")
    rules = tuple(_rule(table) for table in tomllib.loads(text)["rule"])
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise ValueError("rules.toml: duplicate rule ids")
    return rules


def rule_ids() -> tuple[str, ...]:
    return tuple(r.id for r in load_rules())
