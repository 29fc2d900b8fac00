"""The audit in real setuptools builds with the plugin: a module declared ``not-used`` gets
its sources (and the project headers they include) audited before compiling, findings printed
as compiler warnings; ``build = "error"`` fails the build with one error; ``off`` is silent;
modules declared ``used`` or left undeclared are never audited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from build_integration_support import Build, audited_project, line_of, pep517_build, plugin_venv
from support import require_gil_python

RISKY = "src/audited/risky.c"
HEADER = "src/audited/helpers.h"


@pytest.fixture(scope="module")
def ft_plugin_venv(ft_python: str, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return plugin_venv(ft_python, tmp_path_factory.mktemp("audit-ft"), wheelhouse)


@pytest.fixture(scope="module")
def gil_plugin_venv(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return plugin_venv(require_gil_python(12), tmp_path_factory.mktemp("audit-gil"), wheelhouse)


def expected_warnings(project: Path) -> list[str]:
    return [f"{RISKY}:{line_of(project / RISKY, 'PyList_GetItem')}:22: warning: borrowed-list-item: PyList_GetItem ",
            f"{HEADER}:{line_of(project / HEADER, 'PyDict_GetItem')}:12: warning: borrowed-dict-item: PyDict_GetItem "]


def audit_lines(output: str) -> list[str]:
    """The lines the audit printed (pip indents the backend's output)."""
    return [line.strip() for line in output.splitlines()
            if re.match(r"\s*(src/\S+:\d+:\d+: warning: [a-z-]+: |nogil: audited |error: nogil: )", line)]


def build_with_warnings(venv: Path, tmp_path: Path) -> tuple[Build, list[str]]:
    """The audited sample built in ``venv``, which succeeds, and its audit lines, which start
    with the expected warnings."""
    project = audited_project(tmp_path)
    build = pep517_build(venv, project)
    assert build.returncode == 0 and build.wheel is not None, build.output
    lines = audit_lines(build.output)
    assert [line[:len(w)] for line, w in zip(lines, expected_warnings(project))] == expected_warnings(project), lines
    return build, lines


@pytest.mark.freethreaded
def test_declared_module_is_audited_and_warned_about(ft_plugin_venv: Path, tmp_path: Path) -> None:
    build, lines = build_with_warnings(ft_plugin_venv, tmp_path)
    assert "(instead: PyList_GetItemRef" in lines[0]
    # One summary for the one audited module; legacy.c (declared used) and other.c (undeclared)
    # hold the same call and are not audited.
    assert lines[2:] == [lines[2]] and lines[2].startswith(
        "nogil: audited 2 files from the sources of audited._risky in "), lines
    assert lines[2].endswith(": 2 findings (2 warnings) in 2 files")
    assert "legacy.c:" not in build.output and "other.c:" not in build.output


def test_gil_build_prints_the_same_warnings(gil_plugin_venv: Path, tmp_path: Path) -> None:
    _, lines = build_with_warnings(gil_plugin_venv, tmp_path)
    assert len(lines) == 3


@pytest.mark.freethreaded
def test_error_mode_prints_the_findings_then_fails_with_one_error(ft_plugin_venv: Path, tmp_path: Path) -> None:
    project = audited_project(tmp_path, 'build = "error"\n')
    build = pep517_build(ft_plugin_venv, project)
    assert build.returncode != 0 and build.wheel is None, build.output
    lines = audit_lines(build.output)
    assert len(lines) == 4, lines
    assert lines[3] == (
        'error: nogil: 2 audit findings in audited._risky, and [tool.nogil.audit] build = "error" fails the '
        "build on findings (fix them, suppress a line with '// nogil-audit: ignore[rule]', or set build = \"warn\") "
        f"(pyproject.toml:{line_of(project / 'pyproject.toml', 'build = ')}:1)")
    assert "gcc" not in build.output and "Traceback" not in build.output, "the build compiled, or crashed"


@pytest.mark.freethreaded
def test_off_audits_nothing(ft_plugin_venv: Path, tmp_path: Path) -> None:
    build = pep517_build(ft_plugin_venv, audited_project(tmp_path, 'build = "off"\n'))
    assert build.returncode == 0 and build.wheel is not None, build.output
    assert audit_lines(build.output) == [] and "nogil: audited" not in build.output


@pytest.mark.freethreaded
def test_suppression_comments_and_the_ignore_list_apply(ft_plugin_venv: Path, tmp_path: Path) -> None:
    project = audited_project(tmp_path, 'build = "error"\nignore = ["borrowed-dict-item"]\n', edit={
        RISKY: ("PyList_GetItem(list, 0);", "PyList_GetItem(list, 0);  // nogil-audit: ignore[borrowed-list-item]")})
    build = pep517_build(ft_plugin_venv, project)
    assert build.returncode == 0 and build.wheel is not None, build.output
    (summary,) = audit_lines(build.output)
    assert summary.endswith(": no findings; 1 suppressed"), summary


@pytest.mark.freethreaded
def test_excluded_paths_are_not_audited_at_build_time(ft_plugin_venv: Path, tmp_path: Path) -> None:
    build = pep517_build(ft_plugin_venv, audited_project(tmp_path, 'build = "error"\nexclude = ["src/audited/*.h"]\n'))
    assert build.returncode != 0, build.output
    lines = audit_lines(build.output)
    assert [line.split(":")[0] for line in lines[:-2]] == [RISKY], lines
    assert lines[-2].startswith("nogil: audited 1 file from the sources of audited._risky")
