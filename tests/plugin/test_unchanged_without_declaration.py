"""Without a declaration the plugin changes nothing: the compiler runs exactly the commands
that plain setuptools runs. Every compiler and linker call is logged by a wrapper named in
``CC`` (distutils derives ``LDSHARED`` from it too)."""

from __future__ import annotations

import shutil
import stat
import sys
from pathlib import Path

import pytest

from support import SAMPLES, build_wheel, clean_env, make_venv

WRAPPER = """#!/bin/sh
printf '%s\\n' "$*" >> "$NOGIL_TEST_CC_LOG"
exec cc "$@"
"""


@pytest.fixture(scope="module")
def venv311(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_venv(sys.executable, tmp_path_factory.mktemp("unchanged") / "venv")


def compiler_calls(venv: Path, wheelhouse: Path, tmp_path: Path, name: str, with_plugin: bool, table: str) -> list[str]:
    project = tmp_path / name / "plain"
    shutil.copytree(SAMPLES / "plain", project)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    if not with_plugin:
        text = text.replace(', "nogil-setuptools"]', "]")
        assert "nogil-setuptools" not in text
    pyproject.write_text(text + table)
    wrapper = tmp_path / name / "cc-logger"
    wrapper.write_text(WRAPPER)
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / name / "cc.log"
    build_wheel(venv, project, tmp_path / name, wheelhouse, env=clean_env(CC=str(wrapper), NOGIL_TEST_CC_LOG=str(log)))
    return log.read_text().replace(str(tmp_path / name), "<project>").splitlines()


@pytest.mark.parametrize("table", ["", "\n[tool.nogil]\n", "\n[tool.nogil.modules]\n"],
                         ids=["no-table", "empty-table", "empty-modules"])
def test_same_compiler_commands_as_plain_setuptools(venv311: Path, wheelhouse: Path, tmp_path: Path,
                                                    table: str) -> None:
    plain = compiler_calls(venv311, wheelhouse, tmp_path, "plain", with_plugin=False, table="")
    plugged = compiler_calls(venv311, wheelhouse, tmp_path, "plugged", with_plugin=True, table=table)
    assert len(plain) == 2, plain  # one compile, one link
    assert plugged == plain


def test_a_declaration_does_change_the_commands(venv311: Path, wheelhouse: Path, tmp_path: Path) -> None:
    """The comparison above can fail: with a declaration the shim is compiled and linked."""
    plain = compiler_calls(venv311, wheelhouse, tmp_path, "plain", with_plugin=False, table="")
    declared = compiler_calls(venv311, wheelhouse, tmp_path, "declared", with_plugin=True,
                              table="\n[tool.nogil]\nthread-safe = true\n")
    assert declared != plain
    assert any("-DPyInit__ext=_nogil_toolkit_orig_PyInit__ext" in call for call in declared)
    assert any("plain._ext.nogil_shim.c" in call for call in declared)
