"""Without a declaration the plugin changes nothing: the compiler runs exactly the commands
that plain setuptools runs. Every compiler and linker call is logged by a wrapper named in
``CC`` (distutils derives ``LDSHARED`` from it too)."""

from __future__ import annotations

import shutil
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from nogil_toolkit.wheel.record import RECORD_NAME
from support import SAMPLES, build_wheel, clean_env, make_venv

WRAPPER = """#!/bin/sh
printf '%s\\n' "$*" >> "$NOGIL_TEST_CC_LOG"
exec cc "$@"
"""


@pytest.fixture(scope="module")
def venv311(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_venv(sys.executable, tmp_path_factory.mktemp("unchanged") / "venv")


def compiler_calls(venv: Path, wheelhouse: Path, tmp_path: Path, name: str, with_plugin: bool,
                   table: str) -> tuple[list[str], Path]:
    """Every compiler and linker command line of one wheel build, and the wheel."""
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
    wheel = build_wheel(venv, project, tmp_path / name, wheelhouse,
                        env=clean_env(CC=str(wrapper), NOGIL_TEST_CC_LOG=str(log)))
    return log.read_text().replace(str(tmp_path / name), "<project>").splitlines(), wheel


def has_record(wheel: Path) -> bool:
    with zipfile.ZipFile(wheel) as archive:
        return any(n.endswith(f".dist-info/{RECORD_NAME}") for n in archive.namelist())


@pytest.mark.parametrize("table", ["", "\n[tool.nogil]\n", "\n[tool.nogil.modules]\n",
                                   '\n[tool.nogil.check]\nmode = "nogil"\n'],
                         ids=["no-table", "empty-table", "empty-modules", "check-policy-only"])
def test_same_compiler_commands_as_plain_setuptools(venv311: Path, wheelhouse: Path, tmp_path: Path,
                                                    table: str) -> None:
    plain, _ = compiler_calls(venv311, wheelhouse, tmp_path, "plain", with_plugin=False, table="")
    plugged, wheel = compiler_calls(venv311, wheelhouse, tmp_path, "plugged", with_plugin=True, table=table)
    assert len(plain) == 2, plain  # one compile, one link
    assert plugged == plain
    assert not has_record(wheel), "a wheel that declares nothing carries a declaration record"


def test_a_declaration_does_change_the_commands(venv311: Path, wheelhouse: Path, tmp_path: Path) -> None:
    """The comparison above can fail: with a declaration the shim is compiled and linked."""
    plain, _ = compiler_calls(venv311, wheelhouse, tmp_path, "plain", with_plugin=False, table="")
    declared, wheel = compiler_calls(venv311, wheelhouse, tmp_path, "declared", with_plugin=True,
                                     table="\n[tool.nogil]\nthread-safe = true\n")
    assert has_record(wheel)
    assert len(declared) == 3, declared  # the extension's compile, the shim's, one link
    *compiles, link = declared
    (shim_compile,) = [c for c in compiles if "nogil_shim" in c]
    (ext_compile,) = [c for c in compiles if "nogil_shim" not in c]
    # The init and Python 3.15's export hook renamed (no hook here: one link, no second pass).
    rename = "-DPyInit__ext=_nogil_toolkit_orig_PyInit__ext -DPyModExport__ext=_nogil_toolkit_orig_PyModExport__ext"
    # A declared extension's objects go to a folder of its own, <build_temp>/nogil/<module> (so
    # that `build_ext -j` cannot link another extension's object of a shared source).
    plain_object = plain[0].split(" -o ")[1].strip()
    assert plain_object.endswith("/src/plain/_ext.o"), plain_object
    own_object = plain_object.replace("/src/plain/_ext.o", "/nogil/plain._ext/src/plain/_ext.o")
    assert ext_compile == plain[0].replace(" -I", f" {rename} -DCYTHON_FREETHREADING_COMPATIBLE=1 -I", 1) \
                                  .replace(f" -o {plain_object}", f" -o {own_object}")
    # The shim is compiled with the same flags as the extension's own sources...
    assert shim_compile.split(" -c ")[0] == ext_compile.split(" -c ")[0]
    shim_object = shim_compile.split(" -o ")[1].strip()
    # Beside its source in the extension's own folder (not that folder's path repeated under it).
    assert shim_object == own_object.replace("/src/plain/_ext.o", "/nogil-shims/plain._ext.nogil_shim.o")
    assert "plain._ext.nogil_shim.c" in shim_compile
    # ...and only its object reaches the link, after the extension's own objects.
    assert link == plain[1].replace(f" {plain_object} ", f" {own_object} {shim_object} ", 1)
