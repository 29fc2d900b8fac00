"""A ``build_ext`` that compiles each extension's GIL declaration into its module init.

For each extension with a declaration it renames the original ``PyInit_<name>`` with a
macro, passes the declaration on to Cython's generated C, and links in the generated shim
(see ``nogil_toolkit.shim``) that defines the real ``PyInit_<name>``.

The shim never appears in ``ext.sources``: projects' own ``build_ext`` subclasses walk the
sources (msgpack derives a ``.pyx`` name from each one, others cythonize on demand or set
per-file flags), and a file they did not write breaks them. It is compiled here, with the
same compiler object and the extension's own macros, include dirs and compile arguments,
and handed to the link step as an object in ``ext.extra_objects``. Every attribute changed
on the extension is restored after its build, so repeated builds (``build_ext --inplace``
then ``bdist_wheel``) never stack shims, and extensions built in parallel (``-j``) never
share state: each thread works on its own extension.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
from dataclasses import replace
from pathlib import Path
from typing import Any

from setuptools.errors import LinkError, SetupError

from nogil_toolkit.config import ConfigError, NogilConfig, unmatched_overrides_error
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.export_hooks import exports, has_hook_wrapper, needs_hook_wrapper
from nogil_toolkit.shim import ShimPlan, is_cplusplus, write_shim
from nogil_toolkit.stable_abi import limited_api_refusal
from nogil_setuptools.audit_step import audit_extensions
from nogil_setuptools.object_dirs import PerExtensionBuildTemp

try:
    from setuptools.modified import newer_group
except ImportError:  # pragma: no cover - setuptools < 69, which still has the old module
    from setuptools._distutils.dep_util import newer_group

LIMITED_API_MACRO = "Py_LIMITED_API"


@functools.lru_cache(maxsize=None)
def declaring_build_ext(base: type, config: NogilConfig) -> type:
    """A subclass of ``base`` (whatever ``build_ext`` the project uses) that declares."""

    class build_ext(PerExtensionBuildTemp, base):  # type: ignore[valid-type,misc]
        nogil_config = config

        def initialize_options(self) -> None:
            super().initialize_options()
            self.nogil_declared: dict[str, GilDeclaration] = {}
            """What each module was built to declare, for the wheel's metadata."""

        def build_extensions(self) -> None:
            _check_extensions(self.nogil_config, self.extensions)
            audit_extensions(self.nogil_config, self.extensions)
            super().build_extensions()

        def build_extension(self, ext: Any) -> None:
            try:
                declaration = self.nogil_config.declaration_for(ext.name)
            except ConfigError as exc:
                raise SetupError(str(exc)) from None
            if declaration is None:
                super().build_extension(ext)
                return
            plan = ShimPlan(ext.name, declaration)
            library = Path(self.get_ext_fullpath(ext.name))
            up_to_date = not newer_group([*ext.sources, *(ext.depends or [])], str(library), missing="newer")
            if not self.force and up_to_date and has_hook_wrapper(library, plan):
                plan = replace(plan, export_hook=True)
            try:
                self._nogil_build(ext, plan)
            except LinkError:
                if not self._is_plain_library(ext, plan):
                    raise
                return
            if needs_hook_wrapper(library, plan):  # a 3.15 PyModExport_ hook: see export_hooks.py
                self._nogil_build(ext, replace(plan, export_hook=True))
            self.nogil_declared[ext.name] = declaration
            self.announce(f"nogil: {ext.name} declares {declaration.c_macro} at module init", level=2)

        def _is_plain_library(self, ext: Any, plan: ShimPlan) -> bool:
            """After the link with the shim failed: whether ``ext`` is a shared library that is no
            Python module (pycryptodome builds its C for ctypes as ``Extension`` objects, with
            no ``PyInit_``), which then links without the shim and is left undeclared.

            The shim's one new need at link time is the renamed original init, so a library
            that links without it and exports no ``PyInit_<name>`` lacked exactly that. Any
            other failure links no better without the shim, and is raised as it was."""
            self.announce(f"nogil: {ext.name} did not link with its shim; building it without", level=2)
            super().build_extension(ext)
            if plan.init_symbol in exports(Path(self.get_ext_fullpath(ext.name))):
                return False
            self.warn(f"nogil: {ext.name} defines no {plan.init_symbol}: it is a shared library, not a Python "
                      "extension module, so it is built as it is and declares nothing (the linker error above "
                      "was the shim's call of the missing init)")
            return True

        def _nogil_build(self, ext: Any, plan: ShimPlan) -> None:
            """Build ``ext`` with the shim of ``plan``."""
            saved = (ext.define_macros, ext.extra_objects, ext.extra_link_args, ext.depends)
            with self.nogil_own_build_temp(ext):
                try:
                    ext.define_macros = [*ext.define_macros, plan.rename_macro(), plan.hook_rename_macro(),
                                         plan.cython_macro()]
                    shim_object, shim_source = _compile_shim(self, ext, plan)
                    ext.extra_objects = [*(ext.extra_objects or []), shim_object]
                    # A changed declaration rewrites the shim source: the module must be relinked.
                    ext.depends = [*(ext.depends or []), shim_source]
                    if sys.platform == "darwin":
                        # ld64 does not take visibility from a hidden reference, as ELF linkers do.
                        hidden = [plan.alias, *([plan.hook_alias] if plan.export_hook else [])]
                        ext.extra_link_args = [*(ext.extra_link_args or []),
                                               *(f"-Wl,-unexported_symbol,_{name}" for name in hidden)]
                    super().build_extension(ext)
                finally:
                    ext.define_macros, ext.extra_objects, ext.extra_link_args, ext.depends = saved

    build_ext.__qualname__ = f"nogil_setuptools.build_ext[{base.__module__}.{base.__qualname__}]"
    return build_ext


