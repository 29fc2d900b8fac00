"""Apply the rules to one prepared source: findings with their line and column.

Every check is a regular expression over text in which comments, literals, directives and
code that cannot compile on a free-threaded build are already blanks (:mod:`.csource`,
:mod:`.pyxsource`), so none of them can produce a finding.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from nogil_toolkit.audit.csource import PreparedC, brace_depths, depth_at, line_suppressed, prepare_c
from nogil_toolkit.audit.pyxsource import PreparedPyx, prepare_pyx
from nogil_toolkit.audit.rules import Rule, load_rules


@dataclass(frozen=True)
class Finding:
    """One risky use: where, which rule, which API (or which variable), and what exactly."""

    path: str
    line: int
    column: int
    end_column: int
    rule: Rule
    api: str
    message: str


_PRIVATE_KWARGS = re.compile(r"(?i)kw\w*|keyw\w*")
_FIRST_ARGUMENT = re.compile(r"\s*\(\s*&?\s*([A-Za-z_]\w*)\s*[,)]")
_CRITICAL = re.compile(r"Py_(BEGIN|END)_CRITICAL_SECTION\w*")
_DECLARATION = re.compile(r"(?P<type>Py[A-Za-z_]*Object)\s*(?P<stars>\*+)\s*(?P<name>[A-Za-z_]\w*)\s*(?=(?P<after>[\[=;,]))")
"""``PyObject *name`` followed by what ends a declarator; :func:`_statement_specifiers` then
checks that it starts a statement. Every pattern here begins with a literal (``Py``) so that
the regex engine can skip to candidates; what a lookbehind would check is checked after."""
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_NOT_STATE = frozenset({"extern", "typedef", "thread_local", "_Thread_local", "__thread"})
_LATER_DECLARATOR = re.compile(r"\s*(\*+)\s*([A-Za-z_]\w*)")


@lru_cache(maxsize=None)
def _api_index() -> Tuple[re.Pattern, Dict[str, Rule]]:
    by_name: Dict[str, Rule] = {}
    for rule in load_rules():
        if rule.detector == "api":
            for name in rule.apis:
                by_name[name] = rule
    return _names_pattern(by_name), by_name


def _names_pattern(names: Iterable[str]) -> "re.Pattern[str]":
    """Whole-word uses of ``names`` (all start with ``Py``); see :func:`_uses` for the left edge."""
    ordered = sorted(names, key=len, reverse=True)
    assert all(n.startswith("Py") for n in ordered), "rule names must start with Py (the regex prefix)"
    return re.compile(r"Py(" + "|".join(re.escape(n[2:]) for n in ordered) + r")(?![\w$])")


def _uses(pattern: "re.Pattern[str]", text: str, start: int = 0, end: Optional[int] = None) -> Iterable["re.Match[str]"]:
    """Matches of ``pattern`` not preceded by an identifier character."""
    for match in pattern.finditer(text, start, len(text) if end is None else end):
        if match.start() == 0 or text[match.start() - 1] not in _IDENTIFIER_CHARS:
            yield match


_SINGLE_PHASE = _names_pattern(next(r for r in load_rules() if r.detector == "single-phase-global-state").apis)


def scan_c(path: str, text: str, ignore: frozenset = frozenset()) -> Tuple[List[Finding], int]:
    """Findings in C/C++ ``text`` and how many a suppression comment silenced."""
    prepared = prepare_c(text)
    found: List[Tuple[int, int, Rule, str, str]] = []  # (offset, length, rule, api, message)
    pattern, by_name = _api_index()
    criticals = None
    for match in _uses(pattern, prepared.code):
        api = match.group()
        rule = by_name[api]
        if rule.skip_private_kwargs and _private_kwargs(prepared.code, match.end()):
            continue
        if rule.outside_critical_section:
            if criticals is None:
                criticals = _critical_events(prepared.code)
            if _inside_critical_section(criticals, match.start()):
                continue
        found.append((match.start(), len(api), rule, api, f"{api} {rule.why}"))
    for start, end in prepared.defines:
        for match in _uses(pattern, prepared.cleaned, start, end):
            api = match.group()
            rule = by_name[api]
            if rule.skip_private_kwargs and _private_kwargs(prepared.cleaned, match.end()):
                continue
            found.append((match.start(), len(api), rule, api, f"{api} (in a macro) {rule.why}"))
    state = list(_global_state(prepared.code))
    if state:
        state_rule = next(r for r in load_rules() if r.detector == "mutable-global-state")
        found.extend((offset, len(name), state_rule, name, f"'{declaration}': {state_rule.why}")
                     for offset, name, declaration in state)
        single = next(r for r in load_rules() if r.detector == "single-phase-global-state")
        names = ", ".join(sorted({name for _, name, _ in state})[:3]) + (", ..." if len(state) > 3 else "")
        found.extend((m.start(), len(m.group()), single, m.group(),
                      f"{m.group()} creates a single-phase module, and this file keeps global state ({names}): {single.why}")
                     for m in _uses(_SINGLE_PHASE, prepared.code))
    return _located(path, prepared, found, ignore)


def scan_pyx(path: str, text: str, ignore: frozenset = frozenset()) -> Tuple[List[Finding], int]:
    prepared = prepare_pyx(text)
    pattern, by_name = _api_index()
    found = []
    for match in _uses(pattern, prepared.code):
        api = match.group()
        rule = by_name[api]
        if rule.skip_private_kwargs and _private_kwargs(prepared.code, match.end()):
            continue
        if rule.outside_critical_section and any(s <= match.start() < e for s, e in prepared.critical):
            continue
        found.append((match.start(), len(api), rule, api, f"{api} {rule.why}"))
    return _located(path, prepared, found, ignore)


def _located(path: str, prepared: Union[PreparedC, PreparedPyx], found: Iterable[Tuple[int, int, Rule, str, str]],
             ignore: frozenset) -> Tuple[List[Finding], int]:
    findings, suppressed = [], 0
    for offset, length, rule, api, message in sorted(found, key=lambda f: f[0]):
        if rule.id in ignore:
            continue
        line, column = prepared.position(offset)
        if line_suppressed(prepared.suppressions, line, rule.id):
            suppressed += 1
            continue
        findings.append(Finding(path, line, column, column + length, rule, api, message))
    return findings, suppressed


def _private_kwargs(code: str, end: int) -> bool:
    """Is the call's first argument named like the keyword-argument dict of a call?"""
    match = _FIRST_ARGUMENT.match(code, end)
    return bool(match and _PRIVATE_KWARGS.fullmatch(match.group(1)))


