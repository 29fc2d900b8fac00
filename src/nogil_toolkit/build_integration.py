"""Complete a project's build integration in ``pyproject.toml``: the ``[build-system]`` table.

``[tool.nogil]`` is read by a build plugin, so a declaration does nothing until the plugin is
in the build environment. Each backend has its own integration: setuptools loads
``nogil-setuptools`` through an entry point once it is a build requirement; meson-python is
wrapped by the ``nogil_meson`` backend of ``nogil-meson``; scikit-build-core finds the CMake
module of ``nogil-cmake`` through its ``cmake.module`` entry point. What this module can do
exactly and safely in ``[build-system]`` it does, with tomlkit so the table keeps its layout;
what needs the project's own build files (``meson.build``, ``CMakeLists.txt``) it returns as
text for the user, since those are programs that no tool should rewrite by guessing.

A project without ``[build-system]`` is built by pip as if it had
``requires = ["setuptools>=40.8.0"]`` and ``build-backend = "setuptools.build_meta:__legacy__"``
(pip's documented fallback); the table written is exactly that plus the plugin, so the build
itself does not change. Like :mod:`nogil_toolkit.pyproject_edit`, the result is parsed again
and compared with what was meant before it is handed back.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Optional

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from tomlkit.items import Comment, Table

from nogil_toolkit.pyproject_edit import (DeclareError, parse_for_editing, parse_toml, uses_crlf, with_ending_of,
                                          written_with_dotted_keys)
from nogil_toolkit.tomlpos import locate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on the 3.9/3.10 CI interpreters
    import tomli as tomllib

BUILD_SYSTEM = "build-system"
PIP_FALLBACK_REQUIRES = "setuptools>=40.8.0"
PIP_FALLBACK_BACKEND = "setuptools.build_meta:__legacy__"
SETUPTOOLS_BACKENDS = ("setuptools.build_meta", PIP_FALLBACK_BACKEND)
MESONPY_BACKEND = "mesonpy"
NOGIL_MESON_BACKEND = "nogil_meson"
SCIKIT_BUILD_CORE_BACKEND = "scikit_build_core.build"

SETUPTOOLS_PLUGIN = "nogil-setuptools"
MESON_PLUGIN = "nogil-meson"
CMAKE_PLUGIN = "nogil-cmake"

CMAKE_TODO = """\
CMakeLists.txt must still apply the declaration to each extension module target:
    include(NogilToolkit)                         # after find_package(Python ...)
    nogil_declare(<target> <dotted.module.name>)  # once per module, e.g. nogil_declare(_speedups mypkg._speedups)"""


@dataclass(frozen=True)
class BuildIntegration:
    """The edited text, what changed in it, and what the user must still do by hand."""

    text: str
    changes: tuple[str, ...] = ()
    """One line per change, e.g. ``added "nogil-setuptools" to build-system.requires``."""
    todo: tuple[str, ...] = ()
    """Steps outside ``pyproject.toml`` (``meson.build``, ``CMakeLists.txt``), ready to print."""
    supported: bool = True
    """False for a backend the toolkit has no integration for: then nothing was changed."""


def integrate_build_system(text: str, project_dir: Path) -> BuildIntegration:
    """``text`` with ``[build-system]`` set up for the toolkit's plugin of its backend.

    ``project_dir`` is where ``meson.build`` or ``CMakeLists.txt`` are looked at, only to say
    whether the part the user must add by hand is already there. Raises DeclareError (with
    ``line:column``) for a ``[build-system]`` that is not what PEP 518 describes.
    """
    if uses_crlf(text):  # tomlkit writes new lines with LF: edit as LF, give the file back its CRLF
        result = integrate_build_system(text.replace("\r\n", "\n"), project_dir)
        return replace(result, text=result.text.replace("\n", "\r\n"))
    before = parse_toml(text)
    build_system = before.get(BUILD_SYSTEM)
    if build_system is None:
        return _add_fallback_table(text, before)
    if not isinstance(build_system, dict):
        raise DeclareError(f"{BUILD_SYSTEM} is not a table; fix it by hand first", _where(text, (BUILD_SYSTEM,)))
    requires = build_system.get("requires")
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise DeclareError(f"{BUILD_SYSTEM}.requires must be an array of requirement strings (PEP 518); "
                           "fix it by hand first", _where(text, (BUILD_SYSTEM, "requires") if requires is not None
                                                          else (BUILD_SYSTEM,)))
    backend = build_system.get("build-backend", PIP_FALLBACK_BACKEND)
    if not isinstance(backend, str):
        raise DeclareError(f"{BUILD_SYSTEM}.build-backend must be a string (PEP 517); fix it by hand first",
                           _where(text, (BUILD_SYSTEM, "build-backend")))
    if backend in SETUPTOOLS_BACKENDS:
        return _edit(text, before, SETUPTOOLS_PLUGIN, None, ())
    if backend in (MESONPY_BACKEND, NOGIL_MESON_BACKEND):
        todo = () if _mentions(project_dir / "meson.build", "nogil_toolkit") else (_meson_todo(),)
        return _edit(text, before, MESON_PLUGIN, NOGIL_MESON_BACKEND, todo)
    if backend == SCIKIT_BUILD_CORE_BACKEND:
        todo = () if _mentions(project_dir / "CMakeLists.txt", "nogil_declare") else (CMAKE_TODO,)
        return _edit(text, before, CMAKE_PLUGIN, None, todo)
    if "backend-path" in build_system and has_requirement(requires, "setuptools"):
        # An in-tree backend (frozenlist's, yarl's) that wraps setuptools.build_meta: the plugin
        # hooks into setuptools itself, so being installed beside it is all it needs.
        return _edit(text, before, SETUPTOOLS_PLUGIN, None, (_in_tree_todo(backend),))
    return BuildIntegration(text, supported=False, todo=(
        f'nogil-toolkit has no build integration for build-backend "{backend}"; [{BUILD_SYSTEM}] was left '
        "unchanged. Declare in the sources instead (Cython: freethreading_compatible=True; PyO3: "
        "#[pymodule(gil_used = false)]; pybind11: py::mod_gil_not_used(); nanobind: FREE_THREADED), or let "
        "your build call `nogil-toolkit shim`, then check the wheel with `nogil-toolkit wheel verify`.",))


