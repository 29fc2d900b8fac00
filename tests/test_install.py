"""The toolkit itself: it installs from its wheel (pure-Python dependencies only) on the oldest
supported CPython and on a free-threaded one, and it never re-enables the GIL there."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest

import nogil_toolkit
from support import clean_env, make_venv, require_gil_python, run

MODULES = sorted(m.name for m in pkgutil.walk_packages(nogil_toolkit.__path__, "nogil_toolkit."))


def install_toolkit(python: str, wheelhouse: Path, tmp_path: Path) -> Path:
    venv = make_venv(python, tmp_path / "venv")
    (wheel,) = wheelhouse.glob("nogil_toolkit-*.whl")
    run([venv, "-m", "pip", "install", "--only-binary=:all:", wheel])
    return venv


@pytest.mark.freethreaded
def test_on_free_threaded_cpython_it_never_enables_the_gil(ft_python: str, wheelhouse: Path, tmp_path: Path) -> None:
    venv = install_toolkit(ft_python, wheelhouse, tmp_path)
    imports = "\n".join(f"import {name}" for name in MODULES)
    run([venv, "-W", "error::RuntimeWarning", "-c", f"{imports}\nimport sys\nassert not sys._is_gil_enabled()"],
        env=clean_env())
    # Its own environment passes its own strict check: every dependency is pure Python.
    result = run([venv.parent / "nogil-check-env", "--no-project", "--cache-dir", tmp_path / "cache"], env=clean_env())
    assert "mode nogil" in result.stdout and "result: passed (exit 0)" in result.stdout


def test_on_the_oldest_supported_cpython(wheelhouse: Path, tmp_path: Path) -> None:
    venv = install_toolkit(require_gil_python(9), wheelhouse, tmp_path)
    imports = "\n".join(f"import {name}" for name in MODULES)
    run([venv, "-c", imports])
    result = run([venv.parent / "nogil-check-env", "--no-project", "--cache-dir", tmp_path / "cache"])
    assert "mode gil" in result.stdout and "(exit 0)" in result.stdout
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "1"\n')
    run([venv.parent / "nogil-toolkit", "declare", "--project", project, "--thread-safe", "true"])
    assert "thread-safe = true" in (project / "pyproject.toml").read_text()
