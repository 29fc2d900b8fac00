"""Static inspection of extension modules: what does a binary declare about the GIL?

The inspector reads a shared library (ELF, PE or Mach-O) without loading it and answers
with a :class:`ModuleInspection`: a :class:`Verdict`, the :class:`Evidence` behind it
(strongest first) and, for ``UNKNOWN``, a reason. Every other part of the toolkit (the
environment check, the wheel tools, the import guard of :mod:`nogil_toolkit.guard`) builds on
these functions::

    from nogil_toolkit.inspect import inspect_binary, Verdict
    report = inspect_binary("pkg/_speedups.cpython-313t-x86_64-linux-gnu.so")
    if report.verdict is Verdict.NOT_USED: ...
"""

from typing import TYPE_CHECKING, Any

from nogil_toolkit.inspect.verdict import Evidence, EvidenceKind, ModuleInspection, Verdict

if TYPE_CHECKING:
    from nogil_toolkit.inspect.core import inspect_binary, inspect_bytes, inspect_bytes_for
    from nogil_toolkit.inspect.parallel import inspect_files

# The readers are imported on first use (PEP 562): code that only handles verdicts, such as
# a check answered from the cache, never pays for them.
_READERS = {"inspect_binary": "core", "inspect_bytes": "core", "inspect_bytes_for": "core", "inspect_files": "parallel"}


def __getattr__(name: str) -> Any:
    if name in _READERS:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_READERS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Evidence", "EvidenceKind", "ModuleInspection", "Verdict", "inspect_binary", "inspect_bytes",
           "inspect_bytes_for", "inspect_files"]
