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
- ``serialize``: load, and once ``_imp.exec_dynamic`` has executed the module (its attributes
  are final then; for single-phase modules it is a no-op that importlib's loader still calls),
  put its entry points under the extension lock (:mod:`.serialize`) and emit its coverage
  line, :class:`SerializeCoverageWarning`. ``_imp.exec_dynamic`` is looked up on ``_imp`` at
  each call, like ``create_dynamic``, and replaced only while a ``serialize`` guard is installed.

After loads it reads ``sys._is_gil_enabled()``: a module that turned the GIL on is reported
with :class:`GilEnabledWarning` (once: the GIL stays on); see :meth:`_Guard.watch` for why
the reading waits until no load is in flight.

Free threading: several threads import at once, and explicit loaders bypass the import
system's per-module locks, so the same file can reach the wrapper from many threads at the
same moment. The judge decides each (file, name) once per process under its own lock; the
"warned already" set and the "GIL already reported" flag change under one lock;
no lock is held while a module loads or a warning is emitted (a warning turned into an error
by ``-W error`` must not leave a lock held). The judge imports nothing while it decides (see
:mod:`.verdict`), so the wrapper is never re-entered from inside a decision.
"""

from __future__ import annotations

import _imp
import _thread
import sys

from _weakrefset import WeakSet

from nogil_toolkit.guard.errors import (GilEnabledWarning, GilRequiredImportError, SerializeCoverageWarning,
                                        UndeclaredModuleWarning)

TYPE_CHECKING = False  # the typing module is not imported at run time: the hook must start cheaply
if TYPE_CHECKING:
    from typing import Any, Callable

LOAD = "load"
WARN = "warn"
REFUSE = "refuse"
SERIALIZE = "serialize"


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
_original_exec_dynamic = _imp.exec_dynamic
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
        self._warned: set[str] = set()
        self._loading = 0
        self._window: dict[str, tuple[str, Decision]] = {}
        """Modules loaded since the GIL was last seen off with nothing loading."""
        self._gil_seen_off = not sys._is_gil_enabled()
        self._gil_reported = False
        self._to_serialize: WeakSet[Any] = WeakSet()
        """Modules created for ``serialize`` whose execution has not finished yet."""

    def create_dynamic(self, spec: Any, args: tuple[Any, ...]) -> Any:
        name, path = spec.name, getattr(spec, "origin", None)
        if not isinstance(path, str):  # not loaded from a file: nothing to judge
            return _original_create_dynamic(spec, *args)
        decision = self._judge(name, path)
        if decision.action == REFUSE:
            raise self._describe_refusal(name, path, decision)
        if decision.action == WARN and self._first_warning(name):
            _warn(f"{name} has not declared that it can run without the GIL ({decision.status}: "
                  f"{decision.evidence}); loaded with the GIL off because of NOGIL_MODE={self.mode}",
                  UndeclaredModuleWarning, name, path)
        module = self.watch(name, path, decision, args, spec)
        if decision.action == SERIALIZE and isinstance(module, type(sys)):  # Py_mod_create may return anything
            with self._lock:
                self._to_serialize.add(module)
        return module

    def executed(self, module: Any) -> None:
        """Lock the entry points of ``module`` if it is waiting for that, and say what is covered."""
        with self._lock:
            if module not in self._to_serialize:
                return
            self._to_serialize.discard(module)
        from nogil_toolkit.guard.serialize import serialize_module

        path = getattr(getattr(module, "__spec__", None), "origin", None) or module.__name__
        try:
            message = serialize_module(module).message()
        except Exception as exc:  # an object the wrapper did not foresee: said, not an import failure
            message = (f"serialize: {module.__name__}: locking stopped half-way, some entry points are not covered "
                       f"({type(exc).__name__}: {exc})")
        _warn(message, SerializeCoverageWarning, module.__name__, path)

    def watch(self, name: str, path: str, decision: Decision, args: tuple[Any, ...], spec: Any) -> Any:
        """Load, and report the GIL being turned on for good by this load or one beside it.

        CPython turns the GIL on *transiently* around every extension module's init (3.13),
        so while another thread is loading a module the GIL may read as on without being on
        for good. It is read only when no guarded load is in flight, and then blames the
        modules loaded since it was last seen off."""
        with self._lock:
            self._loading += 1
            self._window.setdefault(name, (path, decision))
        try:
            return _original_create_dynamic(spec, *args)
        finally:
            with self._lock:
                self._loading -= 1
                culprits = None
                if self._loading == 0:
                    if not sys._is_gil_enabled():
                        self._gil_seen_off = True
                    elif self._gil_seen_off and not self._gil_reported:
                        self._gil_reported = True
                        culprits = dict(self._window)
                    self._window.clear()
            if culprits:
                first, (first_path, first_decision) = next(iter(culprits.items()))
                _warn(_gil_enabled_message(first, first_decision, [n for n in culprits if n != first]),
                      GilEnabledWarning, first, first_path)

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
    if others:
        return (f"the GIL was turned on for the rest of the process while {', '.join([name, *others])} were "
                f"loading at the same time ({name}: {why})")
    return f"loading {name} turned the GIL on for the rest of the process ({why})"


def _warn(message: str, category: type[Warning], module: str, path: str) -> None:
    """Attributed to the extension module itself, so ``-W`` filters can name it."""
    import warnings

    warnings.warn_explicit(message, category, path, 0, module=module)


def _guarded_create_dynamic(spec: Any, *args: Any) -> Any:
    guard = _active
    if guard is None:
        return _original_create_dynamic(spec, *args)
    return guard.create_dynamic(spec, args)


def _guarded_exec_dynamic(module: Any) -> Any:
    result = _original_exec_dynamic(module)
    guard = _active
    if guard is not None:
        guard.executed(module)
    return result


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
        _imp.exec_dynamic = _guarded_exec_dynamic if mode == SERIALIZE else _original_exec_dynamic


def uninstall() -> None:
    """Load extension modules unjudged again."""
    global _active
    with _install_lock:
        _active = None
        _imp.create_dynamic = _original_create_dynamic
        _imp.exec_dynamic = _original_exec_dynamic


def active_mode() -> str | None:
    """The mode of the installed guard, or None."""
    guard = _active
    return guard.mode if guard is not None else None
