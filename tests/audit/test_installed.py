"""The audit as installed from the toolkit's wheel (its rules file and schema are package data),
on free-threaded CPython with the GIL kept off, and on the oldest supported CPython: the same
findings as in-process here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nogil_toolkit.audit import audit_paths
from support import clean_env, make_venv, require_gil_python, run

FIXTURES = Path(__file__).parent / "fixtures"


def installed_findings(python: str, wheelhouse: Path, tmp_path: Path) -> set[tuple[str, int, int, str]]:
    venv = make_venv(python, tmp_path / "venv")
    (wheel,) = wheelhouse.glob("nogil_toolkit-*.whl")
    run([venv, "-m", "pip", "install", "--only-binary=:all:", wheel])
    script = ("import sys, runpy\nsys.argv = ['nogil-toolkit', 'audit', '--format', 'json', '--fail-on', 'never', "
              f"{str(FIXTURES)!r}]\ntry:\n    runpy.run_module('nogil_toolkit', run_name='__main__')\n"
              "finally:\n    assert not getattr(sys, '_is_gil_enabled', lambda: False)(), 'the GIL was enabled'\n")
    result = run([venv, "-W", "error::RuntimeWarning", "-c", script], env=clean_env(), check=False)
    assert result.returncode == 0, result.stderr
    return {(Path(f["path"]).name, f["line"], f["column"], f["rule"]) for f in json.loads(result.stdout)["findings"]}


def expected() -> set[tuple[str, int, int, str]]:
    return {(Path(f.path).name, f.line, f.column, f.rule.id) for f in audit_paths([FIXTURES]).findings}


@pytest.mark.freethreaded
def test_same_findings_on_free_threaded_cpython_with_the_gil_off(ft_python: str, wheelhouse: Path,
                                                                  tmp_path: Path) -> None:
    assert installed_findings(ft_python, wheelhouse, tmp_path) == expected()


def test_same_findings_on_the_oldest_supported_cpython(wheelhouse: Path, tmp_path: Path) -> None:
    assert installed_findings(require_gil_python(9), wheelhouse, tmp_path) == expected()
