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
from support import children, make_venv, run

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


BIN = Path(sys.executable).parent
# An extension module whose init records its process id, then sleeps: a probe that never ends.
SLEEPY_C = """
#include <Python.h>
#include <stdio.h>
#include <unistd.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "NAME", NULL, 0, NULL};
PyMODINIT_FUNC PyInit_NAME(void) {
    FILE *out = fopen(PIDS "/NAME.tmp", "w");
    fprintf(out, "%d", (int)getpid());
    fclose(out);
    rename(PIDS "/NAME.tmp", PIDS "/NAME.pid");
    sleep(600);
    return PyModuleDef_Init(&def);
}
"""


def running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie waiting for its parent is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def interrupted(command: list[str], signum: int, ready: object, timeout: float = 60) -> tuple[int, str]:
    """Start ``command`` in a session of its own, send ``signum`` to its group as soon as
    ``ready(pid)`` (a terminal's Ctrl-C), and return its status and stderr."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + timeout
    while not ready(process.pid) and process.poll() is None:  # type: ignore[operator]
        assert time.monotonic() < deadline, "the command never got ready"
    assert process.poll() is None, "the command ended before it could be interrupted"
    os.killpg(process.pid, signum)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in (process.pid, *children(process.pid)):
            os.kill(pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("the interrupted command did not end")
    return process.returncode, err


@pytest.fixture(scope="module")
def sleepy_modules(ft_python: str, ft_abi: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a folder of four modules whose init sleeps, the folder where their probes leave their ids)."""
    root = tmp_path_factory.mktemp("sleepy")
    folder, pids = root / "modules", root / "pids"
    folder.mkdir()
    pids.mkdir()
    include = run([ft_python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"]).stdout.strip()
    for index in range(4):
        name = f"_sleepy{index}"
        source = root / f"{name}.c"
        source.write_text(SLEEPY_C.replace("NAME", name))
        run(["cc", "-shared", "-fPIC", f"-I{include}", f'-DPIDS="{pids}"', source, "-o",
             folder / f"{name}{ft_abi[1]}"])
    return folder, pids


@pytest.mark.parametrize(("signum", "status", "line"), [(signal.SIGINT, 130, "error: interrupted"),
                                                        (signal.SIGTERM, 143, "error: terminated")])
def test_an_interruption_kills_running_probes_and_starts_no_more(ft_python: str, sleepy_modules: tuple[Path, Path],
                                                                 tmp_path: Path, signum: int, status: int,
                                                                 line: str) -> None:
    folder, pids = sleepy_modules
    for old in pids.iterdir():
        old.unlink()
    venv = make_venv(ft_python, tmp_path / "venv")
    command = [str(BIN / "nogil-check-env"), "--python", str(venv), "--no-project", "--no-cache", "--path",
               str(folder), "--probe", "--jobs", "2", "--timeout", "500"]
    # Two probes are in their modules' init; the other two wait for a free slot.
    code, err = interrupted(command, signum, lambda pid: len(list(pids.glob("*.pid"))) == 2)
    assert (code, err) == (status, line + "\n")
    probes = [int(p.read_text()) for p in pids.glob("*.pid")]
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in probes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in probes), "a probe is still running"
    time.sleep(1)
    assert len(list(pids.glob("*.pid"))) == 2, "a probe started after the interruption"


def worker_exists(pid: int) -> bool:
    """A forked inspection worker exists: a child running the same command line."""
    try:
        own = Path(f"/proc/{pid}/cmdline").read_bytes()
        return any(Path(f"/proc/{child}/cmdline").read_bytes() == own for child in children(pid))
    except OSError:
        return False


@pytest.mark.parametrize(("signum", "status", "line"), [(signal.SIGINT, 130, "error: interrupted"),
                                                        (signal.SIGTERM, 143, "error: terminated")])
def test_an_interruption_as_the_inspection_workers_start(ft_python: str, tmp_path: Path, signum: int, status: int,
                                                         line: str) -> None:
    """The signal reaches the command the moment its first worker exists, again and again:
    it always ends at once, with one line, and leaves no worker behind."""
    dynload = Path(run([ft_python, "-c", "import sysconfig; print(sysconfig.get_config_var('DESTSHARED'))"])
                   .stdout.strip())
    tree = tmp_path / "tree"
    for copy in range(10):
        package = tree / f"copy{copy}"
        package.mkdir(parents=True)
        for module in dynload.glob("*.so"):
            (package / module.name).symlink_to(module)
    venv = make_venv(ft_python, tmp_path / "venv")
    command = [str(BIN / "nogil-check-env"), "--python", str(venv), "--no-project", "--no-cache", "--path", str(tree),
               "--jobs", "2"]
    for _ in range(15):
        seen: list[int] = []

        def ready(pid: int) -> bool:
            seen.extend(children(pid))
            return worker_exists(pid)

        assert interrupted(command, signum, ready, timeout=30) == (status, line + "\n")
        survivors = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in seen if running(pid)}
        assert not survivors, survivors
