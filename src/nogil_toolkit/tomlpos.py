"""Find where a key stands in TOML text, so configuration errors can name a line and column.

``tomllib`` returns plain values with no positions, and tomlkit keeps formatting but not line
numbers. Error messages still have to point at ``pyproject.toml:12:1``; this module scans the
text for table headers and ``key = value`` lines, which covers the ways people write
``pyproject.toml`` (``[tool.nogil]``, dotted keys, inline tables). It is only ever asked about
a document that already parsed, so it can be forgiving.
"""

from __future__ import annotations

import re
from typing import Iterator, Optional, Sequence

Position = tuple[int, int]
"""1-based line and column."""

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_HEADER = re.compile(r"^\s*(\[\[?)(.*?)\]\]?\s*(#.*)?$")


def split_dotted_key(text: str) -> Optional[list[str]]:
    """``a."b.c".d`` → ``["a", "b.c", "d"]``; ``None`` when ``text`` is not a key."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if rest[0] in "\"'":
            quote = rest[0]
            end = rest.find(quote, 1)
            while quote == '"' and end > 0 and rest[end - 1] == "\\":
                end = rest.find(quote, end + 1)
            if end < 0:
                return None
            parts.append(rest[1:end])
            rest = rest[end + 1:].lstrip()
        else:
            match = _BARE_KEY.match(rest)
            if not match:
                return None
            parts.append(match.group())
            rest = rest[match.end():].lstrip()
        if rest.startswith("."):
            rest = rest[1:].lstrip()
        elif rest:
            return None
    return parts or None


def _key_of_assignment(line: str) -> Optional[tuple[list[str], int]]:
    """The dotted key of a ``key = value`` line and the column where it starts."""
    in_quote = ""
    for index, char in enumerate(line):
        if in_quote:
            if char == in_quote:
                in_quote = ""
        elif char in "\"'":
            in_quote = char
        elif char == "=":
            key = split_dotted_key(line[:index])
            return (key, len(line) - len(line.lstrip()) + 1) if key else None
    return None


def iter_key_positions(text: str) -> Iterator[tuple[tuple[str, ...], Position]]:
    """Yield every table header and assigned key with its full path and position."""
    table: tuple[str, ...] = ()
    in_multiline = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = ""
            continue
        header = _HEADER.match(line)
        if header and not line.lstrip().startswith("#"):
            parts = split_dotted_key(header.group(2))
            if parts:
                table = tuple(parts)
                yield table, (number, line.index("[") + 1)
            continue
        assignment = _key_of_assignment(line)
        if assignment is None:
            continue
        key, column = assignment
        yield table + tuple(key), (number, column)
        # Inline tables on one line: report their keys at the table's line.
        yield from _inline_keys(line, table + tuple(key), number)
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                in_multiline = quote


def _inline_keys(line: str, prefix: tuple[str, ...], number: int) -> Iterator[tuple[tuple[str, ...], Position]]:
    start = line.find("{")
    if start < 0:
        return
    for match in re.finditer(r"(?:^|[{,])\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=",
                             line[start:]):
        key = split_dotted_key(match.group(1))
        if key:
            yield prefix + tuple(key), (number, start + match.start(1) + 1)


def locate(text: str, path: Sequence[str]) -> Optional[Position]:
    """Position of ``path`` in ``text``, or of its longest prefix that is written down."""
    wanted = tuple(path)
    best: Optional[Position] = None
    best_depth = 0
    for key, position in iter_key_positions(text):
        if key == wanted:
            return position
        depth = len(key)
        if depth > best_depth and wanted[:depth] == key:
            best, best_depth = position, depth
    return best
