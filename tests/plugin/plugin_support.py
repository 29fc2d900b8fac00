"""Helpers for the plugin tests on real projects: pinned sdists from PyPI, the one-file
change that declares a project, and what a built extension exports."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import tomlkit
from elftools.elf.elffile import ELFFile

from nogil_toolkit.marker import ELF_SECTION, Marker, iter_markers
from support import run

DECLARATION = "[tool.nogil]\nthread-safe = true\n"
PLUGIN = "nogil-setuptools"
# What a project without a [build-system] table gets: setuptools' own defaults plus the plugin.
BUILD_SYSTEM = f"""\
[build-system]
requires = ["setuptools>=64", "{PLUGIN}"]
build-backend = "setuptools.build_meta"
"""


def download_sdists(requirements: tuple[str, ...], out: Path) -> dict[str, Path]:
    """Each pinned ``name==version`` as its sdist archive. Only the named projects are forced
    to source: their build requirements may come as wheels, as they would for a user."""
    names = ",".join(r.partition("==")[0] for r in requirements)
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", names, "-d", out, *requirements],
        timeout=900)
    archives = {}
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        (archives[requirement],) = [p for p in out.glob("*.tar.gz")
                                    if p.name.lower().replace("_", "-") == f"{name.lower()}-{version}.tar.gz"]
    return archives


def unpack(archive: Path, dest: Path) -> Path:
    """A fresh source tree of ``archive`` under ``dest`` (each test builds its own copy)."""
    with tarfile.open(archive) as tar:
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (tree,) = [p for p in dest.iterdir() if p.is_dir()]
    return tree


def declare(project: Path, table: str = DECLARATION, *, build_requires: bool = True) -> None:
    """The whole change a user makes: the plugin in ``[build-system].requires`` (kept
    otherwise as the project wrote it) and ``[tool.nogil]``. With ``build_requires=False``
    only the table is added, as for a setup.py-only project built without isolation."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text("utf-8") if pyproject.exists() else ""
    if build_requires:
        document = tomlkit.parse(text)
        if "build-system" in document:
            document["build-system"]["requires"].append(PLUGIN)
            text = tomlkit.dumps(document)
        else:
            text = BUILD_SYSTEM + text
    pyproject.write_text(f"{text}\n{table}", "utf-8")


def exported_init_symbols(library: Path) -> set[str]:
    """Defined, non-local dynamic symbols mentioning ``PyInit``, read with pyelftools."""
    with library.open("rb") as stream:
        symbols = ELFFile(stream).get_section_by_name(".dynsym").iter_symbols()
        return {s.name for s in symbols
                if "PyInit" in s.name and s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["bind"] != "STB_LOCAL"}


def toolkit_markers(library: Path) -> list[Marker]:
    with library.open("rb") as stream:
        section = ELFFile(stream).get_section_by_name(ELF_SECTION)
        return list(iter_markers(section.data())) if section is not None else []
