"""A ``build_ext`` that compiles each extension's GIL declaration into its module init.

For each extension with a declaration it adds the generated shim (see
``nogil_toolkit.shim``) to the sources, renames the original ``PyInit_<name>`` with a macro,
and passes the declaration on to Cython's generated C. The extension object is restored
after its build, so repeated builds (``build_ext --inplace`` then ``bdist_wheel``) never
stack shims.
"""

from __future__ import annotations

import functools
import sys
import sysconfig
from pathlib import Path
from typing import Any

from setuptools.errors import SetupError

from nogil_toolkit.config import ConfigError, NogilConfig, unmatched_overrides_error
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.shim import ShimPlan, is_cplusplus, write_shim

LIMITED_API_MACRO = "Py_LIMITED_API"


@functools.lru_cache(maxsize=None)
def declaring_build_ext(base: type, config: NogilConfig) -> type:
    """A subclass of ``base`` (whatever ``build_ext`` the project uses) that declares."""

    class build_ext(base):  # type: ignore[valid-type,misc]
        nogil_config = config

        def initialize_options(self) -> None:
            super().initialize_options()
            self.nogil_declared: dict[str, GilDeclaration] = {}
            """What each module was built to declare, for the wheel's metadata."""

        def build_extensions(self) -> None:
            _check_extensions(self.nogil_config, self.extensions)
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
            shim = write_shim(plan, Path(self.build_temp) / "nogil-shims", is_cplusplus(ext.sources, ext.language))
            saved = (ext.sources, ext.define_macros, ext.extra_link_args)
            ext.sources = [*ext.sources, str(shim)]
            ext.define_macros = [*ext.define_macros, plan.rename_macro(), plan.cython_macro()]
            if sys.platform == "darwin":
                # ld64 does not take visibility from a hidden reference, as ELF linkers do.
                ext.extra_link_args = [*(ext.extra_link_args or []), f"-Wl,-unexported_symbol,_{plan.alias}"]
            try:
                super().build_extension(ext)
            finally:
                ext.sources, ext.define_macros, ext.extra_link_args = saved
            self.nogil_declared[ext.name] = declaration
            self.announce(f"nogil: {ext.name} declares {declaration.c_macro} at module init", level=2)

    build_ext.__qualname__ = f"nogil_setuptools.build_ext[{base.__module__}.{base.__qualname__}]"
    return build_ext


def _check_extensions(config: NogilConfig, extensions: list[Any]) -> None:
    """Fail before compiling anything when the build cannot honour the configuration."""
    problems = []
    error = unmatched_overrides_error(config, (ext.name for ext in extensions))
    if error is not None:
        problems.append(str(error))
    if sysconfig.get_config_var("Py_GIL_DISABLED") and sys.version_info < (3, 15):
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        for ext in extensions:
            if _defines_limited_api(ext):
                problems.append(
                    f"extension {ext.name!r} defines {LIMITED_API_MACRO} (the stable ABI, abi3), which "
                    f"free-threaded CPython {version} can neither compile nor load: abi3 modules only load "
                    f"on GIL builds, and free-threaded builds get a stable ABI (abi3t, PEP 803) in 3.15. "
                    f"Define {LIMITED_API_MACRO} only when sysconfig.get_config_var('Py_GIL_DISABLED') is "
                    f"false, so this interpreter builds a version-specific cp{version.replace('.', '')}t module.")
    if problems:
        raise SetupError("nogil: " + "\n".join(problems))


def _defines_limited_api(ext: Any) -> bool:
    flags = (arg.lstrip("-/") for arg in ext.extra_compile_args or ())
    return (any(name == LIMITED_API_MACRO for name, *_ in ext.define_macros)
            or any(flag == f"D{LIMITED_API_MACRO}" or flag.startswith(f"D{LIMITED_API_MACRO}=") for flag in flags))
