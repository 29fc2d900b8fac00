"""meson-python with the setup block of templates/nogil_meson_setup.build and the nogil-meson
backend: real builds through pip (build isolation, meson and Cython from the index) on
free-threaded CPython and on GIL CPython 3.12."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from buildsys_support import exports_and_markers, installed_extension, pip_wheel, wheel_record
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.wheel.record import RECORD_NAME
from support import REPO, SAMPLES, import_strict, install, probe_import, run

pytestmark = pytest.mark.slow

SAMPLE = SAMPLES / "meson_spine"
DECLARED = {"mspine._multi": GilDeclaration.NOT_USED, "mspine._fast": GilDeclaration.NOT_USED,
            "mspine._single": GilDeclaration.USED}


@pytest.mark.freethreaded
def test_wheel_is_free_threaded_and_records_each_declaration(meson_ft: tuple[Path, Path]) -> None:
    wheel, _ = meson_ft
    assert "-cp313-cp313t-" in wheel.name or "-cp314-cp314t-" in wheel.name, wheel.name
    record, listed = wheel_record(wheel)
    assert record["modules"] == {name: d.value for name, d in DECLARED.items()}
    assert record["thread_safe"] is True
    assert f"{RECORD_NAME},sha256=" in listed


@pytest.mark.freethreaded
def test_wheel_verify_passes(meson_ft: tuple[Path, Path]) -> None:
    result = run([sys.executable, "-m", "nogil_toolkit", "wheel", "verify", meson_ft[0]])
    assert result.stdout.startswith("ok "), result.stdout


@pytest.mark.freethreaded
@pytest.mark.parametrize("module", ["mspine._multi", "mspine._fast"])
def test_declared_modules_keep_the_gil_disabled(meson_ft: tuple[Path, Path], ft_venv: Path, module: str) -> None:
    import_strict(ft_venv, module)


@pytest.mark.freethreaded
def test_modules_work_and_multi_phase_keeps_its_def(meson_ft: tuple[Path, Path], ft_venv: Path) -> None:
    code = ("c = mspine._multi.Counter()\n"
            "assert mspine._multi.same_def() and (c.bump(), c.bump()) == (1, 2)\n"
            "print(mspine._fast.total([1, 2, 3]))\n")
    assert import_strict(ft_venv, "mspine._multi, mspine._fast", code).strip() == "6"


@pytest.mark.freethreaded
def test_module_overridden_to_false_enables_the_gil(meson_ft: tuple[Path, Path], ft_venv: Path) -> None:
    probe = probe_import(ft_venv, "mspine._single")
    assert probe.gil_enabled
    assert any("'mspine._single'" in w for w in probe.gil_warnings), probe.gil_warnings


@pytest.mark.freethreaded
@pytest.mark.parametrize("module", sorted(DECLARED))
def test_only_the_real_init_is_exported_and_the_marker_is_there(meson_ft: tuple[Path, Path], ft_venv: Path,
                                                                module: str) -> None:
    exported, markers = exports_and_markers(installed_extension(ft_venv, module))
    assert {s for s in exported if "PyInit" in s} == {f"PyInit_{module.rpartition('.')[2]}"}
    assert not any("nogil_toolkit" in s for s in exported)
    assert markers == [(module, DECLARED[module])]


def test_the_sample_uses_the_shipped_setup_block_verbatim() -> None:
    """The README and templates/ show the block the tests build with, not a lookalike."""
    block = (REPO / "templates" / "nogil_meson_setup.build").read_text().splitlines()
    sample = (SAMPLE / "meson.build").read_text().splitlines()
    kept = [line for line in block if not line.startswith("nogil_modules = ")]
    start = sample.index(kept[0])
    assert [line for line in sample[start:start + len(block)] if not line.startswith("nogil_modules = ")] == kept


def test_gil_cpython_312_builds_and_imports(gil312_venv: Path, plugin_wheelhouse: Path, tmp_path: Path) -> None:
    wheel, _ = pip_wheel(gil312_venv, SAMPLE, tmp_path, plugin_wheelhouse)
    assert wheel is not None and "-cp312-cp312-" in wheel.name, wheel
    install(gil312_venv, wheel)
    out = run([gil312_venv, "-W", "error", "-c",
               "import mspine._multi as m, mspine._single as s, mspine._fast as f\n"
               "c = m.Counter(); assert m.same_def() and (c.bump(), c.bump()) == (1, 2)\n"
               "print(s.answer(), f.total(range(4)))"]).stdout
    assert out.split() == ["42", "6"]
    assert wheel_record(wheel)[0]["modules"] == {name: d.value for name, d in DECLARED.items()}
    run([sys.executable, "-m", "nogil_toolkit", "wheel", "verify", wheel])


def test_override_naming_no_built_module_fails_the_build(gil312_venv: Path, plugin_wheelhouse: Path,
                                                         tmp_path: Path) -> None:
    project = tmp_path / "meson_spine"
    shutil.copytree(SAMPLE, project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '"mspine._gone" = false\n')
    wheel, output = pip_wheel(gil312_venv, project, tmp_path / "out", plugin_wheelhouse, check=False)
    assert wheel is None
    assert 'tool.nogil.modules."mspine._gone": names no extension module this build produces' in output, output
    assert "mspine._fast, mspine._multi, mspine._single" in output
    assert "Traceback" not in output


def test_the_readme_shows_the_shipped_setup_block() -> None:
    block = [line for line in (REPO / "templates" / "nogil_meson_setup.build").read_text().splitlines()
             if line and not line.startswith(("#", "nogil_modules = ", "nogil_export_hooks = "))]
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### meson-python"):readme.index("### CMake / scikit-build-core")]
    lines = section.splitlines()
    start = lines.index(block[0])
    assert lines[start:start + len(block)] == block


def test_a_declared_module_built_without_its_dependency_fails_the_build(gil312_venv: Path, plugin_wheelhouse: Path,
                                                                        tmp_path: Path) -> None:
    project = tmp_path / "meson_spine"
    shutil.copytree(SAMPLE, project)
    build = project / "meson.build"
    text = build.read_text()
    build.write_text(text.replace("\n                    dependencies: nogil['mspine._multi'])", ")", 1))
    assert build.read_text() != text
    wheel, output = pip_wheel(gil312_venv, project, tmp_path / "out", plugin_wheelhouse, check=False)
    assert wheel is None
    assert ("[tool.nogil] declares mspine._multi not-used, but its binary was built without the shim: give its "
            "extension_module() 'dependencies: nogil['mspine._multi']'") in output, output
    assert "Traceback" not in output


@pytest.mark.freethreaded
def test_limited_api_on_free_threaded_is_refused_as_setuptools_refuses_it(ft_venv: Path, plugin_wheelhouse: Path,
                                                                          tmp_path: Path) -> None:
    project = tmp_path / "meson_spine"
    shutil.copytree(SAMPLE, project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.meson-python]\nlimited-api = true\n")
    wheel, output = pip_wheel(ft_venv, project, tmp_path / "out", plugin_wheelhouse, check=False)
    assert wheel is None
    assert "[tool.meson-python] limited-api = true builds every extension with Py_LIMITED_API " \
           "(the stable ABI, abi3), which free-threaded CPython 3.13 can neither compile nor load" in output, output
    assert "abi3t, PEP 803" in output and "-Dpython.allow_limited_api=false" in output
    assert "Traceback" not in output
