"""Generate the module-init shim that compiles a GIL declaration into an extension module.

Shared by every build plugin (setuptools, meson, CMake): a plugin compiles the extension's
sources with ``-DPyInit_<name>=<alias>`` (:func:`rename_macro`) and adds the file written by
:func:`write_shim`, which defines the real ``PyInit_<name>`` around the original. The C is in
``templates/module_init_shim.c``; see the comments there for what it does at run time.

A module that also defines Python 3.15's export hook ``PyModExport_<name>`` (PEP 793) gets
a wrapper of the hook as well (``export_hook=True``, ``templates/export_hook_shim.c``), and its
sources are compiled with :func:`hook_rename_macro` too. The wrapper is only emitted for
modules known to define the hook: CPython 3.15 prefers an exported hook over ``PyInit_`` and
fails the import when it returns NULL, so a wrapper around a hook that does not exist would
break a module that only has ``PyInit_``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from nogil_toolkit import __version__
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.marker import format_marker

TEMPLATE = "module_init_shim.c"
HOOK_TEMPLATE = "export_hook_shim.c"
CXX_SUFFIXES = (".cpp", ".cc", ".cxx", ".c++", ".C")


@dataclass(frozen=True)
class ShimPlan:
    """How one extension module is rewired: which init symbol, renamed to what."""

    module: str
    declaration: GilDeclaration
    export_hook: bool = False
    """The module defines ``PyModExport_<name>`` too, and the shim wraps it."""

    @property
    def short_name(self) -> str:
        return self.module.rpartition(".")[2]

    @property
    def init_symbol(self) -> str:
        # PEP 489: non-ASCII module names use PyInitU_ with punycode; setuptools has no
        # support for them either, so refusing them here loses nothing real.
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.short_name):
            raise ValueError(f"extension module name {self.module!r} is not an ASCII identifier")
        return f"PyInit_{self.short_name}"

    @property
    def alias(self) -> str:
        """The renamed original init; the prefix keeps it out of any user's namespace."""
        return f"_nogil_toolkit_orig_{self.init_symbol}"

    def rename_macro(self) -> tuple[str, str]:
        """The ``(name, value)`` macro that renames the original init in the module's sources."""
        return (self.init_symbol, self.alias)

    @property
    def hook_symbol(self) -> str:
        """The 3.15 export hook (PEP 793); ASCII names only, as for :attr:`init_symbol`."""
        return f"PyModExport_{self.init_symbol[len('PyInit_'):]}"

    @property
    def hook_alias(self) -> str:
        return f"_nogil_toolkit_orig_{self.hook_symbol}"

    def hook_rename_macro(self) -> tuple[str, str]:
        """The ``(name, value)`` macro that renames the original export hook; harmless in
        sources that do not define one."""
        return (self.hook_symbol, self.hook_alias)

    def cython_macro(self) -> tuple[str, str]:
        """Cython >= 3.1 output reads this to fill its own ``Py_mod_gil`` slot; others ignore it."""
        return ("CYTHON_FREETHREADING_COMPATIBLE", "1" if self.declaration is GilDeclaration.NOT_USED else "0")

    def render(self) -> str:
        hook = ""
        if self.export_hook:
            hook = _template(HOOK_TEMPLATE).substitute(
                init=self.init_symbol, hook=self.hook_symbol, hook_alias=self.hook_alias,
                macro=self.declaration.c_macro)
        return _template(TEMPLATE).substitute(
            toolkit_version=__version__,
            module=self.module,
            init=self.init_symbol,
            hook=self.hook_symbol,
            alias=self.alias,
            declaration=self.declaration.value,
            macro=self.declaration.c_macro,
            marker=format_marker(self.module, self.declaration, __version__),
            export_hook=hook,
        )


def _template(name: str) -> Template:
    return Template(resources.files("nogil_toolkit.templates").joinpath(name).read_text("utf-8"))


def write_shim(plan: ShimPlan, directory: Path, cplusplus: bool = False) -> Path:
    """Write the shim for ``plan`` into ``directory``; C++ extensions get a ``.cpp`` file so
    that the same compiler and flags (``-std=c++17`` and the like) apply to it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{plan.module}.nogil_shim.{'cpp' if cplusplus else 'c'}"
    text = plan.render()
    # Rewrite only on change: distutils rebuilds when a source is newer than the target.
    if not path.exists() or path.read_text("utf-8") != text:
        path.write_text(text, "utf-8")
    return path


def is_cplusplus(sources: list[str], language: str | None) -> bool:
    return language == "c++" or any(s.endswith(CXX_SUFFIXES) for s in sources)