def _compile_shim(command: Any, ext: Any, plan: ShimPlan) -> tuple[str, str]:
    """Write and compile the shim of ``ext``; return its object file and its source.

    It is compiled as distutils compiles the extension's own sources: ``command.compiler``
    (whatever a project or pybind11's ``ParallelCompile`` made of it; it knows the object
    suffix and how to spell a macro, ``-D`` or ``/D``), the extension's macros with the
    rename, its include dirs and its ``extra_compile_args``, which carry a C++ standard for
    C++ extensions (hence a C++ shim there). Each extension gets its own object, named after
    the module, so extensions sharing sources never share a shim. The object goes beside its
    source, already in the extension's own ``build_temp``: an ``output_dir`` would be put in
    front of the source's path again, doubling a path that Windows limits to 260 characters."""
    shim = write_shim(plan, Path(command.build_temp) / "nogil-shims", is_cplusplus(ext.sources, ext.language))
    (shim_object,) = command.compiler.object_filenames([str(shim)])
    if not command.force and os.path.exists(shim_object) and not _extension_outdated(command, ext, str(shim)):
        return shim_object, str(shim)
    macros = [*ext.define_macros, *((name,) for name in ext.undef_macros)]
    (shim_object,) = command.compiler.compile(
        [str(shim)], macros=macros, include_dirs=ext.include_dirs,
        debug=command.debug, extra_postargs=ext.extra_compile_args or [], depends=ext.depends)
    return shim_object, str(shim)


def _extension_outdated(command: Any, ext: Any, shim: str) -> bool:
    """distutils' own up-to-date test (a source missing yet, such as C that a project's
    ``build_extension`` generates, counts as newer): recompile the shim when the module will
    be relinked, and not on every no-op rebuild."""
    sources = [*ext.sources, *(ext.depends or []), shim]
    return bool(newer_group(sources, command.get_ext_fullpath(ext.name), missing="newer"))


def _check_extensions(config: NogilConfig, extensions: list[Any]) -> None:
    """Fail before compiling anything when the build cannot honour the configuration."""
    problems = []
    error = unmatched_overrides_error(config, (ext.name for ext in extensions))
    if error is not None:
        problems.append(str(error))
    refusal = limited_api_refusal(sys.version_info[:2], bool(sysconfig.get_config_var("Py_GIL_DISABLED")))
    if refusal is not None:
        version = f"{sys.version_info[0]}{sys.version_info[1]}"
        for ext in extensions:
            if _defines_limited_api(ext):
                problems.append(
                    f"extension {ext.name!r} defines {LIMITED_API_MACRO} {refusal}. Define {LIMITED_API_MACRO} "
                    f"only when sysconfig.get_config_var('Py_GIL_DISABLED') is false, so this interpreter "
                    f"builds a version-specific cp{version}t module.")
    if problems:
        raise SetupError("\n".join(problems))


def _defines_limited_api(ext: Any) -> bool:
    flags = (arg.lstrip("-/") for arg in ext.extra_compile_args or ())
    return (any(name == LIMITED_API_MACRO for name, *_ in ext.define_macros)
            or any(flag == f"D{LIMITED_API_MACRO}" or flag.startswith(f"D{LIMITED_API_MACRO}=") for flag in flags))
