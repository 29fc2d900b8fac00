"""Races with the outside world, each in a real process: a FIFO swapped in under the inspector,
and SIGINT/SIGTERM while the inspection pool starts or while import probes run.

A hang is what these tests look for: every process runs with a timeout, and a timeout fails."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nogil_toolkit
from support import make_venv, run

pytestmark = pytest.mark.freethreaded

SOURCES = str(Path(nogil_toolkit.__file__).resolve().parent.parent)

# Inspects one path over and over while a thread keeps replacing it, alternately, with a FIFO
# and a regular binary. The inspector stats, then opens: a FIFO that arrives in between must
# neither block the open nor be read.
FIFO_SWAP = r"""
import collections, json, os, sys, threading
from nogil_toolkit.inspect import inspect_binary

path, binary, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
done = threading.Event()

def swap():
    n = 0
    while not done.is_set():
        n += 1
        temp = f"{path}.{n}"
        if n % 2:
            os.mkfifo(temp)
        else:
            os.link(binary, temp)
        os.replace(temp, path)

swapper = threading.Thread(target=swap)
swapper.start()
try:
    seen = collections.Counter(inspect_binary(path).verdict.value for _ in range(rounds))
finally:
    done.set()
    swapper.join()
print(json.dumps(seen))
"""


def test_a_fifo_swapped_in_after_the_stat_does_not_hang_the_inspector(ft_python: str, tmp_path: Path) -> None:
    dynload = run([ft_python, "-c", "import sysconfig; print(sysconfig.get_config_var('DESTSHARED'))"]).stdout
    binary = tmp_path / "real.so"
    shutil.copy(sorted(Path(dynload.strip()).glob("*.so"))[0], binary)
    path = tmp_path / "swapped.so"
    env = {**os.environ, "PYTHONPATH": SOURCES}
    result = run([ft_python, "-c", FIFO_SWAP, path, binary, "20000"], env=env, timeout=60)
    seen = json.loads(result.stdout)
    # Both kinds were met (the race was run), and the binary was read whenever it was there.
    assert seen.get("unknown", 0) > 0 and seen.get("not-a-module", 0) + seen.get("not-used", 0) \
        + seen.get("used", 0) + seen.get("undeclared", 0) > 0, seen
