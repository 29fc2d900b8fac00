"""Real C-extension packages from PyPI that nobody wrote for these tests, taken as sdists from
releases that predate free-threading (their modules declare nothing). Given only a
``pyproject.toml`` with the plugin and ``[tool.nogil] thread-safe = true``, no source edit,
they build on the free-threaded interpreter and import with the GIL still disabled.

simplejson also brings its own ``build_ext`` subclass (it tolerates compile failures),
which the plugin has to wrap rather than replace."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

from support import build_wheel, import_strict, install, make_venv, probe_import, run

pytestmark = pytest.mark.freethreaded

PACKAGES = {
    # sdist requirement: (extension module, code run after importing it)
    "MarkupSafe==2.1.5": ("markupsafe._speedups",
                          "import markupsafe; assert str(markupsafe.escape('<a>')) == '&lt;a&gt;'"),
    "simplejson==3.19.3": ("simplejson._speedups",
                           "import simplejson; assert simplejson._import_c_make_encoder() is not None\n"
                           "assert simplejson.dumps({'a': [1, 2]}) == '{\"a\": [1, 2]}'"),
}
PYPROJECT = """\
[build-system]
requires = ["setuptools>=64", "nogil-setuptools"]
build-backend = "setuptools.build_meta"
"""


@pytest.fixture(scope="module")
def sdists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("sdists")
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", out, *PACKAGES])
    found = {}
    for requirement in PACKAGES:
        name, _, version = requirement.partition("==")
        (archive,) = out.glob(f"{name}-{version}.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(out, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        found[requirement] = out / f"{name}-{version}"
        assert not (found[requirement] / "pyproject.toml").exists(), "the test assumes no pyproject.toml"
    return found


def build_variant(ft_python: str, source: Path, wheelhouse: Path, tmp_path: Path, table: str) -> Path:
    (source / "pyproject.toml").write_text(PYPROJECT + table)
    venv = make_venv(ft_python, tmp_path / "venv")
    install(venv, build_wheel(venv, source, tmp_path, wheelhouse))
    return venv


@pytest.mark.parametrize("requirement", list(PACKAGES))
def test_declared_with_pyproject_only(requirement: str, sdists: dict[str, Path], ft_python: str,
                                      wheelhouse: Path, tmp_path: Path) -> None:
    module, code = PACKAGES[requirement]
    venv = build_variant(ft_python, sdists[requirement], wheelhouse, tmp_path, "\n[tool.nogil]\nthread-safe = true\n")
    import_strict(venv, module, code)


@pytest.mark.parametrize("requirement", list(PACKAGES))
def test_without_the_declaration_the_same_package_enables_the_gil(requirement: str, sdists: dict[str, Path],
                                                                  ft_python: str, wheelhouse: Path,
                                                                  tmp_path: Path) -> None:
    module, _ = PACKAGES[requirement]
    venv = build_variant(ft_python, sdists[requirement], wheelhouse, tmp_path, "")
    probe = probe_import(venv, module)
    assert probe.gil_enabled and any(module in w for w in probe.gil_warnings)
