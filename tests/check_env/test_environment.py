"""Finding extension files: names, ABI judgement, ownership, editable installs, shadowing.

Real directory trees with real metadata files; the binaries' contents do not matter here
(enumeration never reads them), so they are empty files."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import pytest

from nogil_toolkit.abi import AbiStatus, classify
from nogil_toolkit.environment import find_extensions
from nogil_toolkit.target import TargetInterpreter, search_path

FT_SUFFIX = ".cpython-313t-x86_64-linux-gnu.so"


def target(free_threaded: bool = True, site: str = "/nonexistent") -> TargetInterpreter:
    tag = "313t" if free_threaded else "313"
    return TargetInterpreter.from_json({
        "executable": "/usr/bin/python3.13", "implementation": "cpython", "version": [3, 13, 5],
        "free_threaded": free_threaded,
        "extension_suffixes": [f".cpython-{tag}-x86_64-linux-gnu.so", ".abi3.so", ".so"],
        "platform": "linux-x86_64", "site_packages": [site], "user_site": "/nonexistent-user",
        "stdlib_extensions": "", "venv": None,
    })


@pytest.mark.parametrize(("name", "basename", "status", "built_for"), [
    ("_x" + FT_SUFFIX, "_x", AbiStatus.LOADABLE, "CPython 3.13 (free-threaded)"),
    ("_x.cpython-313-x86_64-linux-gnu.so", "_x", AbiStatus.WRONG_ABI, "CPython 3.13"),
    ("_x.cpython-312-x86_64-linux-gnu.so", "_x", AbiStatus.WRONG_ABI, "CPython 3.12"),
    ("_x.abi3.so", "_x", AbiStatus.WRONG_ABI, "the stable ABI (abi3)"),
    ("_x.abi3t.so", "_x", AbiStatus.WRONG_ABI, "the free-threaded stable ABI (abi3t)"),
    ("_x.so", "_x", AbiStatus.LOADABLE, None),
    ("_x.cp313t-win_amd64.pyd", "_x", AbiStatus.WRONG_ABI, "CPython 3.13 (free-threaded)"),
    ("_x.pypy310-pp73-x86_64-linux-gnu.so", "_x", AbiStatus.WRONG_ABI, "pypy310"),
    # Only a name that is an identifier can be imported: this file is a helper library.
    ("libz.so.dots.so", "libz.so.dots", AbiStatus.LOADABLE, None),
])
def test_classify_on_free_threaded_313(name: str, basename: str, status: AbiStatus, built_for: str | None) -> None:
    result = classify(name, target())
    assert (result.module_basename, result.status, result.built_for) == (basename, status, built_for)
    assert (result.reason is None) == (status is AbiStatus.LOADABLE)


def test_abi3_loads_on_gil_builds_and_the_reason_names_the_fix() -> None:
    assert classify("_x.abi3.so", target(free_threaded=False)).status is AbiStatus.LOADABLE
    reason = classify("_x.abi3.so", target()).reason
    assert reason is not None and "cp313t build is needed" in reason
    wrong = classify("_x.cpython-313-x86_64-linux-gnu.so", target()).reason
    assert wrong is not None and "'.cpython-313t-x86_64-linux-gnu.so', '.so'" in wrong


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_dist(site: Path, name: str, version: str, files: list[str]) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text("".join(f"{f},sha256=x,0\n" for f in files) + f"{info.name}/RECORD,,\n")


def test_names_ownership_and_folders_that_cannot_be_packages(tmp_path: Path) -> None:
    site = tmp_path / "site"
    touch(site / "pkg" / "sub" / f"_fast{FT_SUFFIX}")
    touch(site / f"top{FT_SUFFIX}")
    touch(site / "pkg.libs" / "libopenblas-1234.so")          # not a package: never imported
    touch(site / "pkg" / "__pycache__" / f"_x{FT_SUFFIX}")
    touch(site / "pkg" / "data-files" / f"_y{FT_SUFFIX}")
    touch(site / "loose" / f"_z{FT_SUFFIX}")                  # owned by no distribution
    touch(site / "pkg" / "libhelper.so.1.so")                 # no import name reaches it
    write_dist(site, "Pkg", "1.0", [f"pkg/sub/_fast{FT_SUFFIX}", "pkg/__init__.py", f"top{FT_SUFFIX}"])
    found = {f.module: f for f in find_extensions(target(), [str(site)])}
    assert set(found) == {"pkg.sub._fast", "top", "loose._z", None}
    assert str(found["pkg.sub._fast"].distribution) == "Pkg 1.0"
    assert str(found["top"].distribution) == "Pkg 1.0"
    assert found["loose._z"].distribution is None


def test_shadowing_by_suffix_priority_and_path_order(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    tagged = touch(first / "pkg" / f"_m{FT_SUFFIX}")
    bare = touch(first / "pkg" / "_m.so")
    later = touch(second / "pkg" / f"_m{FT_SUFFIX}")
    gil_built = touch(first / "pkg" / "_n.cpython-313-x86_64-linux-gnu.so")
    found = {f.path: f for f in find_extensions(target(), [str(first), str(second)])}
    assert found[str(tagged)].shadowed_by is None and found[str(tagged)].importable
    assert found[str(bare)].shadowed_by == str(tagged)
    assert found[str(later)].shadowed_by == str(tagged)
    assert found[str(gil_built)].shadowed_by is None and not found[str(gil_built)].importable


def test_pth_path_lines_are_followed_and_import_lines_never_run(tmp_path: Path) -> None:
    site, extra, sentinel = tmp_path / "site", tmp_path / "extra", tmp_path / "ran"
    touch(extra / "ext" / f"_e{FT_SUFFIX}")
    site.mkdir()
    (site / "paths.pth").write_text(f"# comment\n{extra}\n../missing-dir\n"
                                    f"import pathlib; pathlib.Path({str(sentinel)!r}).touch()\n")
    modules = {f.module for f in find_extensions(target(), [str(site)])}
    assert modules == {"ext._e"}
    assert not sentinel.exists()


def test_setuptools_editable_finder_mapping_is_read_statically(tmp_path: Path) -> None:
    site, src, sentinel = tmp_path / "site", tmp_path / "src" / "mypkg", tmp_path / "ran"
    touch(src / f"_speed{FT_SUFFIX}")
    finder = "__editable___mypkg_1_0_finder"
    site.mkdir()
    (site / "__editable__.mypkg-1.0.pth").write_text(f"import {finder}; {finder}.install()\n")
    (site / f"{finder}.py").write_text(
        f"import pathlib\npathlib.Path({str(sentinel)!r}).touch()\n"
        f"MAPPING: dict[str, str] = {{'mypkg': {str(src)!r}}}\nNAMESPACES = {{}}\n")
    write_dist(site, "mypkg", "1.0", ["__editable__.mypkg-1.0.pth", f"{finder}.py"])
    (found,) = find_extensions(target(), [str(site)])
    assert found.module == "mypkg._speed"
    assert str(found.distribution) == "mypkg 1.0"
    assert not sentinel.exists()


def test_search_path_orders_extra_folders_first_and_drops_missing(tmp_path: Path) -> None:
    site, extra = tmp_path / "site", tmp_path / "extra"
    site.mkdir()
    extra.mkdir()
    folders = search_path(target(site=str(site)), (str(extra), str(tmp_path / "missing")))
    assert folders == [os.path.realpath(extra), os.path.realpath(site)]


def test_owner_name_and_version_come_from_the_header_block_only(tmp_path: Path) -> None:
    site = tmp_path / "site"
    touch(site / "pkg" / f"_fast{FT_SUFFIX}")
    write_dist(site, "Pkg", "1.0", [f"pkg/_fast{FT_SUFFIX}"])
    # A long description that itself holds header-like lines must not be read as headers.
    body = "\n".join(["Name: not-this", "Version: 9.9"] + ["lorem ipsum " * 8] * 5000)
    (site / "Pkg-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: Pkg\nVersion: 1.0\nSummary: x\nLicense: MIT\n  folded\n\n" + body)
    [found] = find_extensions(target(), [str(site)])
    assert str(found.distribution) == "Pkg 1.0"


def test_owner_of_an_egg_info_install_is_read_from_pkg_info(tmp_path: Path) -> None:
    site = tmp_path / "site"
    touch(site / "egg" / f"_e{FT_SUFFIX}")
    info = site / "Egg-2.0-py3.13.egg-info"
    info.mkdir(parents=True)
    (info / "PKG-INFO").write_text("Metadata-Version: 1.1\r\nName: Egg\r\nVersion: 2.0\r\n\r\nName: no\r\n")
    (info / "SOURCES.txt").write_text(f"egg/_e{FT_SUFFIX}\nsetup.py\n")
    [found] = find_extensions(target(), [str(site)])
    assert str(found.distribution) == "Egg 2.0"


def test_owner_with_a_folded_name_falls_back_to_the_email_parser(tmp_path: Path) -> None:
    site = tmp_path / "site"
    touch(site / f"top{FT_SUFFIX}")
    write_dist(site, "Odd", "3.0", [f"top{FT_SUFFIX}"])
    (site / "Odd-3.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: Odd\n  Name\nVersion: 3.0\n")
    [found] = find_extensions(target(), [str(site)])
    [dist] = metadata.distributions(path=[str(site)])
    assert found.distribution is not None and "\n" in found.distribution.name
    assert (found.distribution.name, found.distribution.version) == (dist.metadata["Name"], dist.version)
