"""The source audit of each extension declared ``not-used``, before ``build_ext`` compiles.

It runs once for all extensions, before setuptools starts compiling (and before ``-j N``
starts its threads), so the findings of one module stay together and ``build = "error"``
stops the build before anything was compiled. The audit reads what the compiler will read:
``ext.sources`` (a ``.pyx`` as written, or the C that Cython generated, which sends the audit
to the ``.pyx`` beside it), ``ext.depends``, and the project headers they include along
``ext.include_dirs``.
"""

from __future__ import annotations

from typing import Any, Sequence

from setuptools.errors import SetupError

from nogil_toolkit.audit.build import ModuleAudit, audit_module, failure_message, print_audit
from nogil_toolkit.config import ConfigError, NogilConfig


def audit_extensions(config: NogilConfig, extensions: Sequence[Any]) -> None:
    """Print each declared extension's findings; raise SetupError in ``error`` mode if any."""
    audits: list[ModuleAudit] = []
    for ext in extensions:
        try:
            audit = audit_module(config, ext.name, [*ext.sources, *(ext.depends or [])], ext.include_dirs or [])
        except ConfigError as exc:
            raise SetupError(str(exc)) from None
        if audit is not None:
            print_audit(audit)
            audits.append(audit)
    if any(audit.failed for audit in audits):
        what, where = failure_message(config, audits)
        raise SetupError(f"{what} ({where})")
