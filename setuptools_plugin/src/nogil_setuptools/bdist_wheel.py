"""A ``bdist_wheel`` that records the compiled declarations in the wheel's ``.dist-info``.

The record (``nogil-declaration.json``, see ``nogil_toolkit.wheel.record``) is written into
the dist-info folder just before the archive is made, so ``RECORD`` lists it with its hash
and size like every other file. Pure wheels get no record.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
from typing import Any

from setuptools.errors import SetupError

from nogil_toolkit.config import NogilConfig
from nogil_toolkit.wheel.record import RECORD_NAME, DeclarationRecord


@functools.lru_cache(maxsize=None)
def recording_bdist_wheel(base: type, config: NogilConfig) -> type:
    """A subclass of ``base`` (setuptools' or wheel's ``bdist_wheel``) that writes the record."""

    class bdist_wheel(base):  # type: ignore[valid-type,misc]
        nogil_config = config

        def finalize_options(self) -> None:
            _refuse_abi3_on_free_threaded(self.py_limited_api)
            super().finalize_options()

        def write_wheelfile(self, wheelfile_base: str, *args: Any, **kwargs: Any) -> None:
            super().write_wheelfile(wheelfile_base, *args, **kwargs)
            record = _record(self.distribution, self.nogil_config, self.skip_build)
            if record is not None:
                with open(os.path.join(wheelfile_base, RECORD_NAME), "w", encoding="utf-8", newline="\n") as out:
                    out.write(record.to_text())

    bdist_wheel.__qualname__ = f"nogil_setuptools.bdist_wheel[{base.__module__}.{base.__qualname__}]"
    return bdist_wheel


def _record(distribution: Any, config: NogilConfig, skip_build: bool) -> DeclarationRecord | None:
    """What the wheel's modules declare; ``None`` (no record) when none declares anything,
    as for a project without ``[tool.nogil]``: an empty record would claim a declaration
    that nothing in the wheel carries."""
    extensions = distribution.ext_modules or []
    if skip_build:
        # Nothing was compiled in this process; the same rules decide.
        declared = {e.name: d for e in extensions if (d := config.declaration_for(e.name)) is not None}
    else:
        declared = dict(getattr(distribution.get_command_obj("build_ext"), "nogil_declared", {}))
    if not declared:
        return None
    return DeclarationRecord(declared, config.thread_safe)


def _refuse_abi3_on_free_threaded(py_limited_api: Any) -> None:
    """Older setuptools and wheel releases tag such a wheel abi3 anyway: a wheel no interpreter
    can use. Refuse it whatever the backend's version."""
    if py_limited_api and sysconfig.get_config_var("Py_GIL_DISABLED") and sys.version_info < (3, 15):
        version = f"{sys.version_info[0]}{sys.version_info[1]}"
        raise SetupError(
            f"bdist_wheel --py-limited-api={py_limited_api} asks for an abi3 wheel, but free-threaded "
            f"CPython {sys.version_info[0]}.{sys.version_info[1]} cannot load abi3 modules (abi3t arrives in "
            f"3.15, PEP 803). Build this interpreter's wheel without the option: it will be tagged "
            f"cp{version}-cp{version}t.")
