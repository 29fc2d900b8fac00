"""Helpers of the runtime guard's tests: real C extension modules built with gcc, and a way to
run code in an interpreter started the way ``nogil-toolkit run`` starts it."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from nogil_toolkit.guard.envhook import run_folder
from support import clean_env, run

CSRC = Path(__file__).parent / "csrc" / "guarded.c"
DECLARED = ("declared", "declared_b", "declared_c", "declared_d")
UNDECLARED = ("legacy_a", "legacy_b", "legacy_c", "legacy_d", "sideeffect")


@dataclass(frozen=True)
class Modules:
    folder: Path
    suffix: str

    def path(self, name: str) -> Path:
        return self.folder / f"{name}{self.suffix}"


def build_module(python: str, name: str, out: Path, suffix: str, declare: bool, source: Path = CSRC,
                 defines: Sequence[str] = ()) -> Path:
    """One fixture module, compiled by gcc against ``python``'s headers."""
    include = run([python, "-c", "import sysconfig; print(sysconfig.get_path('include'))"]).stdout.strip()
    target = out / f"{name}{suffix}"
    run(["gcc", "-shared", "-fPIC", "-O1", "-Wall", "-Werror", f"-I{include}", f"-DMODNAME={name}",
         *(["-DDECLARE_NOT_USED"] if declare else []), *(f"-D{d}" for d in defines), "-o", target, source])
    return target


@dataclass(frozen=True)
class Guarded:
    """What a guarded interpreter did: its exit status, output, and its last JSON line."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def data(self) -> dict:
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_guarded(python: str, code: str, *, mode: Optional[str], modules: Optional[Modules], cache: Path,
                args: Sequence[str] = (), env: Optional[dict[str, Optional[str]]] = None,
                cwd: Optional[Path] = None, timeout: float = 300) -> Guarded:
    """Run ``code`` in ``python`` started the way ``nogil-toolkit run`` starts it (its folder
    first on ``PYTHONPATH``), with ``NOGIL_MODE=mode`` and the fixture modules importable.
    ``env`` adds variables; a value of None removes one."""
    environ = clean_env(NOGIL_TOOLKIT_CACHE=str(cache), NOGIL_PROJECT="")
    environ.pop("NOGIL_MODE", None)
    environ["PYTHONPATH"] = os.pathsep.join([str(run_folder(cache)), *([str(modules.folder)] if modules else [])])
    if mode is not None:
        environ["NOGIL_MODE"] = mode
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    done = subprocess.run([python, *args, "-c", code], env=environ, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    return Guarded(done.returncode, done.stdout, done.stderr)


MAPPED = "sorted({line.split()[-1] for line in open('/proc/self/maps') if line.rstrip().endswith('.so')})"
"""Python code: the shared objects mapped into the process (``/proc/self/maps``)."""

