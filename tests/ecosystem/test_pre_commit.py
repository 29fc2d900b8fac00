"""The repository's ``.pre-commit-hooks.yaml`` with the real ``pre-commit``: it clones a git
repository of this checkout at a commit, installs the toolkit into its own venv with pip, and
runs the hooks on a temporary project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ecosystem_support import commit_all, git, snapshot_of_checkout

VALID = """\
[project]
name = "demo"
version = "1.0"

[tool.nogil]
thread-safe = true

[tool.nogil.audit]
exclude = ["vendor"]
"""

CLEAN_C = """\
#include <Python.h>
static PyObject *lookup(PyObject *d, PyObject *k) { return PyDict_GetItemRef(d, k, NULL) < 0 ? NULL : Py_None; }
"""

BORROWING_C = """\
#include <Python.h>
static PyObject *lookup(PyObject *d, PyObject *k) { PyObject *v = PyDict_GetItem(d, k); Py_XINCREF(v); return v; }
"""


@pytest.fixture(scope="module")
def hook_repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return snapshot_of_checkout(tmp_path_factory.mktemp("hooks") / "nogil-toolkit")


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: the hook venv (pip install of the toolkit) is built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


def pre_commit(project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    command = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    assert command, "pre-commit is in the test extra"
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never",
           # pre-commit makes its venv with the first python3.X on PATH that matches its own.
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env.pop("PYTHONPATH", None)
    return subprocess.run([command, "run", "--all-files"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture
def project(tmp_path: Path, hook_repository: tuple[Path, str]) -> Path:
    repo, rev = hook_repository
    project = tmp_path / "demo"
    (project / "src").mkdir(parents=True)
    (project / "vendor").mkdir()
    (project / "pyproject.toml").write_text(VALID)
    (project / "src" / "clean.c").write_text(CLEAN_C)
    (project / "vendor" / "borrowing.c").write_text(BORROWING_C)  # excluded by [tool.nogil.audit]
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {repo}\n  rev: {rev}\n  hooks:\n  - id: nogil-declaration\n  - id: nogil-audit\n")
    git(project, "init", "-q")
    commit_all(project)
    return project


def test_hooks_pass_on_a_valid_project(project: Path, pre_commit_home: Path) -> None:
    result = pre_commit(project, pre_commit_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nogil-toolkit validate [tool.nogil]" in result.stdout and "Passed" in result.stdout
    assert "nogil-toolkit audit" in result.stdout


def test_an_invalid_declaration_fails_with_its_one_line_error(project: Path, pre_commit_home: Path) -> None:
    (project / "pyproject.toml").write_text(VALID.replace("thread-safe = true", "thread_safe = true"))
    git(project, "add", "-A")
    result = pre_commit(project, pre_commit_home)
    assert result.returncode == 1
    sections = {section.split("\n", 1)[0]: section for section in result.stdout.split("- hook id: ")[1:]}
    errors = [line for line in sections["nogil-declaration"].splitlines() if line.startswith("error:")]
    assert errors == ["error: tool.nogil.thread_safe: unknown key (did you mean 'thread-safe'?); known keys: "
                      "thread-safe, modules, check, audit (pyproject.toml:6:1)"]
    assert "- exit code: 1" in sections["nogil-declaration"]
    # The audit reads the same table, and refuses to run on it (its exit status 2).
    assert errors[0] in sections["nogil-audit"] and "- exit code: 2" in sections["nogil-audit"]


def test_the_audit_hook_fails_on_a_finding(project: Path, pre_commit_home: Path) -> None:
    (project / "src" / "borrowing.c").write_text(BORROWING_C)
    git(project, "add", "-A")
    result = pre_commit(project, pre_commit_home)
    assert result.returncode == 1
    assert "src/borrowing.c" in result.stdout and "borrowed-dict-item" in result.stdout
    assert "vendor/borrowing.c" not in result.stdout
