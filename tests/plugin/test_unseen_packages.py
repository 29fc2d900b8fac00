"""Real C-extension packages from PyPI that nobody wrote for these tests, taken as sdists from
releases that predate free-threading (their modules declare nothing). Given only a
``pyproject.toml`` with the plugin and ``[tool.nogil] thread-safe = true``, no source edit,
they build on the free-threaded interpreter and import with the GIL still disabled.

simplejson also brings its own ``build_ext`` subclass (it tolerates compile failures),
which the plugin has to wrap rather than replace."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_support import declare, unpack
from support import build_wheel, import_strict, install, make_venv, probe_import

pytestmark = pytest.mark.freethreaded

PACKAGES = {
    # sdist requirement: (extension module, code run after importing it)
    "MarkupSafe==2.1.5": ("markupsafe._speedups",
                          "import markupsafe; assert str(markupsafe.escape('<a>')) == '&lt;a&gt;'"),
    "simplejson==3.19.3": ("simplejson._speedups",
                           "import simplejson; assert simplejson._import_c_make_encoder() is not None\n"
                           "assert simplejson.dumps({'a': [1, 2]}) == '{\"a\": [1, 2]}'"),
}


@pytest.fixture(scope="module")
def sources(sdists: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    found = {}
    for requirement in PACKAGES:
        found[requirement] = unpack(sdists[requirement], tmp_path_factory.mktemp(requirement.partition("==")[0]))
        assert not (found[requirement] / "pyproject.toml").exists(), "the test assumes no pyproject.toml"
    return found


def build_variant(ft_python: str, source: Path, wheelhouse: Path, tmp_path: Path, table: str) -> Path:
    (source / "pyproject.toml").unlink(missing_ok=True)
    declare(source, table)
    venv = make_venv(ft_python, tmp_path / "venv")
    install(venv, build_wheel(venv, source, tmp_path, wheelhouse))
    return venv


@pytest.mark.parametrize("requirement", list(PACKAGES))
def test_declared_with_pyproject_only(requirement: str, sources: dict[str, Path], ft_python: str,
                                      wheelhouse: Path, tmp_path: Path) -> None:
    module, code = PACKAGES[requirement]
    venv = build_variant(ft_python, sources[requirement], wheelhouse, tmp_path, "[tool.nogil]\nthread-safe = true\n")
    import_strict(venv, module, code)


@pytest.mark.parametrize("requirement", list(PACKAGES))
def test_without_the_declaration_the_same_package_enables_the_gil(requirement: str, sources: dict[str, Path],
                                                                  ft_python: str, wheelhouse: Path,
                                                                  tmp_path: Path) -> None:
    module, _ = PACKAGES[requirement]
    venv = build_variant(ft_python, sources[requirement], wheelhouse, tmp_path, "")
    probe = probe_import(venv, module)
    assert probe.gil_enabled and any(module in w for w in probe.gil_warnings)
