"""Each rule on a fixture written for it, and each no-false-hit case.

Expected findings are written in the fixtures as comments, ``expect: rule-id(api)``, on the
line where the finding must be; comments never produce findings, so the markers cannot
match themselves. The test compares the exact set of (line, rule, api), so a finding on a
line without a marker fails it as much as a missing one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nogil_toolkit.audit import AuditPolicy, audit_paths
from nogil_toolkit.audit.rules import load_rules

FIXTURES = Path(__file__).parent / "fixtures"
_EXPECT = re.compile(r"expect:((?:\s*[\w-]+\(\w+\))+)")
_ONE = re.compile(r"([\w-]+)\((\w+)\)")


def expected(path: Path) -> set[tuple[int, str, str]]:
    found = set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        marker = _EXPECT.search(line)
        if marker:
            found |= {(number, rule, api) for rule, api in _ONE.findall(marker.group(1))}
    return found


def findings(path: Path, policy: AuditPolicy = AuditPolicy()) -> set[tuple[int, str, str]]:
    result = audit_paths([path], policy)
    assert result.audited == 1 and not result.skipped, result.skipped
    return {(f.line, f.rule.id, f.api) for f in result.findings}


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_fixture_findings_are_exactly_the_marked_ones(name: str) -> None:
    assert findings(FIXTURES / name) == expected(FIXTURES / name)


def test_every_rule_has_a_fixture_finding() -> None:
    marked = {rule for path in FIXTURES.iterdir() for _, rule, _ in expected(path)}
    assert marked == {rule.id for rule in load_rules()}


def test_every_api_of_every_rule_is_exercised() -> None:
    marked = {api for path in FIXTURES.iterdir() for _, _, api in expected(path)}
    apis = {api for rule in load_rules() if rule.detector == "api" for api in rule.apis}
    assert apis - marked == set()


def test_the_no_false_hits_fixtures_really_use_the_apis() -> None:
    """Guard against a fixture that proves nothing: its risky names are there, outside the code."""
    text = (FIXTURES / "no_false_hits.c").read_text()
    for api in ("PyList_GetItem", "PyDict_GetItem", "PyWeakref_GetObject", "PyDict_Next", "PyDict_SetDefault",
                "PyWeakref_GET_OBJECT", "PyImport_AddModule", "PyCell_GET", "PyEval_GetGlobals"):
        assert re.search(rf"\b{api}\(", text), api
    assert expected(FIXTURES / "no_false_hits.c") == set()
    assert findings(FIXTURES / "no_false_hits.c") == set()


def test_suppression_comments_are_counted() -> None:
    result = audit_paths([FIXTURES / "suppressed.c"])
    assert result.suppressed == 4


def test_ignored_rules_are_not_reported() -> None:
    policy = AuditPolicy(ignore=("mutable-global-state",))
    assert {rule for _, rule, _ in findings(FIXTURES / "global_state.c", policy)} == {"single-phase-global-state"}


def test_columns_point_at_the_api(tmp_path: Path) -> None:
    source = tmp_path / "columns.c"
    source.write_text("int f(PyObject *l) {\n    return PyList_GetItem(l, 0) != NULL;\n}\n")
    (finding,) = audit_paths([source]).findings
    assert (finding.line, finding.column, finding.end_column) == (2, 12, 26)


def test_positions_after_line_splices_are_those_of_the_original_file(tmp_path: Path) -> None:
    source = tmp_path / "splices.c"
    source.write_text('#define LONG(x) \\\n   first(x) + \\\n   PyDict_GetItem(x, x)\nstatic int y = 1; \\\n'
                      "\nPyObject *g(PyObject *l) { return PyList_GET_ITEM(l, 0); }\n")
    assert [(f.line, f.column, f.api) for f in audit_paths([source]).findings] == [
        (3, 4, "PyDict_GetItem"), (6, 35, "PyList_GET_ITEM")]
