"""The runtime guard: the ``gil``, ``nogil``, ``unsafe-nogil`` and ``serialize`` modes, enforced at
import time.

Free-threaded CPython turns the GIL back on, for good and with one warning, when the first
extension module that has not declared it runs without the GIL is loaded; ``PYTHON_GIL=0``
keeps it off for every module, silently. The guard judges each extension module *before*
the dynamic loader opens its file, with the same inspection, cache and policy as
``nogil-check-env``:

``nogil``
    a module that needs the GIL (declares nothing, declares ``used``, or cannot be decided)
    is refused with :class:`GilRequiredImportError`; none of its code runs.
``unsafe-nogil``
    it loads with the GIL off (the interpreter must start with ``PYTHON_GIL=0``), with one
    :class:`UndeclaredModuleWarning` per module, which ``-W`` and ``PYTHONWARNINGS`` filter.
``serialize``
    it loads with the GIL off (``PYTHON_GIL=0`` again), and every call into it runs under one
    process-wide re-entrant lock (:mod:`.serialize`): its functions, and the methods of the
    types it defines where the type can be changed. One :class:`SerializeCoverageWarning` per
    module says what is locked and names what could not be.
``gil``
    nothing is checked.

In every mode a module that turns the GIL on while loading past the guard is reported with
:class:`GilEnabledWarning`. Turn it on with ``nogil-toolkit run``, with ``NOGIL_MODE`` and the
hook ``nogil-toolkit guard install`` puts in an environment, or in-process::

    import nogil_toolkit.guard as guard
    guard.install("nogil", guard.GuardPolicy([("legacy._c", "audited: one lock")]))
"""

from __future__ import annotations

from nogil_toolkit.guard.errors import (GilEnabledWarning, GilRequiredImportError, SerializeCoverageWarning,
                                        UndeclaredModuleWarning)
from nogil_toolkit.guard.loader import active_mode, uninstall
from nogil_toolkit.guard.policy import GIL, MODES, NOGIL, SERIALIZE, UNSAFE_NOGIL, GuardPolicy

__all__ = ["GIL", "MODES", "NOGIL", "SERIALIZE", "UNSAFE_NOGIL", "GilEnabledWarning", "GilRequiredImportError",
           "GuardPolicy", "SerializeCoverageWarning", "UndeclaredModuleWarning", "active_mode", "install",
           "uninstall"]


def install(mode: str, policy: GuardPolicy | None = None, cache_dir: str | None = None) -> None:
    """Guard every extension module loaded from now on in ``mode`` (``gil`` removes the guard).

    ``cache_dir`` overrides where verdicts are cached (default: ``nogil-check-env``'s)."""
    from nogil_toolkit.guard import loader, verdict

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == GIL:
        loader.uninstall()
        return
    loader.install(mode, verdict.ModuleJudge(mode, policy or GuardPolicy(), cache_dir), verdict.refusal)
