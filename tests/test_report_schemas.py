"""The JSON reports' schemas describe an inspection exactly as the code writes it: each report
schema carries its own copy (so that it validates alone), and the copies must not drift apart
or from the enums they list."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from nogil_toolkit.inspect.verdict import EvidenceKind, Verdict

SCHEMAS = ("check_env.schema.json", "wheel_report.schema.json")


def inspection_definition(name: str) -> dict:
    return json.loads(files("nogil_toolkit").joinpath(name).read_text())["$defs"]["inspection"]


@pytest.mark.parametrize("name", SCHEMAS)
def test_an_inspection_lists_every_verdict_and_evidence_kind(name: str) -> None:
    definition = inspection_definition(name)
    assert sorted(definition["properties"]["verdict"]["enum"]) == sorted(v.value for v in Verdict)
    kinds = definition["properties"]["evidence"]["items"]["properties"]["kind"]["enum"]
    assert sorted(kinds) == sorted(k.value for k in EvidenceKind)


def test_the_report_schemas_define_an_inspection_alike() -> None:
    first, second = (inspection_definition(name) for name in SCHEMAS)
    assert first == second
