"""The guard's cold path, run in a subprocess of the guarded interpreter: decide one module.

A module the warm path cannot clear (not cached, changed, or cached as needing the GIL) is
decided here, by the environment check's own mechanism: the verdict cache, the static
inspector and, for a module static reading cannot decide, one import probe whose conclusive
answer is cached with the file's identity (:func:`nogil_toolkit.check_env.resolve_modules`),
then :func:`nogil_toolkit.check.judge` under the mode and the allowlist. The other extension files of the same top-level package are
inspected as well (never probed) and cached, so that the modules a package loads next are
warm already.

Why a subprocess: the guarded interpreter is in the middle of an import when it asks. Importing
the checker there (``importlib.metadata``, ``struct``, ``subprocess`` ...) would re-enter
modules that are half-initialised higher up the stack (a real failure: ``numpy`` →
``datetime`` → a guard importing ``struct`` while ``struct`` was loading ``_struct``). A fresh
``-I`` interpreter has no such stack; it is started once per cold decision, never on the warm
path.

Protocol: one JSON request as the only argument; one JSON decision on stdout's last line.
"""

from __future__ import annotations

import marshal
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from nogil_toolkit.abi import classify, is_extension_file
from nogil_toolkit.cache import CheckCache
from nogil_toolkit.check import Mode, ModuleResult, Severity, judge
from nogil_toolkit.check_env import ProbeChoice, ProbeSettings, resolve_modules
from nogil_toolkit.config import AllowRule
from nogil_toolkit.environment import Distribution, ExtensionFile, find_owners
from nogil_toolkit.guard.loader import LOAD, REFUSE, WARN
from nogil_toolkit.guard.warm import VERDICT_WORDS
from nogil_toolkit.target import TargetInterpreter


def decide(request: dict[str, Any]) -> dict[str, Any]:
    """The decision about ``request["module"]`` at ``request["path"]`` (see :func:`main`)."""
    name, path = request["module"], request["path"]
    target = TargetInterpreter.current()
    cache = CheckCache(Path(request["cache_dir"]), os.path.abspath(sys.executable))
    file = ExtensionFile(path, name, classify(os.path.basename(path), target), None)
    # The package's other files have no module name here, so they are never probed.
    others = [ExtensionFile(p, None, classify(os.path.basename(p), target), None)
              for p in package_files(name, path, target)]
    settings = ProbeSettings(sys.executable, ProbeChoice.UNDECIDED, (import_root(name, path),))
    try:
        resolution = resolve_modules([file, *others], cache, jobs=os.cpu_count() or 1, probe=settings,
                                     python=target.version[:2])[0]
    finally:
        cache.save()
    rules = [AllowRule(pattern, reason) for pattern, reason in request["allow"]]
    result = judge(file, resolution.inspection, Mode(request["mode"]), rules, resolution.probe)
    action = {Severity.ERROR: REFUSE, Severity.WARNING: WARN}.get(result.severity, LOAD)
    owner = owner_of(path, request["sys_path"]) if action == REFUSE else None
    return {"action": action, "status": result.status.value, "evidence": evidence(result),
            "allowed_because": result.allowed_because.reason if result.allowed_because else None,
            "distribution": str(owner) if owner else None}


def import_root(name: str, path: str) -> str:
    """The folder the top-level package of ``name`` sits in: what a probe puts on its path."""
    root = os.path.dirname(os.path.abspath(path))
    for _ in range(name.count(".")):
        root = os.path.dirname(root)
    return root


def package_files(name: str, path: str, target: TargetInterpreter) -> list[str]:
    """The other extension files of ``name``'s top-level package (for a top-level module: of
    its folder, such as the standard library's ``lib-dynload``)."""
    top = os.path.join(import_root(name, path), name.split(".")[0]) if "." in name else os.path.dirname(path)
    found = []
    for folder, dirs, files in os.walk(top):
        if "." not in name:
            dirs.clear()
        found.extend(os.path.join(folder, f) for f in files
                     if is_extension_file(f) and f.endswith(target.extension_suffixes))
    return [f for f in found if f != path]


def evidence(result: ModuleResult) -> str:
    """What was found, in words, with the deciding observation: shown in errors and warnings."""
    parts = []
    if result.file.abi.reason:
        parts.append(result.file.abi.reason)
    elif result.inspection is not None:
        parts.append(VERDICT_WORDS[result.inspection.verdict.value])
        first = result.inspection.evidence[0].detail if result.inspection.evidence else result.inspection.reason
        if first:
            parts.append(first)
    if result.probe is not None:
        parts.append(f"import probe: {result.probe.summary}")
    return "; ".join(parts) or result.status.value


def owner_of(path: str, search_path: Sequence[str]) -> Optional[Distribution]:
    """The installed distribution whose RECORD lists ``path``, looked up in the folder of the
    guarded process's ``sys.path`` that holds it."""
    real = os.path.realpath(path)
    folders = {os.path.realpath(p or ".") for p in search_path}
    holders = sorted((f for f in folders if real.startswith(f + os.sep)), key=len, reverse=True)
    return find_owners(holders[:1]).get(real) if holders else None


def main(argv: Sequence[str]) -> int:
    """``argv[0]``: the request, marshalled (:mod:`marshal`) and hex-encoded (see :mod:`.verdict` for why
    not JSON); the answer is printed the same way, as the last line of stdout."""
    try:
        decision = decide(marshal.loads(bytes.fromhex(argv[0])))
    except Exception as exc:  # the guarded process turns this line into its own error
        print(marshal.dumps({"error": f"{type(exc).__name__}: {exc}"}).hex())
        return 1
    print(marshal.dumps(decision).hex())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
