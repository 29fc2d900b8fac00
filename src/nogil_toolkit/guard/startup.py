"""Turn the guard on from ``NOGIL_MODE``, at interpreter start-up, and say so when it cannot
do what the mode promises.

Called by the start-up hook (the ``.pth`` file ``nogil-toolkit guard install`` writes, or the
``sitecustomize`` of ``nogil-toolkit run``). Every combination that cannot work gets one line
on stderr, never silence; none of them stops the application:

- an unknown mode: the guard stays off;
- ``nogil``/``unsafe-nogil``/``serialize`` on a build with the GIL: the guard stays off;
- ``unsafe-nogil`` or ``serialize`` without ``PYTHON_GIL=0`` (or ``-X gil=0``): modules are
  still judged and warned about (or locked), but the first one that needs the GIL turns it on (CPython decides that, and
  nothing can turn it off again);
- any mode but ``gil`` when the GIL is already on (``PYTHON_GIL=1``, or a module that
  a ``.pth`` file loaded earlier): modules are still judged;
- ``gil`` while the GIL is off: the guard checks nothing in ``gil`` mode, but cannot turn the
  GIL on either; ``PYTHON_GIL=1`` at start does.

Like ``PYTHON_GIL``, ``NOGIL_MODE`` is ignored under ``-E``/``-I``: isolated interpreters,
such as the guard's own import probes, are not guarded.
"""

from __future__ import annotations

import os
import sys

from nogil_toolkit.guard.policy import GIL, MODES, SERIALIZE, UNSAFE_NOGIL, GuardPolicy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping


def start_from_environment(environ: Mapping[str, str] = os.environ) -> str | None:
    """Install the guard ``NOGIL_MODE`` asks for; returns the mode in force (None: no guard)."""
    value = environ.get("NOGIL_MODE")
    if not value or sys.flags.ignore_environment:
        return None
    problem, mode = check_combination(value.strip().lower())
    if problem:
        from nogil_toolkit.console import warning

        warning(f"nogil-toolkit guard: {problem}")
    if mode is None or mode == GIL:
        return mode
    from nogil_toolkit.guard import install

    apply_warning_options()
    install(mode, GuardPolicy.from_environment(environ))
    return mode


def apply_warning_options() -> None:
    """Honour ``-W``/``PYTHONWARNINGS`` options that name the guard's categories.

    CPython reads warning options before ``site`` has put site-packages on ``sys.path``, so an
    option naming a category of an installed package is dropped ("Invalid -W option ignored:
    invalid module name"), unless the package was importable from ``PYTHONPATH`` (as
    ``nogil-toolkit run`` arranges). When none of the guard's categories made it into the
    filters, the options are processed again, all of them and in order, so that their
    precedence is the one the command line gave."""
    if not any("nogil_toolkit.guard" in option for option in sys.warnoptions):
        return
    import warnings

    from nogil_toolkit.guard.errors import GilEnabledWarning, UndeclaredModuleWarning

    if any(f[2] in (UndeclaredModuleWarning, GilEnabledWarning) for f in warnings.filters):
        return
    warnings._processoptions(list(sys.warnoptions))  # type: ignore[attr-defined]  # what CPython ran at start


def check_combination(mode: str) -> tuple[str | None, str | None]:
    """(one-line problem or None, the mode that can be honoured or None) for this process."""
    if mode not in MODES:
        return (f"NOGIL_MODE={mode!r} is not a mode (expected {', '.join(MODES)}); the import guard is off",
                None)
    # The GIL off proves a free-threaded build without asking sysconfig (not cheap at start-up).
    free_threaded = hasattr(sys, "_is_gil_enabled") and (not sys._is_gil_enabled() or not _gil_build())
    if not free_threaded:
        if mode == GIL:
            return None, GIL
        return (f"NOGIL_MODE={mode} needs a free-threaded CPython (3.13t or later); {sys.executable} runs "
                "with the GIL, so the import guard is off"), None
    forced = getattr(sys.flags, "gil", None)
    if mode == GIL:
        if sys._is_gil_enabled():
            return None, GIL
        return ("NOGIL_MODE=gil but the GIL is off: start Python with PYTHON_GIL=1 (nogil-toolkit run "
                "--mode gil does); until then CPython turns it on at the first module that needs it"), GIL
    if sys._is_gil_enabled():
        why = "PYTHON_GIL=1 or -X gil=1" if forced == 1 else "a module loaded before the guard started turned it on"
        return (f"NOGIL_MODE={mode} but the GIL is already on ({why}) and cannot be turned off again; "
                "modules are still checked"), mode
    if mode in (UNSAFE_NOGIL, SERIALIZE) and forced != 0:
        return (f"NOGIL_MODE={mode} needs PYTHON_GIL=0 (or -X gil=0) when Python starts (nogil-toolkit "
                f"run --mode {mode} sets it); without it the first module that needs the GIL turns "
                "it on"), mode
    return None, mode


def _gil_build() -> bool:
    import sysconfig

    return not sysconfig.get_config_var("Py_GIL_DISABLED")
