"""What only the meson-python integration has: the setup block of
templates/nogil_meson_setup.build (as shipped, and as the README shows it), the backend's own
refusals. What meson and CMake both must do is in ``test_backends.py``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from buildsys_support import pip_wheel
from support import REPO, SAMPLES

pytestmark = pytest.mark.slow

SAMPLE = SAMPLES / "meson_spine"


def test_the_sample_uses_the_shipped_setup_block_verbatim() -> None:
    """The README and templates/ show the block the tests build with, not a lookalike."""
    block = (REPO / "templates" / "nogil_meson_setup.build").read_text().splitlines()
    sample = (SAMPLE / "meson.build").read_text().splitlines()
    kept = [line for line in block if not line.startswith("nogil_modules = ")]
    start = sample.index(kept[0])
    assert [line for line in sample[start:start + len(block)] if not line.startswith("nogil_modules = ")] == kept


def test_the_readme_shows_the_shipped_setup_block() -> None:
    block = [line for line in (REPO / "templates" / "nogil_meson_setup.build").read_text().splitlines()
             if line and not line.startswith(("#", "nogil_modules = ", "nogil_export_hooks = "))]
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### meson-python"):readme.index("### CMake / scikit-build-core")]
    lines = section.splitlines()
    start = lines.index(block[0])
    assert lines[start:start + len(block)] == block


def test_a_declared_module_built_without_its_dependency_fails_the_build(gil312_venv: Path, plugin_wheelhouse: Path,
                                                                        tmp_path: Path) -> None:
    project = tmp_path / "meson_spine"
    shutil.copytree(SAMPLE, project)
    build = project / "meson.build"
    text = build.read_text()
    build.write_text(text.replace("\n                    dependencies: nogil['mspine._multi'])", ")", 1))
    assert build.read_text() != text
    wheel, output = pip_wheel(gil312_venv, project, tmp_path / "out", plugin_wheelhouse, check=False)
    assert wheel is None
    assert ("[tool.nogil] declares mspine._multi not-used, but its binary was built without the shim: give its "
            "extension_module() 'dependencies: nogil['mspine._multi']'") in output, output
    assert "Traceback" not in output


@pytest.mark.freethreaded
def test_limited_api_on_free_threaded_is_refused_as_setuptools_refuses_it(ft_venv: Path, plugin_wheelhouse: Path,
                                                                          tmp_path: Path) -> None:
    project = tmp_path / "meson_spine"
    shutil.copytree(SAMPLE, project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.meson-python]\nlimited-api = true\n")
    wheel, output = pip_wheel(ft_venv, project, tmp_path / "out", plugin_wheelhouse, check=False)
    assert wheel is None
    assert "[tool.meson-python] limited-api = true builds every extension with Py_LIMITED_API " \
           "(the stable ABI, abi3), which free-threaded CPython 3.13 can neither compile nor load" in output, output
    assert "abi3t, PEP 803" in output and "-Dpython.allow_limited_api=false" in output
    assert "Traceback" not in output
