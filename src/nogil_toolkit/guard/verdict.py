"""The guard's judge, in the guarded process: what one extension file means under the mode.

Two paths, one cache:

- warm: an unchanged file whose cached entry decides it (a static verdict, or a conclusive
  import probe) is judged at once under the mode and the allowlist (:mod:`.warm`: ``os``
  and the cache's index file, nothing else);
- cold: anything else is decided by the environment check's machinery in a fresh ``-I``
  subprocess of this interpreter (:mod:`.decide`), which writes what it learns to the same
  cache. Its answer is memoised for the life of this process by the loader.

The guarded process never imports the checker: it is in the middle of an import whenever it
asks, and importing more there can meet modules that are half-initialised up the stack.
The request and the answer cross in :mod:`marshal`, which is built into every CPython: not
:mod:`json`, whose accelerator ``_json`` is a shared library on some builds and would be
loaded through this very guard (and costs every guarded start its import).
"""

from __future__ import annotations

import _thread
import marshal
import os
import sys

import nogil_toolkit
from nogil_toolkit.guard.errors import GilRequiredImportError
from nogil_toolkit.guard.loader import LOAD, REFUSE, SERIALIZE, WARN, Decision
from nogil_toolkit.guard.policy import NOGIL, SERIALIZE as SERIALIZE_MODE, UNSAFE_NOGIL, GuardPolicy
from nogil_toolkit.guard.warm import KEEPS_GIL_OFF_STATUS as KEEPS_GIL_OFF
from nogil_toolkit.guard.warm import WarmVerdicts, current_cache_file, default_cache_dir

ALLOWED = "allowed"
"""``check.Status.ALLOWED.value``, without importing the checker."""
# abi3 files are found by the importer on free-threaded 3.13/3.14 but cannot load there
# (``abi.classify``): only the cold path's checker judges them.
_WRONG_ABI = ".abi3.so" if sys.version_info < (3, 15) and "t" in getattr(sys, "abiflags", "") else ""
_TOOLKIT = os.path.dirname(os.path.dirname(os.path.abspath(nogil_toolkit.__file__)))
_COLD = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
         "from nogil_toolkit.guard.decide import main; sys.exit(main(sys.argv[1:]))")


