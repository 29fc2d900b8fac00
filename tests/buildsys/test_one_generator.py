"""One generator for every backend: setuptools, meson and CMake builds of a module with the same
init name and declaration compile the same shim, byte for byte but for the package name."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildsys_support import HOOK_MODULES, HOOKS
from hook_support import HOOK_SAMPLE
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.shim import ShimPlan
from support import build_wheel

pytestmark = [pytest.mark.slow, pytest.mark.freethreaded]


def generated_shim(build_tree: Path, module: str) -> str:
    (path,) = build_tree.rglob(f"{module}.nogil_shim.c")
    return path.read_text()


def as_module(text: str, module: str, renamed: str) -> str:
    """The shim with the module's package renamed; the init symbol and declaration stay as they are."""
    assert text.count(module) == 3  # the header comment, the marker and the hook-only module's init error
    return text.replace(module, renamed)


def test_setuptools_meson_and_cmake_compile_the_same_shim(ft_sample_wheels: dict[str, Path],
                                                         meson_ft: tuple[Path, Path],
                                                         cmake_ft: tuple[Path, Path]) -> None:
    setuptools_tree = ft_sample_wheels["spine"].parent.parent / "src-spine"
    shims = {
        "setuptools": generated_shim(setuptools_tree, "spine._multi"),
        "meson": as_module(generated_shim(meson_ft[1], "mspine._multi"), "mspine._multi", "spine._multi"),
        "cmake": as_module(generated_shim(cmake_ft[1], "cspine._multi"), "cspine._multi", "spine._multi"),
    }
    assert shims["meson"] == shims["setuptools"] == shims["cmake"]
    assert shims["setuptools"] == ShimPlan("spine._multi", GilDeclaration.NOT_USED).render()


@pytest.mark.parametrize("declaration", list(GilDeclaration))
def test_meson_and_cmake_shims_follow_the_declaration(meson_ft: tuple[Path, Path], cmake_ft: tuple[Path, Path],
                                                      declaration: GilDeclaration) -> None:
    module = "_multi" if declaration is GilDeclaration.NOT_USED else "_single"
    meson = as_module(generated_shim(meson_ft[1], f"mspine.{module}"), f"mspine.{module}", f"pkg.{module}")
    cmake = as_module(generated_shim(cmake_ft[1], f"cspine.{module}"), f"cspine.{module}", f"pkg.{module}")
    assert meson == cmake == ShimPlan(f"pkg.{module}", declaration).render()


@pytest.fixture(scope="module")
def setuptools_hook_tree(ft_venv: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hook315 sample's build tree after a setuptools build on the free-threaded interpreter."""
    wheel = build_wheel(ft_venv, HOOK_SAMPLE, tmp_path_factory.mktemp("hook315-setuptools"), wheelhouse)
    return wheel.parent.parent / "src-hook315"


def test_export_hook_shims_are_the_same_from_every_backend(hook_build: tuple[dict[str, Path], Path],
                                                           setuptools_hook_tree: Path) -> None:
    """Python 3.15's export hook: meson (nogil_export_hooks) and CMake (EXPORT_HOOK) compile the
    shim setuptools compiles after finding the hook itself, wrapper included, and no wrapper
    where the module has no hook."""
    _, build = hook_build
    for module in HOOK_MODULES:
        setuptools = generated_shim(setuptools_hook_tree, f"hook315.{module}")
        backend = as_module(generated_shim(build, f"h315.{module}"), f"h315.{module}", f"hook315.{module}")
        assert backend == setuptools
        plan = ShimPlan(f"hook315.{module}", GilDeclaration.NOT_USED, export_hook=module in HOOKS)
        assert setuptools == plan.render()
        assert ("PyMODEXPORT_FUNC" in setuptools) == (module in HOOKS)
