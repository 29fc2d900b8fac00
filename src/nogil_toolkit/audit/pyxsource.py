"""Cython (``.pyx``, ``.pxd``, ``.pxi``) sources as the rules see them: C-API calls only.

Cython writes most C-API calls itself (and makes them safe for free threading when the module
declares ``freethreading_compatible``); what the author writes by hand are calls of C-API
functions cimported from ``cpython.*`` or declared in ``cdef extern from`` blocks. So this
blanks comments, string literals (every prefix, triple quotes), ``cimport`` statements and the
declarations inside ``cdef extern`` blocks, and keeps the rest at its offsets. Blocks of
``with critical_section(...)`` and functions decorated ``@critical_section`` (Cython 3.1) are
recorded so that ``PyDict_Next`` inside one is not reported.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from nogil_toolkit.audit.csource import SUPPRESSION, blank

_LEX = re.compile(r"""
      (?P<comment>\#[^\n]*)
    | (?P<str>(?:(?<![\w])[rRbBuUfFcC]{1,2})?
        (?:'''(?:[^\\]|\\.)*?(?:'''|\Z) | \"\"\"(?:[^\\]|\\.)*?(?:\"\"\"|\Z)
         | '(?:[^'\\\n]|\\.)*'? | "(?:[^"\\\n]|\\.)*"?))
    """, re.VERBOSE | re.DOTALL)
_EXTERN = re.compile(r"cdef\s+extern\b[^\n]*:\s*$")
_CIMPORT = re.compile(r"(?:from\s+\S+\s+)?cimport\b")
_CRITICAL = re.compile(r"with\b[^\n]*\bcritical_section\s*\([^\n]*:\s*$")
_CRITICAL_DECORATOR = re.compile(r"@\s*(?:\w+\.)*critical_section\b")
_FUNCTION = re.compile(r"(?:async\s+)?(?:c?p?def)\b")


@dataclass
class PreparedPyx:
    original: str
    code: str
    critical: List[Tuple[int, int]]
    """(start, end) offsets of ``with critical_section(...)`` blocks."""
    suppressions: dict = field(default_factory=dict)
    _line_starts: Optional[List[int]] = None

    def position(self, offset: int) -> Tuple[int, int]:
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.original)]
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1


def prepare_pyx(text: str) -> PreparedPyx:
    suppressions: dict = {}
    pieces: List[str] = []
    last = 0
    for match in _LEX.finditer(text):
        start, end = match.span()
        pieces.append(text[last:start])
        body = match.group()
        if match.lastgroup == "comment":
            for marker in SUPPRESSION.finditer(body):
                line = text.count("\n", 0, start) + 1
                ids = frozenset(r.strip() for r in (marker.group(1) or "").split(",") if r.strip())
                previous = suppressions.get(line)
                suppressions[line] = ids if previous is None else (previous | ids if previous and ids else frozenset())
            pieces.append(blank(body))
        else:
            quote = re.search("['\"]", body).start()
            pieces.append(body[:quote + 1] + blank(body[quote + 1:]))
        last = end
    pieces.append(text[last:])
    cleaned = "".join(pieces)
    code, critical = _structure(cleaned)
    return PreparedPyx(text, code, critical, suppressions)


def _structure(cleaned: str) -> Tuple[str, List[Tuple[int, int]]]:
    """Blank declarations (extern blocks, cimports); find critical-section blocks.

    Works on logical lines (brackets continue a line, as in Python) and indentation.
    """
    lines = cleaned.split("\n")
    out = list(lines)
    offsets, total = [], 0
    for line in lines:
        offsets.append(total)
        total += len(line) + 1
    blocks: List[Tuple[str, int, int]] = []  # (kind, indent, start offset)
    critical: List[Tuple[int, int]] = []
    depth = 0
    blanking_statement = False
    decorated = False
    for number, line in enumerate(lines):
        stripped = line.strip()
        if depth == 0 and stripped:
            indent = len(line) - len(line.lstrip())
            while blocks and indent <= blocks[-1][1]:
                kind, _, start = blocks.pop()
                if kind == "critical":
                    critical.append((start, offsets[number]))
            blanking_statement = bool(_CIMPORT.match(stripped)) or any(k == "extern" for k, _, _ in blocks)
            if _EXTERN.match(stripped):
                blocks.append(("extern", indent, offsets[number]))
                blanking_statement = True
            elif _CRITICAL.match(stripped) or (decorated and _FUNCTION.match(stripped)):
                blocks.append(("critical", indent, offsets[number]))
                decorated = False
            elif _CRITICAL_DECORATOR.match(stripped):
                decorated = True
        if blanking_statement:
            out[number] = blank(line)
        depth = max(0, depth + sum(line.count(c) for c in "([{") - sum(line.count(c) for c in ")]}"))
    for kind, _, start in blocks:
        if kind == "critical":
            critical.append((start, total))
    return "\n".join(out), sorted(critical)
