"""The exception and warning categories the guard raises and emits: its documented interface.

They live in a module of their own, importing nothing, so that ``-W ignore::<category>`` and
``except GilRequiredImportError`` cost an application nothing beyond this file.
"""

from __future__ import annotations


class GilRequiredImportError(ImportError):
    """``nogil`` mode refused an extension module that has not declared it runs without the
    GIL. Raised before the module's file was opened by the dynamic loader: none of its code ran.

    ``name`` and ``path`` are the module and its file (as on every :class:`ImportError`);
    ``distribution`` is the installed distribution owning the file (``None`` when none does),
    ``status`` what the checker found (``needs-gil``, ``undecided``, ``wrong-abi``) and
    ``evidence`` the observation behind it.
    """

    def __init__(self, message: str, *, name: str, path: str, distribution: str | None, status: str,
                 evidence: str) -> None:
        super().__init__(message, name=name, path=path)
        self.distribution = distribution
        self.status = status
        self.evidence = evidence


class UndeclaredModuleWarning(RuntimeWarning):
    """``unsafe-nogil`` mode loaded an extension module that has not declared it runs without
    the GIL (it declares nothing, declares it needs the GIL, or could not be decided), and the
    GIL stays off. Emitted once per module, attributed to that module, before it is loaded:

    - ``-W ignore::nogil_toolkit.guard.UndeclaredModuleWarning`` silences all of them;
    - ``-W 'ignore::nogil_toolkit.guard.UndeclaredModuleWarning:legacy._c'`` one module;
    - ``-W error::nogil_toolkit.guard.UndeclaredModuleWarning`` refuses them instead.
    """


class GilEnabledWarning(RuntimeWarning):
    """An extension module turned the GIL on while it loaded past the guard: one the policy
    allowed, or one whose file said it keeps the GIL off but did not. Emitted once per process
    (the GIL cannot be turned off again), naming the module(s) loading at that moment."""


class SerializeCoverageWarning(RuntimeWarning):
    """``serialize`` mode loaded an extension module that has not declared it runs without the
    GIL and put its entry points under the process-wide extension lock. Emitted once per module,
    attributed to it, after it was executed: how many functions and types are locked, and each
    entry point that could not be (``not covered: static type legacy._c.Foo``). Filter it as
    :class:`UndeclaredModuleWarning`, e.g.
    ``-W 'ignore::nogil_toolkit.guard.SerializeCoverageWarning:legacy._c'``."""
