"""What a package author sees when the build cannot honour ``[tool.nogil]``: the real pip
output of a failed PEP 517 build, with the file, line and what to change."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from support import SAMPLES, clean_env, make_venv, run


@pytest.fixture(scope="module")
def venv311(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_venv(sys.executable, tmp_path_factory.mktemp("errors") / "venv")


def failing_build(python: Path, project: Path, wheelhouse: Path) -> str:
    result = run([python, "-m", "pip", "wheel", "--no-deps", "--find-links", wheelhouse, "-w", project / "dist",
                  project], env=clean_env(), check=False)
    assert result.returncode != 0, result.stdout
    assert not list((project / "dist").glob("*.whl")), "a failed build left a wheel behind"
    return result.stdout + result.stderr


def plain_project(tmp_path: Path, table: str, macros: str = "") -> Path:
    project = tmp_path / "plain"
    shutil.copytree(SAMPLES / "plain", project)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    if macros:
        text = text.replace('sources = ["src/plain/_ext.c"]', f'sources = ["src/plain/_ext.c"], {macros}')
    pyproject.write_text(text + "\n" + table)
    return project


def line_of(project: Path, needle: str) -> int:
    lines = (project / "pyproject.toml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def test_invalid_value_names_file_line_key_and_expectation(venv311: Path, wheelhouse: Path, tmp_path: Path) -> None:
    project = plain_project(tmp_path, '[tool.nogil]\nthread-safe = "yes"\n')
    output = failing_build(venv311, project, wheelhouse)
    line = line_of(project, 'thread-safe = "yes"')
    assert f'tool.nogil.thread-safe: expected a boolean (true or false), got string "yes" (pyproject.toml:{line}:1)' \
        in output


def test_unknown_key_suggests_the_known_one(venv311: Path, wheelhouse: Path, tmp_path: Path) -> None:
    project = plain_project(tmp_path, "[tool.nogil]\nthreadsafe = true\n")
    output = failing_build(venv311, project, wheelhouse)
    assert "tool.nogil.threadsafe: unknown key (did you mean 'thread-safe'?)" in output
    assert f"pyproject.toml:{line_of(project, 'threadsafe')}:1)" in output


def test_override_naming_no_built_module_fails_the_build(venv311: Path, wheelhouse: Path, tmp_path: Path) -> None:
    project = plain_project(tmp_path, '[tool.nogil]\nthread-safe = true\n[tool.nogil.modules]\n"plain._extt" = false\n')
    output = failing_build(venv311, project, wheelhouse)
    assert ('tool.nogil.modules."plain._extt": names no extension module this build produces '
            f'(it builds: plain._ext) (pyproject.toml:{line_of(project, "plain._extt")}:1)') in output


@pytest.mark.freethreaded
def test_limited_api_on_free_threaded_is_refused_with_an_explanation(ft_venv: Path, wheelhouse: Path,
                                                                     tmp_path: Path) -> None:
    project = plain_project(tmp_path, "[tool.nogil]\nthread-safe = true\n",
                            macros='define-macros = [["Py_LIMITED_API", "0x03090000"]]')
    output = failing_build(ft_venv, project, wheelhouse)
    assert "extension 'plain._ext' defines Py_LIMITED_API (the stable ABI, abi3)" in output
    assert "abi3t, PEP 803" in output
    assert "#error" not in output, "the build reached the compiler instead of explaining"
