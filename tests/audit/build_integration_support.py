"""Helpers of the build-integration tests: venvs with the plugin installed, and real PEP 517
builds in them whose whole output (the backend's included) is kept."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple, Optional

from support import SAMPLES, clean_env, make_venv, run

AUDITED = SAMPLES / "audited"


def plugin_venv(python: str, folder: Path, wheelhouse: Path) -> Path:
    """A venv of ``python`` with setuptools and the plugin (from ``wheelhouse``) installed."""
    venv = make_venv(python, folder / "venv")
    run([venv, "-m", "pip", "install", "--find-links", wheelhouse, "setuptools>=77", "wheel", "nogil-setuptools"])
    return venv


class Build(NamedTuple):
    wheel: Optional[Path]
    output: str
    returncode: int


def audited_project(tmp_path: Path, audit_table: str = "", edit: Optional[dict[str, tuple[str, str]]] = None) -> Path:
    """A fresh copy of the ``audited`` sample, with ``[tool.nogil.audit]`` lines appended and
    ``edit`` (file -> (old, new)) applied."""
    project = tmp_path / "audited"
    shutil.copytree(AUDITED, project)
    if audit_table:
        with (project / "pyproject.toml").open("a") as out:
            out.write(f"\n[tool.nogil.audit]\n{audit_table}")
    for name, (old, new) in (edit or {}).items():
        path = project / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new))
    return project


def pep517_build(venv: Path, project: Path) -> Build:
    """``pip wheel -v`` of ``project`` through setuptools' PEP 517 backend, in ``venv``
    (no isolation: the venv holds the plugin under test), keeping all of the backend's output."""
    dist = project / "dist"
    result = run([venv, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", dist, project],
                 env=clean_env(), check=False, timeout=900)
    wheels = sorted(dist.glob("*.whl")) if dist.is_dir() else []
    return Build(wheels[-1] if wheels else None, result.stdout + result.stderr, result.returncode)


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line)
