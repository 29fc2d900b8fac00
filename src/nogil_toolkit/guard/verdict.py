"""The guard's judge: what one extension file means under the mode and the policy.

No second mechanism: a file is resolved by :func:`nogil_toolkit.check_env.resolve_modules`
(cached verdict by file identity, else static inspection, and for a file static reading
cannot decide, one import probe in a fresh subprocess) against the same
:class:`~nogil_toolkit.cache.CheckCache` ``nogil-check-env`` uses for this interpreter, and
judged by :func:`nogil_toolkit.check.judge`. What the guard learns, the check reuses, and
the other way round.

Cost: an unchanged file the cache knows keeps the GIL off is the common case (every
declared module, every start after the first); it is answered from the cache file alone,
without importing the inspector or the checker. Everything else imports them once.
"""

from __future__ import annotations

import _thread
import os
import sys

from nogil_toolkit.guard.errors import GilRequiredImportError
from nogil_toolkit.guard.loader import LOAD, REFUSE, WARN, Decision
from nogil_toolkit.guard.policy import NOGIL, GuardPolicy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from nogil_toolkit.cache import CheckCache
    from nogil_toolkit.check import ModuleResult
    from nogil_toolkit.environment import ExtensionFile
    from nogil_toolkit.inspect import ModuleInspection
    from nogil_toolkit.probe import ProbeResult
    from nogil_toolkit.target import TargetInterpreter


class ModuleJudge:
    """``judge(name, path) -> Decision`` for one guarded process; safe from many threads."""

    def __init__(self, mode: str, policy: GuardPolicy, cache_dir: str | None = None) -> None:
        self.mode = mode
        self.policy = policy
        self._cache_dir = cache_dir
        self._lock = _thread.allocate_lock()
        self._cache: CheckCache | None = None
        self._target: TargetInterpreter | None = None

    def __call__(self, name: str, path: str) -> Decision:
        try:
            stat = os.stat(path)
        except OSError:
            # The loader will fail on it with CPython's own error; nothing to judge.
            return Decision(LOAD, "missing", "the file cannot be read")
        # Imported before the lock is taken: an import may wait for another thread's import.
        from nogil_toolkit.abi import classify
        from nogil_toolkit.cache import CheckCache, default_cache_dir
        from nogil_toolkit.check import Mode, judge
        from nogil_toolkit.environment import ExtensionFile
        from nogil_toolkit.target import TargetInterpreter

        rules = self.policy.rules()

        with self._lock:
            if self._cache is None:
                directory = self._cache_dir or default_cache_dir()
                self._cache = CheckCache(directory, os.path.abspath(sys.executable))
                self._target = TargetInterpreter.current()
            file = ExtensionFile(path, name, classify(os.path.basename(path), self._target), None)
            inspection, probe = _resolve(file, stat, self._cache)
            self._cache.save()
        return decision_from(judge(file, inspection, Mode(self.mode), rules, probe))


def _resolve(file: ExtensionFile, stat: os.stat_result, cache: CheckCache
             ) -> tuple[ModuleInspection, ProbeResult | None]:
    """INTERIM until the pipeline's per-file resolver lands: cached or fresh static inspection,
    and an import probe when static reading cannot decide."""
    from nogil_toolkit.inspect import Verdict, inspect_binary
    from nogil_toolkit.probe import probe_module

    inspection = cache.lookup(file.path, stat)
    if inspection is None:
        inspection = inspect_binary(file.path)
        cache.store(file.path, stat, inspection)
    probe = None
    if inspection.verdict is Verdict.UNKNOWN and file.importable:
        probe = probe_module(sys.executable, file, (_import_root(file.module or "", file.path),))
    return inspection, probe


def _import_root(name: str, path: str) -> str:
    """The folder the top-level package of ``name`` sits in: what a probe puts on its path."""
    root = os.path.dirname(os.path.abspath(path))
    for _ in range(name.count(".")):
        root = os.path.dirname(root)
    return root


def decision_from(result: ModuleResult) -> Decision:
    """The checker's severity decides: an error refuses, a warning warns, the rest loads."""
    from nogil_toolkit.check import Severity

    action = {Severity.ERROR: REFUSE, Severity.WARNING: WARN}.get(result.severity, LOAD)
    reason = result.allowed_because.reason if result.allowed_because is not None else None
    return Decision(action, result.status.value, _evidence(result), reason)


def _evidence(result: ModuleResult) -> str:
    inspection = result.inspection
    what = {
        "used": "declares that it needs the GIL",
        "undeclared": "declares nothing about the GIL, which CPython treats as needing it",
        "not-used": "declares that it runs without the GIL",
        "not-a-module": "exports no module init function",
        "unknown": "could not be decided from its file",
    }
    parts = []
    if result.file.abi.reason:
        parts.append(result.file.abi.reason)
    elif inspection is not None:
        parts.append(what[inspection.verdict.value])
        detail = inspection.evidence[0].detail if inspection.evidence else inspection.reason
        if detail:
            parts.append(detail)
    if result.probe is not None:
        parts.append(f"import probe: {result.probe.summary}")
    return "; ".join(parts) or result.status.value


def refusal(name: str, path: str, decision: Decision) -> GilRequiredImportError:
    """The error of a refused module. Its distribution is looked up here, only for refusals."""
    owner = owner_of(path)
    shown = str(owner) if owner else "none (not installed by a package manager)"
    message = (
        f"{NOGIL} mode refuses to import {name}: loading it would turn the GIL on ({decision.evidence})\n"
        f"  file: {path}\n"
        f"  distribution: {shown}\n"
        f"  to allow it: nogil-toolkit run --allow '{name}=REASON', NOGIL_ALLOW='{name}=REASON', or "
        f"[tool.nogil.check] allow = {{ \"{name}\" = \"REASON\" }} in pyproject.toml; "
        f"NOGIL_MODE=unsafe-nogil loads it with the GIL off and a warning"
    )
    return GilRequiredImportError(message, name=name, path=path, distribution=str(owner) if owner else None,
                                  status=decision.status, evidence=decision.evidence)


def owner_of(path: str) -> object | None:
    """The installed distribution whose RECORD lists ``path``, searched in the ``sys.path``
    folder that holds it."""
    from nogil_toolkit.environment import _owners

    real = os.path.realpath(path)
    folders = [os.path.realpath(p or ".") for p in sys.path]
    holders = sorted({f for f in folders if real.startswith(f + os.sep)}, key=len, reverse=True)
    return _owners(holders[:1]).get(real) if holders else None
