"""``nogil-toolkit audit --build MODULE``: the build step CMake's nogil_declare() runs, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from nogil_toolkit.main_audit import main

SOURCE = '#include "helper.h"\nPyObject *f(PyObject *l) { return PyList_GetItem(l, 0); }\n'
HEADER = "PyObject *g(PyObject *w) { return PyWeakref_GetObject(w); }\n"


def project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f'[tool.nogil.modules]\n"pkg.safe" = true\n"pkg.old" = false\n{table}')
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "m.c").write_text(SOURCE)
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "helper.h").write_text(HEADER)
    return tmp_path


def build_step(capsys: pytest.CaptureFixture[str], root: Path, module: str) -> tuple[int, list[str]]:
    code = main(["--project", str(root), "--build", module, "--sources-dir", str(root / "ext"),
                 f"-I{root / 'include'}", "m.c", "CMakeFiles/x.dir/shim.c.o"])
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err.splitlines()


def test_warn_prints_the_findings_with_included_headers_and_exits_0(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project(tmp_path, "")
    monkeypatch.chdir(root)
    code, lines = build_step(capsys, root, "pkg.safe")
    assert code == 0
    assert [line.split(": ")[0:3] for line in lines[:2]] == [["ext/m.c:2:35", "warning", "borrowed-list-item"],
                                                             ["include/helper.h:1:35", "warning", "borrowed-weakref"]]
    assert lines[2].startswith("nogil: audited 2 files from the sources of pkg.safe in ") and len(lines) == 3


def test_error_mode_exits_1_after_one_error_line(tmp_path: Path, capsys, monkeypatch) -> None:
    root = project(tmp_path, '[tool.nogil.audit]\nbuild = "error"\n')
    monkeypatch.chdir(root)
    code, lines = build_step(capsys, root, "pkg.safe")
    assert code == 1 and len(lines) == 4
    assert lines[3].startswith("error: nogil: 2 audit findings in pkg.safe, and [tool.nogil.audit] build = \"error\"")
    assert lines[3].endswith(f"({root / 'pyproject.toml'}:5:1)")


@pytest.mark.parametrize(("table", "module"), [('[tool.nogil.audit]\nbuild = "off"\n', "pkg.safe"), ("", "pkg.old"),
                                               ("", "pkg.unnamed")])
def test_off_used_and_undeclared_modules_print_nothing(tmp_path: Path, capsys, table: str, module: str) -> None:
    root = project(tmp_path, table)
    assert build_step(capsys, root, module) == (0, [])


def test_an_ambiguous_declaration_is_a_configuration_error(tmp_path: Path, capsys) -> None:
    root = project(tmp_path, "")
    (root / "pyproject.toml").write_text('[tool.nogil.modules]\n"pkg.s*" = true\n"*.safe" = false\n')
    code, lines = build_step(capsys, root, "pkg.safe")
    assert code == 2 and len(lines) == 1 and lines[0].startswith('error: tool.nogil.modules."pkg.s*": patterns ')
