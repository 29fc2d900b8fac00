"""``#if`` expressions evaluated for a free-threaded CPython build, in three-valued logic.

The audit does not run a preprocessor (that needs the compiler's include paths and flags). It
knows a few facts that hold on every free-threaded CPython build, and the object-like macros a
file defines itself; everything else is *unknown*. A value is an interval ``(low, high)``:
exact when both ends agree, unknown when it is ``(-inf, inf)``. An unknown condition keeps its
code (it may compile); only a condition that is false on every free-threaded build removes it.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

Interval = Tuple[float, float]
INF = float("inf")
UNKNOWN: Interval = (-INF, INF)
BOOL_UNKNOWN: Interval = (0, 1)

FREE_THREADED_FACTS: Dict[str, Optional[Interval]] = {
    "Py_GIL_DISABLED": (1, 1),
    # Free-threaded builds exist from 3.13.0 on; pre-releases of 3.13 are not a target.
    "PY_VERSION_HEX": (0x030D00F0, INF),
    "PY_MAJOR_VERSION": (3, 3),
    "PY_MINOR_VERSION": (13, INF),
    # None: known to be undefined on CPython.
    "PYPY_VERSION": None,
    "PYPY_VERSION_NUM": None,
}
"""Macros whose value every free-threaded CPython build fixes; files cannot redefine them."""


class Macros:
    """What is known about macros at a point of one file: the facts, then the file's own defines.

    ``values[name]`` is an interval (defined, with that value), ``None`` (known undefined);
    a name absent from both tables is unknown (it may come from a header or the command line).
    """

    def __init__(self) -> None:
        self.values: Dict[str, Optional[Interval]] = {}

    def lookup(self, name: str) -> Tuple[Optional[bool], Interval]:
        """(is it defined: True/False/None for unknown, its value)."""
        if name in FREE_THREADED_FACTS:
            value = FREE_THREADED_FACTS[name]
        elif name in self.values:
            value = self.values[name]
        else:
            return None, UNKNOWN
        return (False, (0, 0)) if value is None else (True, value)

    def define(self, name: str, value: Interval, certain: bool) -> None:
        """``#define``; in code that may or may not compile (``certain`` false) nothing is known after."""
        if name in FREE_THREADED_FACTS:
            return
        if certain:
            self.values[name] = value
        else:
            self.values.pop(name, None)

    def undefine(self, name: str, certain: bool) -> None:
        if name in FREE_THREADED_FACTS:
            return
        if certain:
            self.values[name] = None
        else:
            self.values.pop(name, None)


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>0[xX][0-9a-fA-F]+|0[bB][01]+|\d+)(?:[uUlLzZ]|wb|WB)*
    | (?P<chr>'[^']*')
    | (?P<id>[A-Za-z_]\w*)
    | (?P<op>&&|\|\||<<|>>|<=|>=|==|!=|[-+*/%<>&^|!~?:(),])
    | (?P<bad>\S)
    )""", re.VERBOSE)


class _Unparsable(Exception):
    pass


def _tokens(text: str) -> List[Tuple[str, str]]:
    out = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind is None:
            continue
        if kind == "bad":
            raise _Unparsable(match.group(kind))
        out.append((kind, match.group(kind)))
    return out


def _is_true(v: Interval) -> Optional[bool]:
    if v == (0, 0):
        return False
    if v[0] > 0 or v[1] < 0:
        return True
    return None


def _from_bool(b: Optional[bool]) -> Interval:
    return BOOL_UNKNOWN if b is None else ((1, 1) if b else (0, 0))


def _exact(v: Interval) -> bool:
    return v[0] == v[1]


_PRECEDENCE = {op: level for level, ops in enumerate(
    [("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="), ("<<", ">>"),
     ("+", "-"), ("*", "/", "%")]) for op in ops}


class _Parser:
    def __init__(self, tokens: List[Tuple[str, str]], macros: Macros) -> None:
        self.tokens = tokens
        self.pos = 0
        self.macros = macros

    def peek(self) -> Optional[str]:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self) -> Tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise _Unparsable("end")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, text: str) -> None:
        if self.take()[1] != text:
            raise _Unparsable(text)

    def expression(self) -> Interval:
        condition = self.binary(0)
        if self.peek() != "?":
            return condition
        self.take()
        yes = self.expression()
        self.expect(":")
        no = self.expression()
        truth = _is_true(condition)
        if truth is None:
            return (min(yes[0], no[0]), max(yes[1], no[1]))
        return yes if truth else no

    def binary(self, lowest: int) -> Interval:
        """Precedence climbing: operators binding at least as tightly as ``lowest``."""
        left = self.unary()
        while True:
            op = self.peek()
            level = _PRECEDENCE.get(op) if op is not None else None
            if level is None or level < lowest:
                return left
            self.take()
            left = _apply(op, left, self.binary(level + 1))

    def unary(self) -> Interval:
        kind, text = self.take()
        if text == "(":
            value = self.expression()
            self.expect(")")
            return value
        if text == "!":
            truth = _is_true(self.unary())
            return _from_bool(None if truth is None else not truth)
        if text in ("-", "+", "~"):
            value = self.unary()
            if not _exact(value):
                return UNKNOWN
            return {"-": (-value[0],) * 2, "+": value, "~": (~int(value[0]),) * 2}[text]
        if kind == "num":
            return (int(text, 0) if not re.fullmatch(r"0\d+", text) else int(text, 8),) * 2
        if kind == "chr":
            return UNKNOWN
        if kind == "id":
            return self.identifier(text)
        raise _Unparsable(text)

    def identifier(self, name: str) -> Interval:
        if name == "defined":
            parenthesised = self.peek() == "("
            if parenthesised:
                self.take()
            kind, macro = self.take()
            if kind != "id":
                raise _Unparsable(macro)
            if parenthesised:
                self.expect(")")
            return _from_bool(self.macros.lookup(macro)[0])
        if self.peek() == "(":  # a function-like macro or __has_include(...): not evaluated
            depth = 0
            while True:
                text = self.take()[1]
                depth += {"(": 1, ")": -1}.get(text, 0)
                if depth == 0:
                    return UNKNOWN
        if name in ("true", "false"):  # C++ and C23
            return _from_bool(name == "true")
        defined, value = self.macros.lookup(name)
        if defined is False:
            return (0, 0)  # an undefined identifier is 0 in #if
        return value


def _apply(op: str, a: Interval, b: Interval) -> Interval:
    if op in ("||", "&&"):
        x, y = _is_true(a), _is_true(b)
        if op == "||":
            return _from_bool(True if x or y else (False if x is False and y is False else None))
        return _from_bool(False if x is False or y is False else (True if x and y else None))
    if op in ("<", ">", "<=", ">="):
        if op in (">", ">="):
            a, b, op = b, a, "<" if op == ">" else "<="
        if op == "<":
            return _from_bool(True if a[1] < b[0] else (False if a[0] >= b[1] else None))
        return _from_bool(True if a[1] <= b[0] else (False if a[0] > b[1] else None))
    if op in ("==", "!="):
        if _exact(a) and _exact(b):
            equal: Optional[bool] = a[0] == b[0]
        elif a[1] < b[0] or b[1] < a[0]:
            equal = False
        else:
            equal = None
        return _from_bool(equal if op == "==" or equal is None else not equal)
    if not (_exact(a) and _exact(b)) or INF in (abs(a[0]), abs(b[0])):
        return UNKNOWN
    x, y = int(a[0]), int(b[0])
    try:
        result = {"|": lambda: x | y, "^": lambda: x ^ y, "&": lambda: x & y, "<<": lambda: x << y,
                  ">>": lambda: x >> y, "+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y,
                  "/": lambda: int(x / y), "%": lambda: x - int(x / y) * y}[op]()
    except (ZeroDivisionError, ValueError):
        return UNKNOWN
    return (result, result)


def evaluate(text: str, macros: Macros) -> Optional[bool]:
    """True/False when ``text`` holds on every / no free-threaded build; None when it depends."""
    return _is_true(value_of(text, macros))


def value_of(text: str, macros: Macros) -> Interval:
    """The value of a preprocessor expression; UNKNOWN for anything this evaluator cannot read."""
    try:
        tokens = _tokens(text)
        if not tokens:
            return UNKNOWN
        parser = _Parser(tokens, macros)
        value = parser.expression()
        return value if parser.pos == len(tokens) else UNKNOWN
    except (_Unparsable, RecursionError):
        return UNKNOWN
