"""Fixtures of the meson and CMake integration tests: the build plugins' wheels beside the
toolkit's, and builds that keep their build directory so the generated shims can be compared."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Optional

import pytest

from support import REPO, clean_env, gil_python, make_venv, run

BUILD_PLUGINS = REPO / "build_plugins"


@pytest.fixture(scope="session")
def plugin_wheelhouse(wheelhouse: Path) -> Path:
    """The session's wheelhouse with nogil-meson and nogil-cmake added, for isolated builds."""
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheelhouse,
         *sorted(p for p in BUILD_PLUGINS.iterdir() if (p / "pyproject.toml").exists())])
    return wheelhouse


def pip_wheel(python: Path, project: Path, out: Path, wheelhouse: Path, build_dir: Optional[Path] = None,
              check: bool = True) -> tuple[Optional[Path], str]:
    """``pip wheel`` a copy of ``project`` with build isolation; ``build_dir`` keeps the backend's
    build directory (meson-python and scikit-build-core both take ``-C build-dir=``).

    Returns the wheel (None if the build failed and ``check`` is false) and pip's output."""
    source = out / f"src-{project.name}"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(project, source)
    settings = ["-C", f"build-dir={build_dir}"] if build_dir is not None else []
    result = run([python, "-m", "pip", "wheel", "--no-deps", "--find-links", wheelhouse, "-w", out / "dist",
                  *settings, source], env=clean_env(), check=check, timeout=1200)
    wheels = sorted((out / "dist").glob("*.whl"))
    return (wheels[-1] if wheels else None), result.stdout + result.stderr


@pytest.fixture(scope="session")
def gil312_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv of a GIL CPython 3.12: a missing interpreter fails, it is not skipped."""
    python = gil_python(12)
    assert python is not None, "no GIL build of CPython 3.12 on PATH or in pyenv"
    return make_venv(python, tmp_path_factory.mktemp("gil312") / "venv")