def has_requirement(requires: list[str], name: str) -> bool:
    """Whether ``requires`` names ``name`` in any spelling, with any version or marker."""
    wanted = canonicalize_name(name)
    for requirement in requires:
        try:
            if canonicalize_name(Requirement(requirement).name) == wanted:
                return True
        except InvalidRequirement:
            continue  # not ours to judge; the frontend reports it
    return False


def _add_fallback_table(text: str, before: Mapping[str, Any]) -> BuildIntegration:
    document = parse_for_editing(text if text.strip() else "")  # a blank file's newlines say nothing
    table = tomlkit.table()
    table.append("requires", [PIP_FALLBACK_REQUIRES, SETUPTOOLS_PLUGIN])
    table.append("build-backend", PIP_FALLBACK_BACKEND)
    table.append(None, tomlkit.nl())
    position = _first_table_position(document)
    if position < len(document.body):
        # tomlkit's only way to put a table before others; a change in it would fail _check_meaning.
        document._insert_at(position, BUILD_SYSTEM, table)
    else:
        if text.strip() and not text.endswith("\n\n"):
            document.append(None, tomlkit.nl())  # a blank line before the new table
        document.append(BUILD_SYSTEM, table)
    result = with_ending_of(text, document.as_string())
    expected = {BUILD_SYSTEM: {"requires": [PIP_FALLBACK_REQUIRES, SETUPTOOLS_PLUGIN],
                               "build-backend": PIP_FALLBACK_BACKEND}, **before}
    _check_meaning(expected, result)
    return BuildIntegration(result, (
        f"added [{BUILD_SYSTEM}] with requires = {_toml(expected[BUILD_SYSTEM]['requires'])} and "
        f'build-backend = "{PIP_FALLBACK_BACKEND}" (how pip builds a project without one, plus the plugin)',))


def _first_table_position(document: tomlkit.TOMLDocument) -> int:
    """Where a new first table goes: before the first ``[header]`` and the comment lines that
    lead into it; top-level (dotted) keys stay before it, as TOML requires."""
    body = document.body
    first = next((i for i, (key, item) in enumerate(body) if key is not None and isinstance(item, Table)
                  and not written_with_dotted_keys(item)), len(body))
    while first > 0 and isinstance(body[first - 1][1], Comment):
        first -= 1
    return first


def _edit(text: str, before: Mapping[str, Any], plugin: str, backend: Optional[str],
          todo: tuple[str, ...]) -> BuildIntegration:
    expected = copy.deepcopy(dict(before))
    build_system = expected[BUILD_SYSTEM]
    changes = []
    document = parse_for_editing(text)
    table = document[BUILD_SYSTEM]
    if not has_requirement(build_system["requires"], plugin):
        table["requires"].append(plugin)
        build_system["requires"].append(plugin)
        changes.append(f'added "{plugin}" to {BUILD_SYSTEM}.requires')
    if backend is not None and build_system.get("build-backend") != backend:
        changes.append(f'set {BUILD_SYSTEM}.build-backend = "{backend}" (was "{build_system["build-backend"]}": '
                       f"{plugin} wraps it)")
        table["build-backend"] = backend
        build_system["build-backend"] = backend
    if not changes:
        return BuildIntegration(text, (), todo)
    result = document.as_string()
    _check_meaning(expected, result)
    return BuildIntegration(result, tuple(changes), todo)


def _check_meaning(expected: Mapping[str, Any], result: str) -> None:
    try:
        after = tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        raise DeclareError(f"the edited [{BUILD_SYSTEM}] would not be valid TOML ({exc}); nothing was written. "
                           "This is a bug in nogil-toolkit or tomlkit: please report it") from exc
    if after != expected:
        raise DeclareError(f"the edited text would not mean what was asked (tomlkit {tomlkit.__version__} laid "
                           f"[{BUILD_SYSTEM}] out unexpectedly); nothing was written. Please report this with "
                           "your pyproject.toml")


def _in_tree_todo(backend: str) -> str:
    return (f'build-backend "{backend}" is the project\'s own (backend-path); as {BUILD_SYSTEM}.requires names '
            f"setuptools, it was taken to build through setuptools, where {SETUPTOOLS_PLUGIN} declares. Check a "
            "built wheel with `nogil-toolkit wheel verify`.")


def _meson_todo() -> str:
    block = resources.files("nogil_toolkit.templates").joinpath("nogil_meson_setup.build").read_text(encoding="utf-8")
    return ("meson.build must still apply the declaration: paste this block after "
            "`py = import('python').find_installation(...)`, list your extension modules in nogil_modules, and "
            "add `dependencies: nogil['<dotted.module.name>']` to each py.extension_module():\n"
            + "\n".join(f"    {line}" if line else "" for line in block.splitlines()))


def _mentions(path: Path, word: str) -> bool:
    """Whether a build file already uses the toolkit; an unreadable one counts as not."""
    try:
        return path.is_file() and word in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _where(text: str, key: tuple[str, ...]) -> Optional[str]:
    position = locate(text, key)
    return f"{position[0]}:{position[1]}" if position else None


def _toml(value: Any) -> str:
    return tomlkit.item(value).as_string()
