"""setuptools integration of nogil-toolkit: ``[tool.nogil]`` compiled into module init.

Activation is by entry point (``setuptools.finalize_distribution_options``), as
setuptools-scm and setuptools-rust do: listing ``nogil-setuptools`` in
``[build-system].requires`` is the whole integration, with no ``setup.py`` edit.

Without a declaration (no ``[tool.nogil]`` table, an empty one, or one holding only the
environment check's policy) this module returns at once and setuptools runs exactly as it
would without the plugin: same compiler commands, no record in the wheel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from setuptools.dist import Distribution
from setuptools.errors import SetupError

from nogil_toolkit.config import ConfigError, NogilConfig, load_config
from nogil_setuptools.bdist_wheel import recording_bdist_wheel
from nogil_setuptools.build_ext import declaring_build_ext

__all__ = ["finalize_distribution_options"]

_WRAPPERS = {"build_ext": declaring_build_ext, "bdist_wheel": recording_bdist_wheel}


def finalize_distribution_options(dist: Distribution) -> None:
    """Entry point: read ``[tool.nogil]`` and, if present, make ``build_ext`` declare."""
    project = Path(getattr(dist, "src_root", None) or os.curdir)
    try:
        config = load_config(project)
    except ConfigError as exc:
        # setup() turns SetupError into "error in <name> setup command: ..." and exit 1.
        raise SetupError(str(exc)) from None
    if config is None or (config.thread_safe is None and not config.overrides):
        return
    dist.get_command_class = _declaring_command_class(dist.get_command_class, config)  # type: ignore[method-assign]


def _declaring_command_class(resolve: Callable[[str], Any], config: NogilConfig) -> Callable[[str], Any]:
    """Wrap command resolution rather than ``dist.cmdclass``: a ``build_ext`` set later by
    ``setup.py``, ``[tool.setuptools.cmdclass]``, Cython or pybind11 is wrapped all the same."""

    def get_command_class(command: str) -> Any:
        cls = resolve(command)
        wrap = _WRAPPERS.get(command)
        return wrap(cls, config) if wrap else cls

    return get_command_class
