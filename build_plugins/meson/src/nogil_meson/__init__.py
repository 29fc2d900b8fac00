"""PEP 517 backend: meson-python, and the ``[tool.nogil]`` declaration checked and recorded.

meson has no Python plugins, so the integration has two halves. In ``meson.build`` a setup
block (``templates/nogil_meson_setup.build``) runs ``nogil-toolkit shim`` at configure time and
gives each extension a dependency that links the generated shim and renames its init. This
backend then delegates every hook to ``mesonpy`` and, after a wheel is built, checks that each
module ``[tool.nogil]`` covers carries the declaration and writes ``nogil-declaration.json``
into the wheel's ``.dist-info`` (see :mod:`nogil_meson.record`).

``pyproject.toml``::

    [build-system]
    requires = ["nogil-meson"]
    build-backend = "nogil_meson"

Editable wheels hold no extension binaries (meson-python builds them on import), so they are
passed through unchanged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn, Optional

from mesonpy import (
    build_editable,
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
)

from nogil_meson.audit_step import AuditFailed, build_wheel_with_audit
from nogil_meson.limited_api import limited_api_problem
from nogil_meson.record import RecordingError, record_declarations
from nogil_toolkit.config import ConfigError, load_config
from nogil_toolkit.console import error

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
]


def build_wheel(wheel_directory: str, config_settings: Optional[dict[str, Any]] = None,
                metadata_directory: Optional[str] = None) -> str:
    """mesonpy's wheel, then the declaration check and record (PEP 517 runs hooks in the project)."""
    try:
        config = load_config(os.curdir)
    except ConfigError as exc:
        _fail(f"invalid [tool.nogil] configuration\n{exc}", "pyproject.toml")
    problem = None if config is None else limited_api_problem(config.path)
    if problem is not None:
        _fail(problem, str(config.path))
    try:
        name = build_wheel_with_audit(wheel_directory, config_settings, metadata_directory, config)
    except AuditFailed as exc:
        _fail(exc.what.removeprefix("nogil: "), exc.where)
    if config is not None:
        try:
            record_declarations(Path(wheel_directory) / name, config)
        except RecordingError as exc:
            _fail(str(exc), str(config.path))
    return name


def _fail(message: str, where: str) -> NoReturn:
    """Report as meson-python does: one error on stderr and exit status 1, no traceback."""
    error(f"nogil: {message}", where)
    sys.stderr.flush()
    raise SystemExit(1)
