"""``audit_sources``: what a build plugin calls for one extension's sources."""

from __future__ import annotations

from pathlib import Path

from nogil_toolkit.audit import audit_sources
from nogil_toolkit.config import load_config

RISKY = "PyObject *f(PyObject *l) {\n    return PyList_GetItem(l, 0);\n}\nstatic PyObject *cache;\n"


def test_findings_of_one_extension_under_the_project_policy(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.nogil]\nthread-safe = true\n[tool.nogil.audit]\n'
                                             'ignore = ["mutable-global-state"]\nexclude = ["vendor"]\n')
    (tmp_path / "src").mkdir()
    (tmp_path / "vendor").mkdir()
    for path in (tmp_path / "src" / "a.c", tmp_path / "vendor" / "v.c"):
        path.write_text(RISKY)
    config = load_config(tmp_path)
    findings = audit_sources([tmp_path / "src" / "a.c", tmp_path / "vendor" / "v.c", tmp_path / "missing.c"], config)
    assert [(Path(f.path).name, f.line, f.rule.id) for f in findings] == [("a.c", 2, "borrowed-list-item")]
    # Without a configuration every rule applies and nothing is excluded.
    assert sorted((Path(f.path).name, f.rule.id) for f in audit_sources([tmp_path / "vendor" / "v.c"])) == [
        ("v.c", "borrowed-list-item"), ("v.c", "mutable-global-state")]
