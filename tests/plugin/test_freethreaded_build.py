"""The setuptools plugin on a real free-threaded CPython: build wheels through pip (PEP 517,
build isolation), install them into a venv and import each module in a fresh process."""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.marker import ELF_SECTION, iter_markers
from support import import_strict, install, probe_import

pytestmark = pytest.mark.freethreaded


@pytest.fixture(scope="module")
def installed(ft_venv: Path, ft_sample_wheels: dict[str, Path]) -> dict[str, Path]:
    """Each sample built on the free-threaded interpreter and installed into its venv."""
    install(ft_venv, *ft_sample_wheels.values())
    return ft_sample_wheels


def extension_path(venv_python: Path, module: str) -> Path:
    site = next(venv_python.parent.parent.glob("lib/python*/site-packages"))
    package, _, name = module.rpartition(".")
    (found,) = (site / package.replace(".", "/")).glob(f"{name}.cpython-*.so")
    return found


def test_wheels_carry_the_free_threaded_abi_tag(installed: dict[str, Path]) -> None:
    for wheel in installed.values():
        assert "-cp313-cp313t-" in wheel.name or "-cp314-cp314t-" in wheel.name, wheel.name


@pytest.mark.parametrize("module", ["spine._multi", "spine._single", "spine._cpp", "spine._own", "cymod._fast"])
def test_declared_modules_keep_the_gil_disabled(installed: dict[str, Path], ft_venv: Path, module: str) -> None:
    import_strict(ft_venv, module)


def test_multi_phase_module_keeps_its_def_identity_and_state(installed: dict[str, Path], ft_venv: Path) -> None:
    code = (
        "import importlib\n"
        "m = spine._multi\n"
        "assert m.same_def(), 'PyModule_GetDef no longer returns the module def'\n"
        "c = m.Counter(); assert (c.bump(), c.bump()) == (1, 2)\n"
        # A second init of the same module in one process must reuse the patched slots.
        "del sys.modules['spine._multi']\n"
        "again = importlib.import_module('spine._multi')\n"
        "assert again is not m and again.same_def() and again.Counter().bump() == 1\n"
        "print('ok')\n"
    )
    assert import_strict(ft_venv, "spine._multi", code).strip() == "ok"


def test_other_modules_still_work(installed: dict[str, Path], ft_venv: Path) -> None:
    out = import_strict(ft_venv, "spine._single, spine._cpp, cymod._fast",
                        "print(spine._single.answer(), spine._cpp.greet(), cymod._fast.total([1, 2, 3]))")
    assert out.split() == ["42", "hello", "from", "C++17", "6"]


@pytest.mark.parametrize("module", ["spine.legacy._old", "efalse._claims", "plain._ext"])
def test_modules_declared_or_left_as_needing_the_gil_enable_it(installed: dict[str, Path], ft_venv: Path,
                                                                module: str) -> None:
    probe = probe_import(ft_venv, module)
    assert probe.gil_enabled
    assert any(f"'{module}'" in w for w in probe.gil_warnings), probe.gil_warnings


@pytest.mark.parametrize(("module", "declaration"), [
    ("spine._multi", GilDeclaration.NOT_USED),
    ("spine._single", GilDeclaration.NOT_USED),
    ("spine._cpp", GilDeclaration.NOT_USED),
    ("spine.legacy._old", GilDeclaration.USED),
    ("cymod._fast", GilDeclaration.NOT_USED),
    ("efalse._claims", GilDeclaration.USED),
])
def test_binary_exports_only_the_real_init_and_carries_the_marker(installed: dict[str, Path], ft_venv: Path,
                                                                   module: str, declaration: GilDeclaration) -> None:
    path = extension_path(ft_venv, module)
    with path.open("rb") as stream:
        elf = ELFFile(stream)
        exported = {s.name for s in elf.get_section_by_name(".dynsym").iter_symbols()
                    if s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["bind"] != "STB_LOCAL"}
        section = elf.get_section_by_name(ELF_SECTION)
        assert section is not None, f"{path.name} has no {ELF_SECTION} section"
        markers = list(iter_markers(section.data()))
    init = f"PyInit_{module.rpartition('.')[2]}"
    assert {s for s in exported if "PyInit" in s} == {init}
    assert not any("nogil_toolkit" in s for s in exported)
    assert [(m.module, m.declaration) for m in markers] == [(module, declaration)]


def test_without_the_table_the_module_is_untouched(installed: dict[str, Path], ft_venv: Path) -> None:
    with extension_path(ft_venv, "plain._ext").open("rb") as stream:
        assert ELFFile(stream).get_section_by_name(ELF_SECTION) is None
