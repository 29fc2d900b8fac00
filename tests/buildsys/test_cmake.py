"""scikit-build-core with nogil_declare() of the nogil-cmake distribution (found through its
cmake.module entry point): real builds through pip (build isolation, CMake, ninja and pybind11
from the index) on free-threaded CPython and on GIL CPython 3.12."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from buildsys_support import exports_and_markers, installed_extension, pip_wheel, wheel_record
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.wheel.record import RECORD_NAME
from support import SAMPLES, import_strict, install, probe_import, run

pytestmark = pytest.mark.slow

SAMPLE = SAMPLES / "cmake_spine"
DECLARED = {"cspine._multi": GilDeclaration.NOT_USED, "cspine._pyb": GilDeclaration.NOT_USED,
            "cspine._single": GilDeclaration.USED}


@pytest.mark.freethreaded
def test_wheel_is_free_threaded_and_records_each_declaration(cmake_ft: tuple[Path, Path]) -> None:
    wheel, _ = cmake_ft
    assert "-cp313-cp313t-" in wheel.name or "-cp314-cp314t-" in wheel.name, wheel.name
    record, listed = wheel_record(wheel)
    assert record["modules"] == {name: d.value for name, d in DECLARED.items()}
    assert record["thread_safe"] is True
    assert f"{RECORD_NAME},sha256=" in listed


@pytest.mark.freethreaded
def test_wheel_verify_passes(cmake_ft: tuple[Path, Path]) -> None:
    result = run([sys.executable, "-m", "nogil_toolkit", "wheel", "verify", cmake_ft[0]])
    assert result.stdout.startswith("ok "), result.stdout


@pytest.mark.freethreaded
@pytest.mark.parametrize("module", ["cspine._multi", "cspine._pyb"])
def test_declared_modules_keep_the_gil_disabled(cmake_ft: tuple[Path, Path], ft_venv: Path, module: str) -> None:
    import_strict(ft_venv, module)


@pytest.mark.freethreaded
def test_modules_work_and_multi_phase_keeps_its_def(cmake_ft: tuple[Path, Path], ft_venv: Path) -> None:
    code = ("c = cspine._multi.Counter()\n"
            "assert cspine._multi.same_def() and (c.bump(), c.bump()) == (1, 2)\n"
            "print(cspine._pyb.greet('cmake'))\n")
    assert import_strict(ft_venv, "cspine._multi, cspine._pyb", code).strip() == "hello cmake from pybind11"


@pytest.mark.freethreaded
def test_module_overridden_to_false_enables_the_gil(cmake_ft: tuple[Path, Path], ft_venv: Path) -> None:
    probe = probe_import(ft_venv, "cspine._single")
    assert probe.gil_enabled
    assert any("'cspine._single'" in w for w in probe.gil_warnings), probe.gil_warnings


@pytest.mark.freethreaded
@pytest.mark.parametrize("module", sorted(DECLARED))
def test_only_the_real_init_is_exported_and_the_marker_is_there(cmake_ft: tuple[Path, Path], ft_venv: Path,
                                                                module: str) -> None:
    exported, markers = exports_and_markers(installed_extension(ft_venv, module))
    assert {s for s in exported if "PyInit" in s} == {f"PyInit_{module.rpartition('.')[2]}"}
    assert not any("nogil_toolkit" in s for s in exported)
    assert markers == [(module, DECLARED[module])]


def test_gil_cpython_312_builds_and_imports(gil312_venv: Path, plugin_wheelhouse: Path, tmp_path: Path) -> None:
    wheel, _ = pip_wheel(gil312_venv, SAMPLE, tmp_path, plugin_wheelhouse)
    assert wheel is not None and "-cp312-cp312-" in wheel.name, wheel
    install(gil312_venv, wheel)
    out = run([gil312_venv, "-W", "error", "-c",
               "import cspine._multi as m, cspine._single as s, cspine._pyb as p\n"
               "c = m.Counter(); assert m.same_def() and (c.bump(), c.bump()) == (1, 2)\n"
               "print(s.answer(), p.greet('gil'))"]).stdout
    assert out.split() == ["42", "hello", "gil", "from", "pybind11"]
    assert wheel_record(wheel)[0]["modules"] == {name: d.value for name, d in DECLARED.items()}
    run([sys.executable, "-m", "nogil_toolkit", "wheel", "verify", wheel])


def test_override_naming_no_declared_module_fails_the_build(gil312_venv: Path, plugin_wheelhouse: Path,
                                                            tmp_path: Path) -> None:
    project = tmp_path / "cmake_spine"
    shutil.copytree(SAMPLE, project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '"cspine._gone" = false\n')
    wheel, output = pip_wheel(gil312_venv, project, tmp_path / "out", plugin_wheelhouse, check=False)
    assert wheel is None
    assert 'tool.nogil.modules."cspine._gone": names no extension module this build produces' in output, output
    assert "cspine._multi, cspine._pyb, cspine._single" in output
    assert "Traceback" not in output
