"""The import hook: every extension module is judged before the dynamic loader opens its file.

Where it hooks, and why there. Every way CPython loads an extension module from a file ends
in one call, ``_imp.create_dynamic(spec)``, which ``dlopen``s the file and runs its init
function: the ``FileFinder`` path hook's ``ExtensionFileLoader`` (``import x``,
``importlib.import_module``, folders added to ``sys.path`` at run time, whose finders are
created later and use the same loader), an explicit
``spec_from_file_location(..., loader=ExtensionFileLoader(...))``, and any custom loader that
calls ``_imp.create_dynamic`` itself. ``importlib._bootstrap_external`` looks the function up
on the ``_imp`` module at each call, so replacing that attribute covers all of them with one
wrapper, before ``dlopen``; a ``sys.path_hooks`` finder with an ``ExtensionFileLoader``
subclass would miss the explicit loaders and custom ones, and patching
``ExtensionFileLoader.create_module`` would miss the custom ones. Nothing is cached in
``sys.path_importer_cache`` by this hook, so finders created before it was installed are
covered too.

What the wrapper does with a module, by the judge's :class:`Decision`:

- ``refuse``: raise :class:`GilRequiredImportError`; the file is never opened.
- ``warn``: emit :class:`UndeclaredModuleWarning` (once per module name), then load.
- ``load``: load.

After every load it compares ``sys._is_gil_enabled()`` before and after: a module that turned
the GIL on is reported with :class:`GilEnabledWarning` (once: the GIL stays on).

Free threading: several threads import at once, and explicit loaders bypass the import
system's per-module locks, so the same file can reach the wrapper from many threads at the
same moment. Decisions are memoised per (file, name); the judge serialises its own cache
access; the "warned already" set and the "GIL already reported" flag change under one lock;
no lock is held while a module loads or a warning is emitted (a warning turned into an error
by ``-W error`` must not leave a lock held). The judge imports nothing while it decides (see
:mod:`.verdict`), so the wrapper is never re-entered from inside a decision.
"""

from __future__ import annotations

import _imp
import _thread
import sys
from nogil_toolkit.guard.errors import GilEnabledWarning, GilRequiredImportError, UndeclaredModuleWarning

TYPE_CHECKING = False  # the typing module is not imported at run time: the hook must start cheaply
if TYPE_CHECKING:
    from typing import Any, Callable

LOAD = "load"
WARN = "warn"
REFUSE = "refuse"


class Decision:
    """What the guard does with one extension file, and why (shown in errors and warnings)."""

    __slots__ = ("action", "status", "evidence", "allowed_because", "distribution")

    def __init__(self, action: str, status: str, evidence: str, allowed_because: str | None = None,
                 distribution: str | None = None) -> None:
        self.action = action
        self.status = status
        """The checker's status: ``keeps-gil-off``, ``needs-gil``, ``allowed``, ``undecided``..."""
        self.evidence = evidence
        self.allowed_because = allowed_because
        self.distribution = distribution
        """The owning distribution, looked up for refused modules only."""

    def __repr__(self) -> str:
        return f"Decision({self.action!r}, {self.status!r}, {self.evidence!r}, {self.allowed_because!r})"


_original_create_dynamic = _imp.create_dynamic
_active: _Guard | None = None
_install_lock = _thread.allocate_lock()


class _Guard:
    """The state of one installed guard: its judge and what it has already said."""

    def __init__(self, mode: str, judge: Callable[[str, str], Decision],
                 describe_refusal: Callable[[str, str, Decision], GilRequiredImportError]) -> None:
        self.mode = mode
        self._judge = judge
        self._describe_refusal = describe_refusal
        self._lock = _thread.allocate_lock()
        self._decisions: dict[tuple[str, str], Decision] = {}
        self._warned: set[str] = set()
        self._loading: dict[int, str] = {}
        self._next_load = 0
        self._gil_reported = False

    def decision(self, name: str, path: str) -> Decision:
        key = (path, name)
        found = self._decisions.get(key)
        if found is None:
            found = self._judge(name, path)
            with self._lock:
                found = self._decisions.setdefault(key, found)
        return found

    def create_dynamic(self, spec: Any, args: tuple[Any, ...]) -> Any:
        name, path = spec.name, getattr(spec, "origin", None)
        if not isinstance(path, str):  # not loaded from a file: nothing to judge
            return _original_create_dynamic(spec, *args)
        decision = self.decision(name, path)
        if decision.action == REFUSE:
            raise self._describe_refusal(name, path, decision)
        if decision.action == WARN and self._first_warning(name):
            _warn(f"{name} has not declared that it can run without the GIL ({decision.status}: "
                  f"{decision.evidence}); loaded with the GIL off because of NOGIL_MODE={self.mode}",
                  UndeclaredModuleWarning, name, path)
        return self.watch(name, path, decision, args, spec)

    def watch(self, name: str, path: str, decision: Decision, args: tuple[Any, ...], spec: Any) -> Any:
        """Load, and report the GIL being turned on by this load (or one running beside it)."""
        was_on = sys._is_gil_enabled()
        with self._lock:
            ticket = self._next_load
            self._next_load += 1
            self._loading[ticket] = name
        try:
            module = _original_create_dynamic(spec, *args)
        finally:
            with self._lock:
                suspects = sorted(set(self._loading.values()))
                del self._loading[ticket]
                report = not was_on and not self._gil_reported and sys._is_gil_enabled()
                self._gil_reported = self._gil_reported or report
        if report:
            _warn(_gil_enabled_message(name, decision, [s for s in suspects if s != name]), GilEnabledWarning,
                  name, path)
        return module

    def _first_warning(self, name: str) -> bool:
        with self._lock:
            first = name not in self._warned
            self._warned.add(name)
        return first


def _gil_enabled_message(name: str, decision: Decision, others: list[str]) -> str:
    if decision.allowed_because:
        why = f"allowed by the policy: {decision.allowed_because}"
    elif decision.action == LOAD:
        why = f"its file was judged {decision.status} ({decision.evidence})"
    else:
        why = decision.status
    also = f"; also loading at that moment: {', '.join(others)}" if others else ""
    return f"loading {name} turned the GIL on for the rest of the process ({why}){also}"


def _warn(message: str, category: type[Warning], module: str, path: str) -> None:
    """Attributed to the extension module itself, so ``-W`` filters can name it."""
    import warnings

    warnings.warn_explicit(message, category, path, 0, module=module)


def _guarded_create_dynamic(spec: Any, *args: Any) -> Any:
    guard = _active
    if guard is None:
        return _original_create_dynamic(spec, *args)
    return guard.create_dynamic(spec, args)


def install(mode: str, judge: Callable[[str, str], Decision],
            describe_refusal: Callable[[str, str, Decision], GilRequiredImportError]) -> None:
    """Judge every extension module loaded from now on with ``judge(name, path)``, which must be
    safe to call from many threads. Installing again replaces the judge (and forgets what the
    previous one decided and warned about)."""
    if not hasattr(sys, "_is_gil_enabled"):
        raise RuntimeError("the import guard needs CPython 3.13 or later")
    global _active
    with _install_lock:
        _active = _Guard(mode, judge, describe_refusal)
        _imp.create_dynamic = _guarded_create_dynamic


def uninstall() -> None:
    """Load extension modules unjudged again."""
    global _active
    with _install_lock:
        _active = None
        _imp.create_dynamic = _original_create_dynamic


def active_mode() -> str | None:
    """The mode of the installed guard, or None."""
    guard = _active
    return guard.mode if guard is not None else None