class ModuleJudge:
    """``judge(name, path) -> Decision`` for one guarded process; safe from many threads.

    Each (file, name) is decided once per process. One lock covers the memo, the warm lookup
    and the cold subprocess, so that threads meeting the same new file at once start one
    subprocess (and at most one import probe), not one each."""

    def __init__(self, mode: str, policy: GuardPolicy, cache_dir: str | None = None) -> None:
        self.mode = mode
        self.policy = policy
        self.cache_dir = cache_dir or default_cache_dir()
        self._warm = WarmVerdicts(current_cache_file(self.cache_dir))
        self._lock = _thread.allocate_lock()
        self._decided: dict[tuple[str, str], Decision] = {}

    def __call__(self, name: str, path: str) -> Decision:
        # The cache knows files by their real path (nogil-check-env resolves the folders it
        # scans): a relative sys.path entry or a symlinked venv must find the same entries.
        path = os.path.realpath(path)
        try:
            stat = os.stat(path)
        except OSError:
            # The loader fails on it with CPython's own error; nothing to judge.
            return Decision(LOAD, "missing", "the file cannot be read")
        with self._lock:
            decision = self._decided.get((path, name))
            if decision is None:
                decision = self._decide_warm(name, path, stat) or self._decide_cold(name, path)
                self._decided[(path, name)] = decision
            return decision

    def _decide_warm(self, name: str, path: str, stat: os.stat_result) -> Decision | None:
        """What ``check.judge`` makes of a cached entry under the mode and the allowlist, for
        the cases that need no more than the entry: None sends the module to the cold path
        (and so does a refusal, whose message names the distribution)."""
        known = self._warm.status(path, stat)
        if known is None or _WRONG_ABI and path.endswith(_WRONG_ABI):
            return None
        status, evidence = known
        if status == KEEPS_GIL_OFF:
            return Decision(LOAD, status, evidence)
        reason = self.policy.allowed_because(name)
        if reason is not None:
            return Decision(LOAD, ALLOWED, evidence, reason)
        action = {UNSAFE_NOGIL: WARN, SERIALIZE_MODE: SERIALIZE}.get(self.mode)
        return Decision(action, status, evidence) if action else None

    def _decide_cold(self, name: str, path: str) -> Decision:
        # The checker knows three modes; serialize loads what unsafe-nogil loads, and locks what
        # unsafe-nogil would warn about.
        mode = UNSAFE_NOGIL if self.mode == SERIALIZE_MODE else self.mode
        request = {"module": name, "path": path, "mode": mode, "allow": self.policy.allow,
                   "cache_dir": self.cache_dir, "sys_path": sys.path}
        try:
            status, output = _run([sys.executable, "-I", "-c", _COLD, _TOOLKIT, marshal.dumps(request).hex()])
            answer = marshal.loads(bytes.fromhex(output.strip().splitlines()[-1]))
        except OSError as exc:  # no interpreter to run (an embedding application)
            answer = {"error": f"cannot start {sys.executable or 'an interpreter'}: {exc.strerror or exc}"}
        except (ValueError, IndexError, EOFError, TypeError):
            answer = {"error": f"the checker exited with status {status} and no answer"}
        if "error" in answer:
            # Fail closed in nogil mode, loudly in unsafe-nogil, locked in serialize.
            return Decision({NOGIL: REFUSE, SERIALIZE_MODE: SERIALIZE}.get(self.mode, WARN), "undecided",
                            f"the guard could not decide: {answer['error']}")
        action = SERIALIZE if self.mode == SERIALIZE_MODE and answer["action"] == WARN else answer["action"]
        return Decision(action, answer["status"], answer["evidence"], answer["allowed_because"],
                        answer["distribution"])


def _run(argv: list[str]) -> tuple[int, str]:
    """Run ``argv``, returning its exit status and stdout; stderr is the guarded process's.

    ``posix_spawn`` and a pipe, not :mod:`subprocess`, for the reason this module imports
    nothing: importing ``subprocess`` in the middle of an arbitrary import is what must not
    happen."""
    if not hasattr(os, "posix_spawn"):  # pragma: no cover - Windows
        import subprocess

        done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
        return done.returncode, done.stdout
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(argv[0], argv, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, write_end, 1), (os.POSIX_SPAWN_CLOSE, read_end)])
    finally:
        os.close(write_end)
    chunks = []
    with open(read_end, "rb") as stream:
        for chunk in iter(lambda: stream.read(65536), b""):
            chunks.append(chunk)
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status), b"".join(chunks).decode("utf-8", "replace")


_REFUSED_BECAUSE = {"undecided": "nothing shows that it runs without the GIL",
                    "wrong-abi": "this interpreter cannot load it"}
"""The first words of a refusal by ``check.Status`` value (``needs-gil``: the GIL)."""


def refusal(name: str, path: str, decision: Decision) -> GilRequiredImportError:
    """The error of a refused module: what, where, whose, why, and how to allow it."""
    why = _REFUSED_BECAUSE.get(decision.status, "loading it would turn the GIL on")
    message = (
        f"{NOGIL} mode refuses to import {name}: {why} ({decision.evidence})\n"
        f"  file: {path}\n"
        f"  distribution: {decision.distribution or 'none (not installed by a package manager)'}\n"
        f"  to allow it: nogil-toolkit run --allow '{name}=REASON', NOGIL_ALLOW='{name}=REASON', or "
        f"[tool.nogil.check] allow = {{ \"{name}\" = \"REASON\" }} in pyproject.toml; "
        f"NOGIL_MODE=unsafe-nogil loads it with the GIL off and a warning"
    )
    return GilRequiredImportError(message, name=name, path=path, distribution=decision.distribution,
                                  status=decision.status, evidence=decision.evidence)
