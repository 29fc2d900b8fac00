"""The plugin's output on GIL builds of CPython 3.9-3.13: it must build and import unchanged.

Before 3.13 an unknown slot makes module creation fail, so the shim has to leave the def
alone there; on 3.13 GIL builds the slot is accepted and ignored.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_support import exported_init_symbols, toolkit_markers
from support import SAMPLES, build_wheel, gil_python, install, make_venv, run

MINORS = (9, 10, 11, 12, 13)

CHECK = """
import sys
import spine._multi, spine._single, spine._cpp, spine._own, spine.legacy._old, efalse._claims
c = spine._multi.Counter()
assert spine._multi.same_def() and (c.bump(), c.bump()) == (1, 2)
assert spine._single.answer() == 42 and spine._cpp.greet() == "hello from C++17"
assert spine.legacy._old.hit() == 1
print("ok", sys.version_info[:2])
"""


@pytest.fixture(scope="module", params=MINORS, ids=lambda m: f"3.{m}")
def gil_venv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = gil_python(request.param)
    assert python is not None, f"no GIL build of CPython 3.{request.param} found on PATH or in pyenv"
    return make_venv(python, tmp_path_factory.mktemp(f"gil-3.{request.param}") / "venv")


@pytest.fixture(scope="module")
def gil_installed(gil_venv: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = [build_wheel(gil_venv, SAMPLES / name, tmp_path_factory.mktemp(name), wheelhouse)
              for name in ("spine", "explicit_false")]
    assert all("t-" not in w.name.split("-")[3] for w in wheels), [w.name for w in wheels]
    install(gil_venv, *wheels)
    return gil_venv


def test_samples_build_and_import_on_gil_builds(gil_installed: Path) -> None:
    assert run([gil_installed, "-W", "error", "-c", CHECK]).stdout.startswith("ok")


@pytest.mark.parametrize("module", ["spine._multi", "spine._single", "spine._cpp", "spine._own",
                                    "spine.legacy._old", "efalse._claims"])
def test_renamed_init_is_hidden_on_gil_builds(gil_installed: Path, module: str) -> None:
    """Only the real PyInit_<name> is exported, whatever the interpreter: the renamed
    original stays local to the library."""
    package, _, name = module.rpartition(".")
    site = next(gil_installed.parent.parent.glob("lib/python*/site-packages"))
    (library,) = (site / package.replace(".", "/")).glob(f"{name}.cpython-*.so")
    assert exported_init_symbols(library) == {f"PyInit_{name}"}
    assert [m.module for m in toolkit_markers(library)] == [module]


def test_cython_sample_on_311(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    python = gil_python(11)
    assert python is not None
    venv = make_venv(python, tmp_path_factory.mktemp("cy311") / "venv")
    install(venv, build_wheel(venv, SAMPLES / "cython_mod", tmp_path_factory.mktemp("cymod"), wheelhouse))
    assert run([venv, "-c", "import cymod._fast as f; print(f.total(range(5)))"]).stdout.strip() == "10"