def _critical_events(code: str) -> Tuple[List[int], List[int]]:
    """Offsets of critical-section begins/ends and braces, with the open sections after each.

    Sections nest within a function; a closing brace back at file scope ends any left open
    (the END macro sits in a ``#define`` or was not seen), so one bad function cannot hide
    findings in the next.
    """
    events = sorted((m.start(), m.group(1)) for m in _uses(_CRITICAL, code))
    if not events:
        return [], []
    positions, depths = brace_depths(code)
    merged = sorted(events + [(p, "}") for p, d in zip(positions, depths) if d == 0])
    offsets, open_after = [], []
    depth = 0
    for offset, kind in merged:
        depth = depth + 1 if kind == "BEGIN" else (max(0, depth - 1) if kind == "END" else 0)
        offsets.append(offset)
        open_after.append(depth)
    return offsets, open_after


def _inside_critical_section(events: Tuple[List[int], List[int]], offset: int) -> bool:
    offsets, open_after = events
    index = bisect.bisect_right(offsets, offset)
    return bool(index and open_after[index - 1] > 0)


def _global_state(code: str) -> Iterable[Tuple[int, str, str]]:
    """(offset, name, declaration) of each static or file-scope object pointer variable."""
    positions: Optional[Sequence[int]] = None
    depths: Sequence[int] = ()
    for match in _uses(_DECLARATION, code):
        found = _statement_specifiers(code, match.start())
        if found is None:
            continue
        specifiers = set(found)
        if specifiers & _NOT_STATE:
            continue
        if "static" not in specifiers:
            if positions is None:
                positions, depths = brace_depths(code)
            if depth_at(positions, depths, match.start("type")) != 0:
                continue
        kind = ("static " if "static" in specifiers else "") + match.group("type") + " " + match.group("stars")
        yield match.start("name"), match.group("name"), kind + match.group("name")
        if match.group("after") in ",=[":
            yield from _later_declarators(code, match.end(), kind.rstrip("*").rstrip())


def _statement_specifiers(code: str, start: int) -> Optional[List[str]]:
    """The words before ``start`` back to the start of its statement (``;``, ``{``, ``}`` or the
    file's start), or None when something else comes first (a ``(`` or ``,``: a parameter) or
    more words than any declaration has (so a run of words costs nothing quadratic)."""
    words: List[str] = []
    index = start - 1
    while len(words) <= 16:
        while index >= 0 and code[index].isspace():
            index -= 1
        if index < 0 or code[index] in ";{}":
            return words
        end = index + 1
        while index >= 0 and code[index] in _IDENTIFIER_CHARS:
            index -= 1
        if index + 1 == end or code[index + 1].isdigit():
            return None
        words.append(code[index + 1:end])
    return None


def _later_declarators(code: str, start: int, kind: str) -> Iterable[Tuple[int, str, str]]:
    """``static PyObject *a = NULL, *b;``: the declarators after the first, up to the ``;``."""
    depth, part_start = 0, None
    for index in range(start, min(len(code), start + 4000)):
        char = code[index]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                return
        elif depth == 0 and char == ",":
            part_start = index + 1
            match = _LATER_DECLARATOR.match(code, part_start)
            if match:
                yield match.start(2), match.group(2), f"{kind} {match.group(1)}{match.group(2)}"
        elif depth == 0 and char == ";":
            return
