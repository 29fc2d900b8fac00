"""CPython 3.15 export-hook modules (PEP 793) compiled for the tests, shared by the inspector,
wheel and environment tests.

There is no 3.15 interpreter here: ``tests/inspect/csrc/exporthook.c`` spells out 3.15's slot
layout itself and is compiled against the free-threaded 3.13 headers. The binaries are real
x86-64 shared libraries, read by the inspector exactly as a 3.15 build's would be.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from support import run

HOOK_SOURCE = Path(__file__).resolve().parent / "inspect" / "csrc" / "exporthook.c"
VARIANTS = ("DEFSLOT_NOT_USED", "PYSLOT_NOT_USED", "PYSLOT_NO_GIL", "RUNTIME_CHOICE")
"""The ``-D`` switches of ``exporthook.c``; ``WITH_PYINIT`` combines with any of them."""


def include_dir(python: str) -> str:
    """The C headers of ``python`` (the free-threaded 3.13 here)."""
    return run([python, "-I", "-c", "import sysconfig; print(sysconfig.get_path('include'))"]).stdout.strip()


def build_hook_module(out_dir: Path, name: str, suffix: str, include: str, *defines: str, opt: str = "-O2") -> Path:
    """Compile ``exporthook.c`` as module ``name`` with the given variant switches."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}{suffix}"
    run(["gcc", opt, "-fPIC", "-shared", "-fvisibility=hidden", f"-I{include}", f"-DMODNAME={name}",
         f'-DMODNAME_STR="{name}"', f"-DPYINIT=PyInit_{name}", *(f"-D{d}" for d in defines),
         HOOK_SOURCE, "-o", target])
    return target


def host_platform_tag() -> str:
    return sysconfig.get_platform().replace("-", "_").replace(".", "_")
