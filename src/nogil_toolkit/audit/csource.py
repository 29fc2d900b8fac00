"""C and C++ source text prepared for the rules: what the compiler would see on a free-threaded build.

Translation phases 2-3 exactly (line splices, comments, string and character literals with
every prefix, C++ raw strings and digit separators), then the conditionals of phase 4 evaluated
for a free-threaded CPython (:mod:`.ppexpr`). The result, :class:`PreparedC`, keeps every
character at its offset: comments, literal contents, directive lines and code that cannot
compile on a free-threaded build are blanked to spaces (newlines kept), so a plain regular
expression over ``code`` can never match inside any of them, and a match's offset maps back to
the original line and column.

Why a tokenizer of our own rather than libclang or tree-sitter: the rules need identifiers,
braces and conditionals, not a full parse; a real preprocessor needs the build's include paths
and flags; tree-sitter has no cp313t wheel (and abi3 grammars do not load on 3.13t); libclang
parses whole translation units per file. Regular expressions over the text run in C, so
numpy's sources take seconds (see the README).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

from nogil_toolkit.audit.ppexpr import UNKNOWN, Macros, evaluate, value_of

SUPPRESSION = re.compile(r"nogil-audit:\s*ignore(?:\[([^\]\n]*)\])?")
"""``// nogil-audit: ignore`` (every rule on the line) or ``nogil-audit: ignore[rule-id, ...]``."""

_SPLICE = re.compile(r"\\[ \t]*\r?\n")

_LEX_BASE = r"""[/"'](?:
      (?<=/)(?:/[^\n]*|\*.*?(?:\*/|\Z))
    | (?<=")(?:[^"\\\n]|\\[^\n])*"?
    | (?<=')(?:[^'\\\n]|\\[^\n])*'?)"""
"""Comments and literals: everything that can hide an identifier or a brace. Unterminated
literals end at the line's end, as GCC ends them (an apostrophe in ``#error don't`` must not
swallow the file). The pattern starts with a character class so the regex engine skips to
candidates at C speed; numpy's 15 MB of C go through it in about 0.2 s."""
_LEX_RAW = r"""
    | (?P<raw>(?<![\w$])(?:u8|u|U|L)?R"(?P<delim>[^()\\\s"]{0,16})\(.*?\)(?P=delim)")"""
_LEX_SEPARATOR = r"""
    | (?P<num>(?<![\w$.])\.?\d(?:[\w.]|[eEpP][+-])*'(?:[\w.]|[eEpP][+-]|'(?=\w))*)"""
"""C++ raw strings, and numbers with C++14 digit separators (the one case where ``'`` opens
nothing). Both alternatives make every position slower, so they are compiled in only for a
text that can contain them (:data:`_MAY_HAVE_RAW`, :data:`_MAY_HAVE_SEPARATORS`)."""

_MAY_HAVE_RAW = re.compile(r'R"[^()\\\s"]{0,16}\(')
_MAY_HAVE_SEPARATORS = re.compile(r"[0-9]'[0-9A-Za-z_]")


@lru_cache(maxsize=None)
def _lexer(raw: bool, separators: bool) -> "re.Pattern[str]":
    pattern = _LEX_BASE + (_LEX_RAW if raw else "") + (_LEX_SEPARATOR if separators else "")
    return re.compile(pattern, re.VERBOSE | re.DOTALL)


def _may_have_raw_strings(text: str) -> bool:
    """An over-approximation (``"ERROR"(`` also counts): it only decides whether the exact
    raw-string alternative, with its prefix rules, is compiled in."""
    return _MAY_HAVE_RAW.search(text) is not None


_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*([A-Za-z_]\w*)?([^\n]*)$", re.MULTILINE)
_NAME = re.compile(r"\s*([A-Za-z_]\w*)")
_DEFINE = re.compile(r"\s*([A-Za-z_]\w*)(\()?")
_NOT_NEWLINE = re.compile(r"[^\n]+")

LIVE, MAYBE, DEAD = "live", "maybe", "dead"


