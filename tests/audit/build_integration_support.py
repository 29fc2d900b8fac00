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


def audited_project(tmp_path: Path, audit_table: str = "", edit: Optional[dict[str, tuple[str, str]]] = None,
                    sample: Path = AUDITED) -> Path:
    """A fresh copy of ``sample`` (the ``audited`` one by default), with ``[tool.nogil.audit]``
    lines appended and ``edit`` (file -> (old, new); an empty old appends) applied."""
    project = tmp_path / sample.name
    shutil.copytree(sample, project)
    if audit_table:
        with (project / "pyproject.toml").open("a") as out:
            out.write(f"\n[tool.nogil.audit]\n{audit_table}")
    for name, (old, new) in (edit or {}).items():
        path = project / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new) if old else text + new)
    return project


def pep517_build(venv: Path, project: Path, wheelhouse: Optional[Path] = None) -> Build:
    """``pip wheel -v`` of ``project`` through its PEP 517 backend, keeping all of the backend's
    output: without ``wheelhouse`` in ``venv`` itself (no isolation: the venv holds the plugin
    under test), with it in an isolated build environment that finds the plugins there."""
    dist = project / "dist"
    isolation = ["--find-links", str(wheelhouse)] if wheelhouse is not None else ["--no-build-isolation"]
    result = run([venv, "-m", "pip", "wheel", "-v", "--no-deps", *isolation, "-w", dist, project],
                 env=clean_env(), check=False, timeout=1800)
    wheels = sorted(dist.glob("*.whl")) if dist.is_dir() else []
    return Build(wheels[-1] if wheels else None, result.stdout + result.stderr, result.returncode)


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line)
