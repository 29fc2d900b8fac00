"""What the meson-python and the scikit-build-core integrations must both do, run on each:
real builds through pip (build isolation, meson/CMake and their tools from the index) of the
``meson_spine`` and ``cmake_spine`` samples, on free-threaded CPython and on GIL CPython 3.12.
What only meson has stays in ``test_meson.py``."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildsys_support import exports_and_markers, installed_extension, pip_wheel, wheel_record
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.wheel.record import RECORD_NAME
from support import SAMPLES, import_strict, install, probe_import, run

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Backend:
    """One sample project and what its modules answer."""

    name: str
    sample: Path
    package: str
    declared: dict[str, GilDeclaration]
    third: str
    """The package's third declared module (``_multi`` and ``_single`` are in both samples)."""
    third_call: str
    """A call of it, printed by the free-threaded import test, and its output."""
    third_output: str
    gil_call: str
    """The same, printed after ``s.answer()`` by the GIL 3.12 test, and the words printed."""
    gil_words: tuple[str, ...]

    @property
    def built_fixture(self) -> str:
        return f"{self.name}_ft"


MESON = Backend("meson", SAMPLES / "meson_spine", "mspine",
                {"mspine._multi": GilDeclaration.NOT_USED, "mspine._fast": GilDeclaration.NOT_USED,
                 "mspine._single": GilDeclaration.USED},
                "mspine._fast", "mspine._fast.total([1, 2, 3])", "6", "f.total(range(4))", ("42", "6"))
CMAKE = Backend("cmake", SAMPLES / "cmake_spine", "cspine",
                {"cspine._multi": GilDeclaration.NOT_USED, "cspine._pyb": GilDeclaration.NOT_USED,
                 "cspine._single": GilDeclaration.USED},
                "cspine._pyb", "cspine._pyb.greet('cmake')", "hello cmake from pybind11", "f.greet('gil')",
                ("42", "hello", "gil", "from", "pybind11"))
BACKENDS = [pytest.param(MESON, id="meson"), pytest.param(CMAKE, id="cmake")]


def built(request: pytest.FixtureRequest, backend: Backend) -> tuple[Path, Path]:
    """The backend's sample built on the free-threaded interpreter (a session fixture)."""
    return request.getfixturevalue(backend.built_fixture)


@pytest.mark.freethreaded
@pytest.mark.parametrize("backend", BACKENDS)
def test_wheel_is_free_threaded_and_records_each_declaration(request: pytest.FixtureRequest,
                                                             backend: Backend) -> None:
    wheel, _ = built(request, backend)
    assert "-cp313-cp313t-" in wheel.name or "-cp314-cp314t-" in wheel.name, wheel.name
    record, listed = wheel_record(wheel)
    assert record["modules"] == {name: d.value for name, d in backend.declared.items()}
    assert record["thread_safe"] is True
    assert f"{RECORD_NAME},sha256=" in listed


@pytest.mark.freethreaded
@pytest.mark.parametrize("backend", BACKENDS)
def test_wheel_verify_passes(request: pytest.FixtureRequest, backend: Backend) -> None:
    result = run([sys.executable, "-m", "nogil_toolkit", "wheel", "verify", built(request, backend)[0]])
    assert result.stdout.startswith("ok "), result.stdout


@pytest.mark.freethreaded
@pytest.mark.parametrize("backend", BACKENDS)
def test_declared_modules_keep_the_gil_disabled_and_work(request: pytest.FixtureRequest, ft_venv: Path,
                                                         backend: Backend) -> None:
    built(request, backend)
    multi = f"{backend.package}._multi"
    code = (f"c = {multi}.Counter()\n"
            f"assert {multi}.same_def() and (c.bump(), c.bump()) == (1, 2)\n"
            f"print({backend.third_call})\n")
    assert import_strict(ft_venv, f"{multi}, {backend.third}", code).strip() == backend.third_output


@pytest.mark.freethreaded
@pytest.mark.parametrize("backend", BACKENDS)
def test_module_overridden_to_false_enables_the_gil(request: pytest.FixtureRequest, ft_venv: Path,
                                                    backend: Backend) -> None:
    built(request, backend)
    single = f"{backend.package}._single"
    probe = probe_import(ft_venv, single)
    assert probe.gil_enabled
    assert any(f"'{single}'" in w for w in probe.gil_warnings), probe.gil_warnings


@pytest.mark.freethreaded
@pytest.mark.parametrize("backend", BACKENDS)
def test_only_the_real_init_is_exported_and_the_marker_is_there(request: pytest.FixtureRequest, ft_venv: Path,
                                                                backend: Backend) -> None:
    built(request, backend)
    for module, declaration in backend.declared.items():
        exported, markers = exports_and_markers(installed_extension(ft_venv, module))
        assert {s for s in exported if "PyInit" in s} == {f"PyInit_{module.rpartition('.')[2]}"}, module
        assert not any("nogil_toolkit" in s for s in exported), module
        assert markers == [(module, declaration)], module


@pytest.mark.parametrize("backend", BACKENDS)
def test_gil_cpython_312_builds_and_imports(gil312_venv: Path, plugin_wheelhouse: Path, tmp_path: Path,
                                            backend: Backend) -> None:
    wheel, _ = pip_wheel(gil312_venv, backend.sample, tmp_path, plugin_wheelhouse)
    assert wheel is not None and "-cp312-cp312-" in wheel.name, wheel
    install(gil312_venv, wheel)
    out = run([gil312_venv, "-W", "error", "-c",
               f"import {backend.package}._multi as m, {backend.package}._single as s, {backend.third} as f\n"
               "c = m.Counter(); assert m.same_def() and (c.bump(), c.bump()) == (1, 2)\n"
               f"print(s.answer(), {backend.gil_call})"]).stdout
    assert tuple(out.split()) == backend.gil_words
    assert wheel_record(wheel)[0]["modules"] == {name: d.value for name, d in backend.declared.items()}
    run([sys.executable, "-m", "nogil_toolkit", "wheel", "verify", wheel])


@pytest.mark.parametrize("backend", BACKENDS)
def test_override_naming_no_built_module_fails_the_build(gil312_venv: Path, plugin_wheelhouse: Path,
                                                         tmp_path: Path, backend: Backend) -> None:
    project = tmp_path / backend.sample.name
    shutil.copytree(backend.sample, project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'"{backend.package}._gone" = false\n')
    wheel, output = pip_wheel(gil312_venv, project, tmp_path / "out", plugin_wheelhouse, check=False)
    assert wheel is None
    assert (f'tool.nogil.modules."{backend.package}._gone": names no extension module this build produces'
            in output), output
    assert ", ".join(sorted(backend.declared)) in output
    assert "Traceback" not in output