def blank(text: str) -> str:
    """``text`` with every character but newlines turned into a space."""
    if "\n" not in text:
        return " " * len(text)
    return _NOT_NEWLINE.sub(lambda m: " " * len(m.group()), text)


@dataclass
class PreparedC:
    """One C/C++ file as the rules see it. Offsets are in the spliced text (phase 2)."""

    original: str
    code: str
    """Live code only: comments, literal contents, every directive line and dead code blanked."""
    defines: List[Tuple[int, int]]
    """(start, end) of each live ``#define`` body in ``cleaned``: a use there counts where it is written."""
    cleaned: str
    """All of the file with only comments and literal contents blanked."""
    suppressions: dict = field(default_factory=dict)
    """original line -> frozenset of rule ids (empty: every rule) from ``nogil-audit: ignore``."""
    splice_at: List[int] = field(default_factory=list)
    """Spliced-text offset of each removed backslash-newline..."""
    splice_removed: List[int] = field(default_factory=list)
    """...and how many characters were removed up to and including it."""
    _line_starts: Optional[List[int]] = None

    def original_offset(self, offset: int) -> int:
        """Undo the splices: each one at or before ``offset`` removed its backslash-newline."""
        index = bisect.bisect_right(self.splice_at, offset) if self.splice_at else 0
        return offset + (self.splice_removed[index - 1] if index else 0)

    def position(self, offset: int) -> Tuple[int, int]:
        """1-based (line, column) in the original file of a spliced-text offset."""
        original = self.original_offset(offset)
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.original)]
        line = bisect.bisect_right(self._line_starts, original)
        return line, original - self._line_starts[line - 1] + 1


def _remove_splices(text: str) -> Tuple[str, List[int], List[int]]:
    """Phase 2: join lines ending in a backslash; positions to map offsets back."""
    if "\\" not in text:
        return text, [], []
    pieces, at, removed = [], [], []
    last, total = 0, 0
    for match in _SPLICE.finditer(text):
        pieces.append(text[last:match.start()])
        total += match.end() - match.start()
        at.append(match.start() - (total - (match.end() - match.start())))
        removed.append(total)
        last = match.end()
    if not at:
        return text, [], []
    pieces.append(text[last:])
    return "".join(pieces), at, removed


def _strip(text: str, suppressions: dict, line_of) -> str:
    """Phase 3: blank comments and the contents of literals (their quotes stay)."""
    pieces: List[str] = []
    last = 0
    lexer = _lexer(_may_have_raw_strings(text), _MAY_HAVE_SEPARATORS.search(text) is not None)
    for match in lexer.finditer(text):
        kind = match.lastgroup or {"/": "comment", '"': "str", "'": "chr"}[match.group()[0]]
        if kind == "num":
            continue
        start, end = match.span()
        pieces.append(text[last:start])
        body = match.group()
        if kind == "comment":
            for marker in SUPPRESSION.finditer(body):
                rules = marker.group(1)
                line = line_of(start + marker.start())
                ids = frozenset(r.strip() for r in (rules or "").split(",") if r.strip())
                previous = suppressions.get(line)
                # An empty set covers every rule, so it absorbs any list on the same line.
                suppressions[line] = ids if previous is None else (previous | ids if previous and ids else frozenset())
            pieces.append(blank(body))
        else:
            quote = body.index('"') if kind in ("raw", "str") else body.index("'")
            closed = len(body) > quote + 1 and body[-1] == body[quote]
            inner = body[quote + 1:len(body) - 1] if closed else body[quote + 1:]
            pieces.append(body[:quote + 1] + blank(inner) + (body[-1] if closed else ""))
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def prepare_c(text: str) -> PreparedC:
    """Lex ``text`` and evaluate its conditionals for a free-threaded build."""
    spliced, at, removed = _remove_splices(text)
    prepared = PreparedC(text, "", [], "", splice_at=at, splice_removed=removed)
    suppressions: dict = {}
    cleaned = _strip(spliced, suppressions, lambda offset: prepared.position(offset)[0])
    prepared.cleaned = cleaned
    prepared.suppressions = suppressions
    prepared.code, prepared.defines = _conditionals(cleaned)
    return prepared


