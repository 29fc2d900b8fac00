"""The audit in real meson-python and scikit-build-core builds (isolated, through pip): one
build each, of the meson and CMake samples with a borrowed-reference call added to a module
declared not-used and to the one declared used."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from build_integration_support import audited_project, line_of, pep517_build
from support import SAMPLES, build_plugins, own_wheels

pytestmark = [pytest.mark.slow, pytest.mark.freethreaded]

RISKY_C = "\nPyObject *\n{name}_first(PyObject *list)\n{{\n    return PyList_GetItem(list, 0);\n}}\n"
RISKY_PYX = "\n\nfrom cpython.list cimport PyList_GetItem\n\ndef first(list values):\n" \
            "    return <object>PyList_GetItem(values, 0)\n"


@pytest.fixture(scope="module")
def build_plugin_wheelhouse(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toolkit's and the setuptools plugin's wheels, with nogil-meson and nogil-cmake."""
    return own_wheels(build_plugins(), wheelhouse)


def audit_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines()
            if re.match(r"\s*(\S+:\d+:\d+: warning: [a-z-]+: |nogil: audited |error: nogil: )", line)]


def test_meson_build_audits_declared_modules_and_fails_in_error_mode(ft_venv: Path, build_plugin_wheelhouse: Path,
                                                                     tmp_path: Path) -> None:
    project = audited_project(tmp_path, 'build = "error"\n', sample=SAMPLES / "meson_spine", edit={
        "src/mspine/_multi.c": ("", RISKY_C.format(name="multi")),
        "src/mspine/_single.c": ("", RISKY_C.format(name="single")),  # declared used: not audited
        "src/mspine/_fast.pyx": ("", RISKY_PYX)})
    build = pep517_build(ft_venv, project, build_plugin_wheelhouse)
    assert build.returncode != 0 and build.wheel is None, build.output
    multi = line_of(project / "src/mspine/_multi.c", "PyList_GetItem")
    fast = line_of(project / "src/mspine/_fast.pyx", "<object>PyList_GetItem")
    lines = audit_lines(build.output)
    assert [line.split(" PyList_GetItem ")[0].split(" in ")[0] for line in lines[:-1]] == [
        f"src/mspine/_multi.c:{multi}:12: warning: borrowed-list-item:",
        "nogil: audited 1 file from the sources of mspine._multi",
        f"src/mspine/_fast.pyx:{fast}:20: warning: borrowed-list-item:",
        "nogil: audited 1 file from the sources of mspine._fast"], lines
    assert lines[-1].startswith('error: nogil: 2 audit findings in mspine._multi, mspine._fast, and '
                                '[tool.nogil.audit] build = "error" fails the build'), lines
    assert lines[-1].endswith(f"(pyproject.toml:{line_of(project / 'pyproject.toml', 'build = ')}:1)"), lines
    assert "_single.c:" not in build.output
    assert not list(project.glob(".mesonpy-*")), "the build directory kept for the audit was left behind"


def test_cmake_build_audits_declared_targets_before_linking(ft_venv: Path, build_plugin_wheelhouse: Path,
                                                            tmp_path: Path) -> None:
    project = audited_project(tmp_path, sample=SAMPLES / "cmake_spine", edit={
        "ext/_multi.c": ("", RISKY_C.format(name="multi")),
        "ext/_single.c": ("", RISKY_C.format(name="single"))})  # declared used: not audited
    build = pep517_build(ft_venv, project, build_plugin_wheelhouse)
    assert build.returncode == 0 and build.wheel is not None, build.output
    multi = line_of(project / "ext/_multi.c", "PyList_GetItem")
    lines = sorted(audit_lines(build.output), key=lambda line: "_pyb" in line)  # ninja may link either first
    assert [line.split(" PyList_GetItem ")[0].split(" in ")[0] for line in lines] == [
        f"ext/_multi.c:{multi}:12: warning: borrowed-list-item:",
        "nogil: audited 1 file from the sources of cspine._multi",
        "nogil: audited 1 file from the sources of cspine._pyb"], lines
    assert lines[1].endswith(": 1 finding (1 warning) in 1 file") and lines[2].endswith(": no findings"), lines
    assert "_single.c:" not in build.output
