"""The index the verdict cache writes for the guard's warm path: derived from the cache file,
trusted only while that file is the one it was made from, and read without ``json``."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from nogil_toolkit.cache import CheckCache
from nogil_toolkit.guard.warm import WarmVerdicts
from nogil_toolkit.inspect import ModuleInspection, Verdict

SUFFIX = ".cpython-313t-x86_64-linux-gnu.so"
KEEPS_OFF = ("keeps-gil-off", "declares that it runs without the GIL")


def cached(tmp_path: Path) -> tuple[CheckCache, Path]:
    binary = tmp_path / f"m{SUFFIX}"
    binary.write_bytes(b"\x7fELF fixture")
    cache = CheckCache(tmp_path / "cache", "/x/python3.13t")
    cache.store(str(binary), os.stat(binary),
                ModuleInspection(str(binary), "elf", "x86_64", ("PyInit_m",), Verdict.NOT_USED, ()))
    cache.save()
    return cache, binary


def test_a_stale_index_is_ignored_and_the_next_save_rewrites_it(tmp_path: Path) -> None:
    cache, binary = cached(tmp_path)
    assert cache.index_path.is_file()
    reader = WarmVerdicts(str(cache.path))
    assert reader.status(str(binary), os.stat(binary)) == KEEPS_OFF
    # Another writer (an older toolkit, say) replaces the cache file and writes no index.
    data = json.loads(cache.path.read_text())
    cache.path.write_text(json.dumps(data, indent=1))
    assert reader.status(str(binary), os.stat(binary)) is None
    # A save with nothing to change (the guard's cold path finding everything cached) repairs it.
    CheckCache(tmp_path / "cache", "/x/python3.13t").save()
    assert reader.status(str(binary), os.stat(binary)) == KEEPS_OFF


READ_WARM = """
import os, sys
from nogil_toolkit.guard.warm import WarmVerdicts
print(WarmVerdicts(sys.argv[1]).status(sys.argv[2], os.stat(sys.argv[2])), "json" in sys.modules)
"""


def test_the_warm_path_reads_no_json(tmp_path: Path) -> None:
    cache, binary = cached(tmp_path)
    out = subprocess.run([sys.executable, "-c", READ_WARM, str(cache.path), str(binary)], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    assert out.split(")")[1].strip() == "False" and "keeps-gil-off" in out, out


def limited_memory() -> None:
    """``preexec_fn``: an endless read fails with MemoryError instead of taking the machine's memory."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def malformed(index: Path, header: str) -> None:
    index.write_text(f"{header}\nsize\tmtime\tinode\tkeeps-gil-off\t/x.so\tnot written by render()\n")


@pytest.mark.parametrize("plant", [lambda index, header: os.mkfifo(index),
                                   lambda index, header: index.symlink_to("/dev/zero"), malformed],
                         ids=["fifo", "dev-zero", "malformed"])
def test_an_index_that_is_no_index_answers_nothing(tmp_path: Path, plant: Callable[[Path, str], None]) -> None:
    """A guarded application reads the index at start-up: a FIFO there must not block it, a link
    to /dev/zero not fill its memory, a line render() did not write not raise. The warm path then
    answers nothing, and the cold path decides."""
    cache, binary = cached(tmp_path)
    header = cache.index_path.read_text().partition("\n")[0]
    cache.index_path.unlink()
    plant(cache.index_path, header)
    result = subprocess.run([sys.executable, "-c", READ_WARM, str(cache.path), str(binary)], capture_output=True,
                            text=True, timeout=60, preexec_fn=limited_memory)
    assert (result.returncode, result.stdout, result.stderr) == (0, "None False\n", "")