class _Group:
    """One ``#if`` ... ``#endif``: the liveness around it and whether a branch was taken."""

    __slots__ = ("outer", "taken", "state")

    def __init__(self, outer: str) -> None:
        self.outer = outer
        self.taken: Optional[bool] = False
        self.state = DEAD

    def branch(self, condition: Optional[bool]) -> None:
        if self.outer == DEAD or self.taken is True or condition is False:
            self.state = DEAD
        elif condition is True and self.taken is False:
            self.state = self.outer
        else:
            self.state = MAYBE
        if self.taken is not True:
            self.taken = True if condition is True else (None if condition is None or self.taken is None else False)


def _conditionals(cleaned: str) -> Tuple[str, List[Tuple[int, int]]]:
    macros = Macros()
    stack: List[_Group] = []
    state = LIVE
    pieces: List[str] = []
    defines: List[Tuple[int, int]] = []
    last = 0
    for match in _DIRECTIVE.finditer(cleaned):
        start, end = match.span()
        chunk = cleaned[last:start]
        pieces.append(blank(chunk) if state == DEAD else chunk)
        pieces.append(" " * (end - start))  # a directive is one line once spliced
        last = end
        name, rest = match.group(1) or "", match.group(2)
        if name in ("if", "ifdef", "ifndef"):
            group = _Group(state)
            group.branch(_condition(name, rest, macros))
            stack.append(group)
            state = group.state
        elif name in ("elif", "elifdef", "elifndef", "else"):
            if stack:
                group = stack[-1]
                group.branch(True if name == "else" else _condition(name[2:] if name != "elif" else "if", rest, macros))
                state = group.state
        elif name == "endif":
            if stack:
                state = stack.pop().outer
        elif state != DEAD and name == "define":
            head = _DEFINE.match(rest)
            if head:
                body_start = match.start(2) + head.end()
                defines.append((body_start, end))
                value = UNKNOWN if head.group(2) else value_of(rest[head.end():], macros)
                macros.define(head.group(1), value, state == LIVE)
        elif state != DEAD and name == "undef":
            head = _NAME.match(rest)
            if head:
                macros.undefine(head.group(1), state == LIVE)
    tail = cleaned[last:]
    pieces.append(blank(tail) if state == DEAD else tail)
    return "".join(pieces), defines


def _condition(kind: str, rest: str, macros: Macros) -> Optional[bool]:
    if kind in ("ifdef", "ifndef", "def", "ndef"):
        head = _NAME.match(rest)
        if not head:
            return None
        defined = macros.lookup(head.group(1))[0]
        if defined is None or kind in ("ifdef", "def"):
            return defined
        return not defined
    return evaluate(rest, macros)


def line_suppressed(suppressions: dict, line: int, rule_id: str) -> bool:
    ids = suppressions.get(line)
    return ids is not None and (not ids or rule_id in ids)


def brace_depths(code: str) -> Tuple[List[int], List[int]]:
    """Positions of ``{``/``}`` in ``code`` and the block depth after each, not counting the
    braces of ``extern "C" {`` and ``namespace x {``, which open no scope of their own."""
    transparent = {m.end() - 1 for m in _TRANSPARENT.finditer(code)}
    positions: List[int] = []
    depths: List[int] = []
    stack: List[bool] = []
    depth = 0
    for match in re.finditer(r"[{}]", code):
        at = match.start()
        if match.group() == "{":
            opaque = at not in transparent
            stack.append(opaque)
            depth += opaque
        elif stack:
            depth -= stack.pop()
        positions.append(at)
        depths.append(depth)
    return positions, depths


_TRANSPARENT = re.compile(r'(?:extern\s*"\s*"|namespace(?:\s+[\w:]+)?)\s*\{')


def depth_at(positions: Sequence[int], depths: Sequence[int], offset: int) -> int:
    index = bisect.bisect_right(positions, offset)
    return depths[index - 1] if index else 0
