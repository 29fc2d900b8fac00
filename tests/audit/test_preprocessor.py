"""Lexing and ``#if`` evaluation: what survives into the code the rules see."""

from __future__ import annotations

import re

import pytest

from nogil_toolkit.audit.csource import prepare_c
from nogil_toolkit.audit.ppexpr import Macros, evaluate


@pytest.mark.parametrize(("expression", "truth"), [
    ("0", False), ("1", True), ("0x0", False), ("10UL > 9", True), ("0b101 == 5", True), ("010 == 8", True),
    ("defined(Py_GIL_DISABLED)", True), ("defined Py_GIL_DISABLED", True), ("!defined(Py_GIL_DISABLED)", False),
    ("Py_GIL_DISABLED", True), ("PY_VERSION_HEX >= 0x030D0000", True), ("PY_VERSION_HEX < 0x030D0000", False),
    ("PY_VERSION_HEX < 0x030D00A4", False), ("PY_VERSION_HEX >= 0x030E0000", None),
    ("PY_MAJOR_VERSION == 3 && PY_MINOR_VERSION >= 13", True), ("PY_MAJOR_VERSION < 3", False),
    ("PY_MAJOR_VERSION >= 3 || SOMETHING", True), ("defined(PYPY_VERSION)", False), ("PYPY_VERSION", False),
    ("SOMETHING", None), ("defined(SOMETHING)", None), ("SOMETHING && 0", False), ("SOMETHING || 1", True),
    ("__has_include(<threads.h>)", None), ("__GNUC_PREREQ(4, 8)", None), ("(1 ? 0 : 1)", False),
    ("SOMETHING ? 1 : 1", True), ("-1 < 0", True), ("~0 == -1", True), ("1 << 4 == 16", True), ("7 / 0", None),
    ("((1)", None), ("", None), ("true", True), ("'a' == 97", None),
])
def test_conditions_on_a_free_threaded_build(expression: str, truth: object) -> None:
    assert evaluate(expression, Macros()) is truth


def surviving(source: str) -> list[str]:
    """The KEEP_*/DROP_* identifiers left in the code the rules see."""
    return re.findall(r"\b(?:KEEP|DROP)_\w+", prepare_c(source).code)


def test_branches_of_conditionals() -> None:
    source = """
#ifdef Py_GIL_DISABLED
KEEP_ifdef_ft
#else
DROP_ifdef_else
#endif
#if UNKNOWN_MACRO
KEEP_unknown
#elif 1
KEEP_elif_after_unknown
#else
DROP_else_after_certain_elif
#endif
#if 0
#  if 1
DROP_nested_in_dead
#  else
DROP_nested_else_in_dead
#  endif
#elif defined(Py_GIL_DISABLED)
KEEP_elif_taken
#elif 1
DROP_after_taken
#endif
#ifndef Py_GIL_DISABLED
DROP_ifndef
#endif
#define LOCAL_ON 1
#define LOCAL_OFF 0
#undef LOCAL_GONE
#if LOCAL_ON && !LOCAL_OFF && !defined(LOCAL_GONE)
KEEP_local_defines
#endif
#if UNKNOWN_MACRO
#define MAYBE_ON 1
#endif
#if MAYBE_ON
KEEP_define_under_unknown_is_unknown
#endif
#ifdef PYPY_VERSION
DROP_pypy
#endif
#elifdef Py_GIL_DISABLED
#endif
#endif
KEEP_after_stray_directives
"""
    assert surviving(source) == ["KEEP_ifdef_ft", "KEEP_unknown", "KEEP_elif_after_unknown", "KEEP_elif_taken",
                                 "KEEP_local_defines", "KEEP_define_under_unknown_is_unknown",
                                 "KEEP_after_stray_directives"]


def test_lexing_keeps_offsets_and_hides_literals_and_comments() -> None:
    source = ('char *s = "KEEP_no /* not a comment */"; // DROP_line \\\n DROP_spliced_comment\n'
              "int c = '\\''; KEEP_after_char /* DROP_block\n DROP_block2 */ KEEP_after_block\n"
              "#error don't DROP_directive\n"
              "KEEP_after_apostrophe_directive\n"
              'auto r = R"d(DROP_raw )" still)d"; KEEP_after_raw\n'
              "long n = 1'000; char q = 'x'; KEEP_after_separator\n"
              'const char *p = u8"DROP_u8" L"DROP_L" u"DROP_u" U"DROP_U"; KEEP_end\n')
    prepared = prepare_c(source)
    assert len(prepared.code) + source.count("\\\n") * 2 == len(source)
    assert surviving(source) == ["KEEP_after_char", "KEEP_after_block", "KEEP_after_apostrophe_directive",
                                 "KEEP_after_raw", "KEEP_after_separator", "KEEP_end"]
    offset = prepared.code.index("KEEP_end")
    line, column = prepared.position(offset)
    assert source.splitlines()[line - 1][column - 1:].startswith("KEEP_end")


def test_unterminated_literals_end_at_the_line() -> None:
    assert surviving('char *s = "DROP_open\nKEEP_next_line;\nchar c = \'DROP_x\nKEEP_line3\n') == [
        "KEEP_next_line", "KEEP_line3"]


def test_an_unterminated_block_comment_runs_to_the_end() -> None:
    assert surviving("KEEP_before /* DROP_inside\nDROP_rest\n") == ["KEEP_before"]
