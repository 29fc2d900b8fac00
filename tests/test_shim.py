"""The generated shim and the marker it embeds (the compiled behaviour is tested in tests/plugin)."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest

from nogil_toolkit import __version__
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.marker import MARKER_PREFIX, format_marker, iter_markers
from nogil_toolkit.shim import ShimPlan, is_cplusplus, write_shim
from support import gil_python, run


def test_plan_names_follow_the_module() -> None:
    plan = ShimPlan("pkg.sub._speedups", GilDeclaration.NOT_USED)
    assert plan.init_symbol == "PyInit__speedups"
    assert plan.rename_macro() == ("PyInit__speedups", "_nogil_toolkit_orig_PyInit__speedups")
    assert plan.cython_macro() == ("CYTHON_FREETHREADING_COMPATIBLE", "1")
    assert ShimPlan("m", GilDeclaration.USED).cython_macro() == ("CYTHON_FREETHREADING_COMPATIBLE", "0")


def test_non_ascii_module_names_are_refused() -> None:
    with pytest.raises(ValueError, match="not an ASCII identifier"):
        _ = ShimPlan("pkg.модуль", GilDeclaration.NOT_USED).init_symbol


@pytest.mark.parametrize("declaration", list(GilDeclaration))
def test_rendered_shim_uses_macro_names_never_numbers(declaration: GilDeclaration) -> None:
    text = ShimPlan("pkg._x", declaration).render()
    assert "${" not in text
    assert f"slots[kept].value = {declaration.c_macro};" in text
    assert f'"{format_marker("pkg._x", declaration, __version__)}"' in text
    assert "#undef PyInit__x\n" in text
    # Slot ids are renumbered in 3.15 (PEP 820): every slot id and value the shim writes is
    # a macro name from the headers, never a literal.
    assert re.findall(r"\.slot\s*=\s*([^;]+);", text) == ["Py_mod_gil"]
    assert re.findall(r"\.value\s*=\s*([^;]+);", text) == [declaration.c_macro]
    assert re.findall(r"PyUnstable_Module_SetGIL\(result,\s*([^)]+)\)", text) == [declaration.c_macro]


def test_write_shim_is_stable_for_incremental_builds(tmp_path: Path) -> None:
    plan = ShimPlan("pkg._x", GilDeclaration.NOT_USED)
    path = write_shim(plan, tmp_path)
    assert path.name == "pkg._x.nogil_shim.c"
    os.utime(path, (1, 1))
    assert write_shim(plan, tmp_path) == path and path.stat().st_mtime == 1
    changed = write_shim(ShimPlan("pkg._x", GilDeclaration.USED), tmp_path)
    assert changed == path and path.stat().st_mtime > 1
    assert write_shim(plan, tmp_path, cplusplus=True).suffix == ".cpp"


def test_cplusplus_detection() -> None:
    assert is_cplusplus(["a.c", "b.cpp"], None)
    assert is_cplusplus(["a.c"], "c++")
    assert not is_cplusplus(["a.c", "b.pyx"], None)


def test_marker_round_trip_and_offsets() -> None:
    text = format_marker("pkg._x", GilDeclaration.USED, "1.2.3").encode() + b"\0"
    data = b"\x7fELF" + b"\0" * 10 + text + b"junk" + text
    markers = list(iter_markers(data))
    assert [(m.module, m.declaration, m.toolkit_version) for m in markers] == [("pkg._x", GilDeclaration.USED, "1.2.3")] * 2
    assert markers[0].offset == 14 and data[markers[1].offset:].startswith(MARKER_PREFIX)


@pytest.mark.parametrize("body", [b"module=x;gil=maybe;toolkit=1", b"module=x;toolkit=1", b"gil=used;toolkit=1",
                                  b"module=x;gil=used;toolkit=1\xff", b"module=x;gil=used;toolkit=1"])
def test_malformed_or_unterminated_markers_are_skipped(body: bytes) -> None:
    assert list(iter_markers(MARKER_PREFIX + body)) == []


@pytest.mark.parametrize("field", ["a;b", "a=b", 'a"b', "", "ä"])
def test_marker_fields_that_would_break_the_format_are_refused(field: str) -> None:
    with pytest.raises(ValueError):
        format_marker(field, GilDeclaration.USED, "1")


def test_random_bytes_around_markers_find_exactly_the_intact_ones() -> None:
    """Every marker reported is spelled out in full at its offset, and an intact marker in
    random bytes is always found: the reader neither invents nor loses a declaration."""
    rng = random.Random(1234)
    marker = format_marker("m", GilDeclaration.NOT_USED, "1").encode() + b"\0"
    intact_seen = 0
    for _ in range(2000):
        start = rng.randrange(0, 300)
        blob = bytearray(rng.randbytes(start) + marker + rng.randbytes(rng.randrange(0, 50)))
        hits = [rng.randrange(len(blob)) for _ in range(rng.randrange(0, 4))]
        for at in hits:
            blob[at] = rng.randrange(256)
        found = list(iter_markers(bytes(blob)))
        for one in found:
            spelled = format_marker(one.module, one.declaration, one.toolkit_version).encode() + b"\0"
            assert blob[one.offset:one.offset + len(spelled)] == spelled
        if bytes(blob[start:start + len(marker)]) == marker:
            intact_seen += 1
            assert (start, "m", GilDeclaration.NOT_USED) in [(f.offset, f.module, f.declaration) for f in found]
    assert intact_seen > 1000  # the check above ran on most mutants, not on a lucky few


STRICT = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-c", "-o", "/dev/null"]
C_ONLY = ["-std=c99", "-Wmissing-prototypes", "-Wstrict-prototypes"]


def headers(python: str) -> str:
    return run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"]).stdout.strip()


@pytest.mark.parametrize("minor", [9, 10, 11, 12, 13])
def test_shim_compiles_without_warnings_on_gil_headers(minor: int, tmp_path: Path) -> None:
    """Projects build with -Werror: the shim must not be the file that breaks them."""
    python = gil_python(minor)
    assert python is not None, f"no GIL build of CPython 3.{minor} on PATH or in pyenv"
    compile_strictly(headers(python), tmp_path)


@pytest.mark.freethreaded
def test_shim_compiles_without_warnings_on_free_threaded_headers(ft_python: str, tmp_path: Path) -> None:
    compile_strictly(headers(ft_python), tmp_path)


def compile_strictly(include: str, tmp_path: Path) -> None:
    for declaration, cplusplus in ((GilDeclaration.NOT_USED, False), (GilDeclaration.USED, True)):
        shim = write_shim(ShimPlan("pkg._x", declaration), tmp_path, cplusplus=cplusplus)
        compiler = ["c++", "-std=c++17"] if cplusplus else ["cc", *C_ONLY]
        run([*compiler, *STRICT, f"-I{include}", shim])


# The 3.15 names, spelled from CPython's documentation for compiling against older headers
# (no 3.15 interpreter exists here); the sample that builds and calls the hook uses it too.
PY315_COMPAT = Path(__file__).parent / "samples" / "hook315" / "src" / "hook315" / "py315_compat.h"


@pytest.mark.freethreaded
def test_export_hook_shim_compiles_without_warnings_for_315(ft_python: str, tmp_path: Path) -> None:
    """The hook wrapper is 3.15-only C (PY_VERSION_HEX): compiled here with the 3.15 names,
    strictly, as C11 (PySlot's anonymous unions) and as C++17."""
    include = headers(ft_python)
    for declaration, cplusplus in ((GilDeclaration.NOT_USED, False), (GilDeclaration.USED, True)):
        shim = write_shim(ShimPlan("pkg._x", declaration, export_hook=True), tmp_path, cplusplus=cplusplus)
        compiler = ["c++", "-std=c++17"] if cplusplus else ["cc", "-std=c11", *C_ONLY[1:]]
        run([*compiler, *STRICT, f"-I{include}", "-include", PY315_COMPAT, shim])


def test_export_hook_shim_is_nothing_before_315(tmp_path: Path) -> None:
    """Against 3.13's own headers the wrapper is compiled out: no PyModExport_ symbol at all."""
    python = gil_python(13)
    assert python is not None, "no GIL build of CPython 3.13 on PATH or in pyenv"
    shim = write_shim(ShimPlan("pkg._x", GilDeclaration.NOT_USED, export_hook=True), tmp_path)
    run(["cc", *C_ONLY, *STRICT[:-2], "-o", tmp_path / "shim.o", f"-I{headers(python)}", shim])
    symbols = run(["nm", tmp_path / "shim.o"]).stdout
    assert "PyInit__x" in symbols and "PyModExport" not in symbols


def test_hook_wrapper_spells_no_slot_number(tmp_path: Path) -> None:
    """Slot ids, flags and the end marker come from the headers' names (PEP 820 renumbered them)."""
    text = ShimPlan("pkg._x", GilDeclaration.NOT_USED, export_hook=True).render()
    assert re.findall(r"\.sl_id\s*=(?!=)\s*([^;]+);", text) == ["nogil_toolkit_gil_id"]
    assert re.findall(r"\.sl_flags\s*=\s*([^;]+);", text) == ["PySlot_INTPTR"]
    assert "!= Py_slot_end" in text and not re.search(r"sl_id\s*[!=]=\s*\d", text)
    assert "extern PySlot *_nogil_toolkit_orig_PyModExport__x(void);" in text
    assert "#undef PyModExport__x\n" in text
