"""``nogil-toolkit declare --build-system``: real pyproject.toml files, compared byte for byte,
and a setup.py project that builds with the plugin afterwards."""

from __future__ import annotations

import copy
import os
import shutil
import stat
import sys
import zipfile
from pathlib import Path

import pytest
import tomlkit
from support import SAMPLES, build_wheel

from nogil_toolkit.__main__ import main
from nogil_toolkit.inspect import inspect_binary
from nogil_toolkit.inspect.verdict import Verdict

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path


def declare(project: Path, text: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, str]:
    """Write pyproject.toml, run ``declare --build-system ARGS``; code, new text, stdout, stderr."""
    path = project / "pyproject.toml"
    path.write_text(text)
    code = main(["declare", "--project", str(project), "--build-system", *args])
    captured = capsys.readouterr()
    return code, path.read_text(), captured.out, captured.err


SETUPTOOLS = """\
# demo
[build-system]
requires = [
    "setuptools>=77",  # PEP 639 license
    "cython>=3.1",
]
build-backend = "setuptools.build_meta"

[project]
name = "demo"
"""


def test_setuptools_gets_the_plugin_in_its_own_layout(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, out, err = declare(project, SETUPTOOLS, "--thread-safe", "true", capsys=capsys)
    assert code == 0 and out == ""
    assert text == SETUPTOOLS.replace('    "cython>=3.1",\n', '    "cython>=3.1",\n    "nogil-setuptools",\n') + (
        "\n[tool.nogil]\nthread-safe = true\n")
    assert err.splitlines() == ["set tool.nogil.thread-safe = true",
                                'added "nogil-setuptools" to build-system.requires']


def test_a_second_run_changes_nothing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _, _ = declare(project, SETUPTOOLS, "--thread-safe", "true", capsys=capsys)
    code, second, out, err = declare(project, first, "--thread-safe", "true", capsys=capsys)
    assert code == 0 and second == first and out == ""
    assert "no change needed, nothing written" in err


@pytest.mark.parametrize("spelling", ["nogil-setuptools", "Nogil_Setuptools>=0.1", "nogil.setuptools ; python_version >= '3.9'",
                                      "NOGIL-SETUPTOOLS[extra]==0.1.0"])
def test_a_requirement_in_any_spelling_is_left_alone(spelling: str, project: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    original = f'[build-system]\nrequires = ["setuptools", "{spelling}"]\nbuild-backend = "setuptools.build_meta"\n'
    code, text, _, err = declare(project, original, capsys=capsys)
    assert code == 0 and text == original
    assert "no change needed" in err


def test_no_build_backend_means_setuptools_legacy(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _, _ = declare(project, '[build-system]\nrequires = ["setuptools", "wheel"]\n', capsys=capsys)
    assert code == 0
    assert text == '[build-system]\nrequires = ["setuptools", "wheel", "nogil-setuptools"]\n'


LEGACY = """\
# A setup.py project: pyproject.toml only configures tools.

# Formatting
[tool.black]
line-length = 100
"""

LEGACY_INTEGRATED = """\
# A setup.py project: pyproject.toml only configures tools.

[build-system]
requires = ["setuptools>=40.8.0", "nogil-setuptools"]
build-backend = "setuptools.build_meta:__legacy__"

# Formatting
[tool.black]
line-length = 100

[tool.nogil]
thread-safe = true
"""


def test_a_project_without_build_system_gets_pips_assumption(project: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _, err = declare(project, LEGACY, "--thread-safe", "true", capsys=capsys)
    assert code == 0
    assert text == LEGACY_INTEGRATED
    assert 'added [build-system] with requires = ["setuptools>=40.8.0", "nogil-setuptools"]' in err


def test_top_level_dotted_keys_stay_top_level(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _, _ = declare(project, 'project.name = "demo"\n', capsys=capsys)
    assert code == 0
    assert text == ('project.name = "demo"\n\n[build-system]\nrequires = ["setuptools>=40.8.0", "nogil-setuptools"]\n'
                    'build-backend = "setuptools.build_meta:__legacy__"\n')


def test_an_empty_file_gets_the_table(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _, _ = declare(project, "", capsys=capsys)
    assert code == 0
    assert text == ('[build-system]\nrequires = ["setuptools>=40.8.0", "nogil-setuptools"]\n'
                    'build-backend = "setuptools.build_meta:__legacy__"\n')


MESON = """\
[build-system]
build-backend = 'mesonpy'   # meson-python
requires = ['meson-python>=0.16', 'ninja']
"""


def test_meson_python_switches_to_the_wrapping_backend(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _, err = declare(project, MESON, capsys=capsys)
    assert code == 0
    assert text == ("[build-system]\nbuild-backend = \"nogil_meson\"   # meson-python\n"
                    "requires = ['meson-python>=0.16', 'ninja', \"nogil-meson\"]\n")
    assert 'set build-system.build-backend = "nogil_meson" (was "mesonpy": nogil-meson wraps it)' in err
    template = (Path(__file__).resolve().parents[2] / "templates" / "nogil_meson_setup.build").read_text()
    assert "to do: meson.build must still apply the declaration" in err
    printed = [line.strip() for line in err.splitlines()]
    assert all(line.strip() in printed for line in template.splitlines())
    # Done already in meson.build: nothing more to say, and nothing more to change.
    (project / "meson.build").write_text("run_command(py, '-m', 'nogil_toolkit', 'shim')\n")
    code, again, _, err = declare(project, text, capsys=capsys)
    assert code == 0 and again == text and "to do" not in err


def test_scikit_build_core_gets_the_cmake_module(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = '[build-system]\nrequires = ["scikit-build-core>=0.10"]\nbuild-backend = "scikit_build_core.build"\n'
    code, text, _, err = declare(project, original, capsys=capsys)
    assert code == 0
    assert text == original.replace('>=0.10"]', '>=0.10", "nogil-cmake"]')
    assert "include(NogilToolkit)" in err and "nogil_declare(<target> <dotted.module.name>)" in err
    (project / "CMakeLists.txt").write_text("include(NogilToolkit)\nnogil_declare(_x pkg._x)\n")
    _, _, _, err = declare(project, text, capsys=capsys)
    assert "include(NogilToolkit)" not in err


def test_an_unknown_backend_is_left_alone_with_advice(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = '[build-system]\nrequires = ["maturin>=1.7"]\nbuild-backend = "maturin"\n'
    code, text, _, err = declare(project, original, "--thread-safe", "true", capsys=capsys)
    assert code == 0
    assert text == original + "\n[tool.nogil]\nthread-safe = true\n"
    assert 'warning: nogil-toolkit has no build integration for build-backend "maturin"' in err
    assert "#[pymodule(gil_used = false)]" in err


def test_an_in_tree_backend_wrapping_setuptools_gets_the_plugin(project: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """frozenlist 1.4 and yarl 1.9 build through a backend of their own that wraps
    setuptools.build_meta; the plugin works there once it is in the build requirements."""
    original = ('[build-system]\nrequires = ["setuptools >= 47", "expandvars"]\n'
                'build-backend = "pep517_backend.hooks"\nbackend-path = ["packaging"]\n')
    code, text, _, err = declare(project, original, capsys=capsys)
    assert code == 0
    assert text == original.replace('"expandvars"]', '"expandvars", "nogil-setuptools"]')
    assert err.splitlines() == ['added "nogil-setuptools" to build-system.requires',
                                'to do: build-backend "pep517_backend.hooks" is the project\'s own (backend-path); as '
                                "build-system.requires names setuptools, it was taken to build through setuptools, "
                                "where nogil-setuptools declares. Check a built wheel with `nogil-toolkit wheel verify`."]
    in_tree_other = original.replace("setuptools >= 47", "flit_core")
    code, text, _, err = declare(project, in_tree_other, capsys=capsys)
    assert (code, text) == (0, in_tree_other)
    assert 'no build integration for build-backend "pep517_backend.hooks"' in err


def test_dry_run_shows_every_change_and_writes_nothing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, out, err = declare(project, LEGACY, "--thread-safe", "true", "--dry-run", capsys=capsys)
    assert code == 0 and text == LEGACY
    added = [line[1:] for line in out.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert [line for line in added if line] == [
        "[build-system]", 'requires = ["setuptools>=40.8.0", "nogil-setuptools"]',
        'build-backend = "setuptools.build_meta:__legacy__"', "[tool.nogil]", "thread-safe = true"]
    assert len(added) == len(LEGACY_INTEGRATED.splitlines()) - len(LEGACY.splitlines())
    assert not [line for line in out.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert "dry run: nothing written" in err


@pytest.mark.parametrize("original, where", [
    ('[build-system]\nrequires = "setuptools"\n', ":2:"),
    ("build-system = 1\n", ":1:"),
    ('[build-system]\nbuild-backend = "setuptools.build_meta"\n', ":1:"),
    ('[build-system]\nrequires = ["setuptools"]\nbuild-backend = 1\n', ":3:"),
])
def test_a_malformed_build_system_is_refused(original: str, where: str, project: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _, err = declare(project, original, "--thread-safe", "true", capsys=capsys)
    assert code == 1 and text == original
    (line,) = err.splitlines()
    assert line.startswith("error: build-system") and f"pyproject.toml{where}" in line


def test_a_setup_py_project_gets_a_pyproject(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    assert main(["declare", "--project", str(project), "--thread-safe", "true"]) == 2
    err = capsys.readouterr().err
    assert "no pyproject.toml found" in err and "--build-system creates pyproject.toml" in err
    assert main(["declare", "--project", str(project), "--thread-safe", "true", "--build-system", "--dry-run"]) == 0
    assert not (project / "pyproject.toml").exists()
    previous = os.umask(0o027)
    try:
        assert main(["declare", "--project", str(project), "--thread-safe", "true", "--build-system"]) == 0
    finally:
        os.umask(previous)
    created = project / "pyproject.toml"
    assert created.read_text() == ('[build-system]\nrequires = ["setuptools>=40.8.0", "nogil-setuptools"]\n'
                                   'build-backend = "setuptools.build_meta:__legacy__"\n\n[tool.nogil]\n'
                                   "thread-safe = true\n")
    assert stat.S_IMODE(created.stat().st_mode) == 0o640
    assert created.stat().st_uid == os.geteuid()
    assert sorted(p.name for p in project.iterdir()) == ["pyproject.toml", "setup.py"]  # no temporary file left


def test_without_setup_py_a_missing_pyproject_stays_an_error(project: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["declare", "--project", str(project), "--build-system"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: no pyproject.toml found ({project / 'pyproject.toml'})"]
    assert list(project.iterdir()) == []


SETUP_PY = """\
from setuptools import Extension, setup

setup(name="legacy-demo", version="1.0", packages=["legacy_demo"],
      ext_modules=[Extension("legacy_demo._ext", ["legacy_demo/_ext.c"])])
"""

EXT_C = """\
#include <Python.h>
static struct PyModuleDef ext_def = {PyModuleDef_HEAD_INIT, "legacy_demo._ext", NULL, 0, NULL};
PyMODINIT_FUNC PyInit__ext(void) { return PyModuleDef_Init(&ext_def); }
"""


@pytest.mark.slow
def test_a_setup_py_project_builds_declared_after_one_command(tmp_path: Path, wheelhouse: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "legacy-demo"
    (project / "legacy_demo").mkdir(parents=True)
    (project / "setup.py").write_text(SETUP_PY)
    (project / "legacy_demo" / "__init__.py").write_text("")
    (project / "legacy_demo" / "_ext.c").write_text(EXT_C)
    assert main(["declare", "--project", str(project), "--thread-safe", "true", "--build-system"]) == 0
    capsys.readouterr()
    wheel = build_wheel(Path(sys.executable), project, tmp_path / "out", wheelhouse)
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [name for name in archive.namelist() if name.startswith("legacy_demo/_ext.")]
        archive.extract(member, tmp_path / "unpacked")
    assert inspect_binary(tmp_path / "unpacked" / member, "legacy_demo._ext").verdict is Verdict.NOT_USED


def test_crlf_files_stay_crlf(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "pyproject.toml"
    path.write_bytes(LEGACY.replace("\n", "\r\n").encode())
    assert main(["declare", "--project", str(project), "--build-system", "--thread-safe", "true"]) == 0
    assert path.read_bytes() == LEGACY_INTEGRATED.replace("\n", "\r\n").encode()


@pytest.mark.parametrize("sample, plugin, backend_before", [
    ("meson_spine", "nogil-meson", "mesonpy"),
    ("cmake_spine", "nogil-cmake", "scikit_build_core.build"),
])
def test_the_result_is_what_the_built_samples_use(sample: str, plugin: str, backend_before: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Undo the integration of a sample the buildsys tests build, and let --build-system redo it."""
    project = tmp_path / sample
    shutil.copytree(SAMPLES / sample, project)
    integrated = tomllib.loads((project / "pyproject.toml").read_text())
    bare = copy.deepcopy(integrated)
    bare["build-system"]["requires"].remove(plugin)
    bare["build-system"]["build-backend"] = backend_before
    (project / "pyproject.toml").write_text(tomlkit.dumps(bare))
    assert main(["declare", "--project", str(project), "--build-system"]) == 0
    redone = tomllib.loads((project / "pyproject.toml").read_text())
    assert redone["build-system"]["build-backend"] == integrated["build-system"]["build-backend"]
    assert sorted(redone["build-system"]["requires"]) == sorted(integrated["build-system"]["requires"])
    assert redone == {**integrated, "build-system": redone["build-system"]}
    assert "to do" not in capsys.readouterr().err  # their meson.build / CMakeLists.txt already apply it
