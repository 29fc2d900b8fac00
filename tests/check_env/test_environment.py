"""Finding extension files: names, ABI judgement, ownership, editable installs, shadowing.

Real directory trees with real metadata files; the binaries' contents do not matter here
(enumeration never reads them), so they are empty files."""

from __future__ import annotations

import json
import os
import threading
from importlib import metadata
from pathlib import Path
from typing import Callable, TypeVar

import pytest

from nogil_toolkit.abi import AbiStatus, classify
from nogil_toolkit.environment import find_extensions, metadata_folders, scanned_folders
from nogil_toolkit.target import TargetInterpreter, query_target, search_path
from support import gil_python, nested, run

T = TypeVar("T")

FT_SUFFIX = ".cpython-313t-x86_64-linux-gnu.so"


def target(free_threaded: bool = True, site: str = "/nonexistent", version: tuple[int, int] = (3, 13),
           pth_encoding: str = "utf-8") -> TargetInterpreter:
    tag = "313t" if free_threaded else "313"
    return TargetInterpreter.from_json({
        "executable": "/usr/bin/python3.13", "implementation": "cpython", "version": [*version, 5],
        "free_threaded": free_threaded,
        "extension_suffixes": [f".cpython-{tag}-x86_64-linux-gnu.so", ".abi3.so", ".so"],
        "platform": "linux-x86_64", "site_packages": [site], "user_site": "/nonexistent-user",
        "stdlib_extensions": "", "venv": None, "pth_encoding": pth_encoding,
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
    modules = {f.module for f in find_extensions(target(site=str(site)), [str(site)])}
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
    (found,) = find_extensions(target(site=str(site)), [str(site)])
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


def test_metadata_folders_are_those_importlib_metadata_finds_in_its_order(tmp_path: Path) -> None:
    """The owners come from the folders importlib.metadata's finder would give, read without
    importing it: mixed case, several versions of one project, egg-info, an .egg's EGG-INFO,
    files that only look like metadata folders, and the site-packages this suite runs in."""
    site, egg = tmp_path / "site", tmp_path / "site" / "Old-1.0-py3.13.egg"
    for name in ("zeta-1.0.dist-info", "Alpha_Pkg-2.0.dist-info", "alpha.pkg-1.0.dist-info", "Beta-0.1.egg-info",
                 "ZETA-2.0.DIST-INFO", "plain", "gamma-1.0.dist-info.bak"):
        (site / name).mkdir(parents=True)
    (site / "file-1.0.dist-info").write_text("not a folder")
    (egg / "EGG-INFO").mkdir(parents=True)
    real_site = Path(metadata.distribution("pytest")._path).parent  # type: ignore[attr-defined]
    for folders in ([str(site)], [str(egg)], [str(site), str(egg), str(tmp_path / "missing")], [str(real_site)]):
        expected = [os.fspath(d._path) for d in metadata.distributions(path=folders)  # type: ignore[attr-defined]
                    if os.path.isdir(d._path)]  # type: ignore[attr-defined]
        assert metadata_folders(folders) == expected, folders
    assert len(metadata_folders([str(site)])) == 5


def within(seconds: float, work: Callable[[], T]) -> T:
    """``work()``, failing (not hanging) the test if it blocks: it runs in a daemon thread."""
    outcome: dict[str, object] = {}

    def call() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def test_symlinked_package_folders_and_files_are_followed(tmp_path: Path) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    touch(elsewhere / "pkg" / "sub" / f"_inner{FT_SUFFIX}")
    real_top = touch(elsewhere / f"real_top{FT_SUFFIX}")
    site.mkdir()
    (site / "pkg").symlink_to(elsewhere / "pkg", target_is_directory=True)
    (site / f"top{FT_SUFFIX}").symlink_to(real_top)
    (site / f"dangling{FT_SUFFIX}").symlink_to(tmp_path / "missing.so")  # the import system cannot load it
    write_dist(site, "Linked", "2.0", [f"pkg/sub/_inner{FT_SUFFIX}"])
    found = {f.module: f for f in find_extensions(target(), [str(site)])}
    assert set(found) == {"pkg.sub._inner", "top"}
    assert found["pkg.sub._inner"].path == str(site / "pkg" / "sub" / f"_inner{FT_SUFFIX}")
    assert str(found["pkg.sub._inner"].distribution) == "Linked 2.0"


def test_symlink_loops_and_second_names_are_walked_once(tmp_path: Path) -> None:
    site = tmp_path / "site"
    touch(site / "pkg" / f"_x{FT_SUFFIX}")
    touch(site / "other" / f"_y{FT_SUFFIX}")
    (site / "pkg" / "up").symlink_to("..")              # a link to an ancestor
    (site / "pkg" / "me").symlink_to(".")                # a link to itself
    (site / "pkg" / "alias").symlink_to("../other")      # a second name for a folder of the tree
    (site / "a").mkdir()
    (site / "b").mkdir()
    (site / "a" / "to_b").symlink_to("../b")             # a cycle through two links
    (site / "b" / "to_a").symlink_to("../a")
    found = sorted(f.module or "" for f in within(30, lambda: find_extensions(target(), [str(site)])))
    assert found == ["other._y", "pkg._x"]


def test_link_fan_out_is_bounded(tmp_path: Path) -> None:
    """Each level links twice to the next: 2**24 paths, 25 folders."""
    site = tmp_path / "site"
    levels = [site / f"level{i}" for i in range(25)]
    for level in levels:
        level.mkdir(parents=True)
    for here, below in zip(levels, levels[1:]):
        (here / "left").symlink_to(below)
        (here / "right").symlink_to(below)
    touch(levels[-1] / f"_deep{FT_SUFFIX}")
    found = within(60, lambda: find_extensions(target(), [str(site)]))
    assert [f.module for f in found] == ["level24._deep"]


def test_a_folder_nested_1200_deep_is_walked(tmp_path: Path) -> None:
    site = tmp_path / "site"
    with nested(site, 1200) as deep:
        touch(deep / f"_bottom{FT_SUFFIX}")
        [found] = find_extensions(target(), [str(site)])
    assert found.module == ".".join(["d"] * 1200 + ["_bottom"])


def test_fifos_are_never_opened(tmp_path: Path) -> None:
    """A FIFO where a file should be: opening it for reading would wait for a writer forever.
    The import system skips a FIFO named like a module (it is not a regular file), ``site``
    itself would hang on a FIFO ``.pth``; here each is skipped."""
    site = tmp_path / "site"
    touch(site / "pkg" / f"_real{FT_SUFFIX}")
    os.mkfifo(site / "pkg" / f"_fifo{FT_SUFFIX}")
    os.mkfifo(site / "paths.pth")
    info = site / "Fifo-1.0.dist-info"
    info.mkdir()
    os.mkfifo(info / "RECORD")
    os.mkfifo(info / "METADATA")
    egg = site / "Egg-1.0.egg-info"
    egg.mkdir()
    os.mkfifo(egg / "PKG-INFO")
    os.mkfifo(egg / "installed-files.txt")
    (site / "__editable__.e-1.0.pth").write_text("import __editable___e_1_0_finder; __editable___e_1_0_finder.install()\n")
    os.mkfifo(site / "__editable___e_1_0_finder.py")
    where = target(site=str(site))
    found = within(30, lambda: find_extensions(where, [str(site)]))
    assert [f.module for f in found] == ["pkg._real"]
    assert within(30, lambda: scanned_folders(where, [str(site)])) == [str(site)]


def test_metadata_in_other_encodings_or_empty(tmp_path: Path) -> None:
    site = tmp_path / "site"
    touch(site / "latin" / f"_l{FT_SUFFIX}")
    touch(site / "record" / f"_r{FT_SUFFIX}")
    touch(site / "empty" / f"_e{FT_SUFFIX}")
    write_dist(site, "Latin", "1.0", [f"latin/_l{FT_SUFFIX}"])
    (site / "Latin-1.0.dist-info" / "METADATA").write_bytes(b"Metadata-Version: 2.1\nName: Caf\xe9\nVersion: 1.0\n")
    write_dist(site, "Record", "2.0", [])
    (site / "Record-2.0.dist-info" / "RECORD").write_bytes(
        b"data/caf\xe9.txt,sha256=x,1\n" + f"record/_r{FT_SUFFIX},sha256=x,0\n".encode())
    write_dist(site, "empty_meta", "3.0", [f"empty/_e{FT_SUFFIX}"])
    (site / "empty_meta-3.0.dist-info" / "METADATA").write_bytes(b"")
    owners = {f.module: str(f.distribution) for f in find_extensions(target(), [str(site)])}
    assert owners == {"latin._l": "Caf\ufffd 1.0", "record._r": "Record 2.0", "empty._e": "empty_meta 3.0"}


def test_non_ascii_package_names_are_walked(tmp_path: Path) -> None:
    site = tmp_path / "site"
    touch(site / "café" / f"_c{FT_SUFFIX}")
    assert [f.module for f in find_extensions(target(), [str(site)])] == ["café._c"]


def test_pth_files_of_path_folders_are_not_read(tmp_path: Path) -> None:
    """``site`` reads the .pth files of site folders only; a ``--path`` folder is PYTHONPATH."""
    site, extra, linked = tmp_path / "site", tmp_path / "extra", tmp_path / "linked"
    touch(linked / "ext" / f"_e{FT_SUFFIX}")
    for folder in (site, extra):
        folder.mkdir()
    (extra / "x.pth").write_text(f"{linked}\n")
    assert find_extensions(target(site=str(site)), [str(extra), str(site)]) == []


# A .pth file exercising every rule of site.addpackage: comments, blank and whitespace-only
# lines, import lines (harmless ones: the real site runs them), leading whitespace that is part
# of the path, trailing whitespace that is not, a NUL byte, a BOM, \r and \x0c (a line break for
# str.splitlines, not for the text files of 3.12 and earlier), relative and absolute paths.
_PTH_CASE = (b"\xef\xbb\xbfbom\n# comment\n#hash\n\n   \n  lead\ntrail  \t\nimport os\nimport\tsys\n"
             b"importnot\nnul\x00here\r\ncr\rff\x0cafter\n../outside\n%(abs)s\n  import os\n")
_PTH_DIRS = ("bom", "\ufeffbom", "#hash", "  lead", "lead", "trail", "importnot", "nul", "cr", "ff", "after",
             "ff\x0cafter", "  import os", "import os")


@pytest.mark.parametrize("python", ["3.9", "3.10", "3.11", "3.12", "3.13", "3.13t"])
def test_pth_lines_are_read_as_the_real_site_reads_them(tmp_path: Path, python: str, ft_python: str) -> None:
    """The oracle is the interpreter's own ``site.addsitedir``."""
    executable = ft_python if python.endswith("t") else gil_python(int(python.split(".")[1]))
    assert executable, f"no CPython {python} on this machine"
    site, outside, absolute = tmp_path / "site", tmp_path / "outside", tmp_path / "absolute"
    for name in _PTH_DIRS:
        (site / name).mkdir(parents=True)
    outside.mkdir()
    absolute.mkdir()
    (site / "case.pth").write_bytes(_PTH_CASE % {b"abs": str(absolute).encode()})
    added = run([executable, "-I", "-S", "-c", "import json, site, sys; before = list(sys.path); "
                 f"site.addsitedir({str(site)!r}); print(json.dumps(sys.path[len(before):]))"]).stdout
    expected = [os.path.realpath(p) for p in json.loads(added) if os.path.isdir(p)]
    where = query_target(executable)._replace(site_packages=(str(site),))
    assert scanned_folders(where, [str(site)]) == expected
    assert len(expected) > 5


@pytest.mark.parametrize("version", [(3, 12), (3, 13)])
def test_pth_in_the_locale_encoding(tmp_path: Path, version: tuple[int, int]) -> None:
    """Not UTF-8: 3.13 falls back to the locale's encoding, earlier versions only use it."""
    site = tmp_path / "site"
    (site / "café").mkdir(parents=True)
    (site / "latin.pth").write_bytes(b"caf\xe9\n")
    assert scanned_folders(target(site=str(site), version=version, pth_encoding="iso8859-1"), [str(site)]) == [
        str(site), str(site / "café")]


def test_pth_that_site_could_not_decode_still_counts(tmp_path: Path) -> None:
    """Where the target's own decoding fails, every line still counts: a folder too many is
    checked, never one too few."""
    site = tmp_path / "site"
    (site / "plain").mkdir(parents=True)
    (site / "bad.pth").write_bytes(b"\xff\xfe junk\nplain\n")
    assert scanned_folders(target(site=str(site), pth_encoding="ascii"), [str(site)]) == [str(site), str(site / "plain")]


@pytest.mark.parametrize("python", ["3.9", "3.13t"])
def test_target_facts_survive_paths_in_any_encoding(tmp_path: Path, python: str, ft_python: str) -> None:
    """The target writes its facts as JSON without importing ``json`` (half of its start-up): a
    path that is not ASCII, holds quotes and backslashes, or is not even UTF-8 (a byte that
    only a surrogate escape keeps) comes back as ``os.fsdecode`` names it."""
    executable = ft_python if python.endswith("t") else gil_python(int(python.split(".")[1]))
    assert executable, f"no CPython {python} on this machine"
    folder = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xc3\xa9 \xf0\x9f\x90\x8d \xe9 \"q\\ \x01"))
    folder.mkdir()
    link = folder / "python"
    link.symlink_to(executable)
    facts = query_target(str(link))
    assert facts.executable == str(link)
    assert facts.version[:2] == ((3, 9) if python == "3.9" else (3, 13))
