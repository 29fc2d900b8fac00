"""Inspecting many files in worker processes gives exactly the serial answers, in order."""

from __future__ import annotations

import gc
import zipfile
from pathlib import Path

from nogil_toolkit.inspect import inspect_binary, inspect_bytes, inspect_files
from nogil_toolkit.inspect.parallel import PARALLEL_THRESHOLD

from inspect_support import download_wheel
from support import run


def test_parallel_equals_serial_on_the_standard_library(ft_python: str, tmp_path: Path) -> None:
    dynload = run([ft_python, "-c", "import sysconfig; print(sysconfig.get_config_var('DESTSHARED'))"]).stdout.strip()
    paths = sorted(str(p) for p in Path(dynload).glob("*.so"))
    (tmp_path / "junk.so").write_bytes(b"\x7fELF" + b"\x01" * 100)
    paths.append(str(tmp_path / "junk.so"))  # an UNKNOWN among them
    assert len(paths) >= PARALLEL_THRESHOLD
    seen: list[int] = []
    parallel = inspect_files(paths, jobs=2, progress=lambda done, total: seen.append(done))
    assert parallel == [inspect_binary(p) for p in paths]
    assert seen and seen == sorted(seen) and all(done % 25 == 0 for done in seen)
    assert inspect_files(paths[:3], jobs=2) == [inspect_binary(p) for p in paths[:3]]
    modules = [f"pkg.{Path(p).name.split('.')[0]}" for p in paths]
    assert inspect_files(paths, jobs=2, modules=modules) == [inspect_binary(p, m) for p, m in zip(paths, modules)]


def test_more_tasks_than_the_queue_holds_at_once(ft_python: str, tmp_path: Path) -> None:
    """20,000 tasks are 80 kB of indexes, more than a pipe holds (64 kB on Linux): the rest is
    written as the workers drain the queue, and every answer still comes, in order."""
    dynload = run([ft_python, "-c", "import sysconfig; print(sysconfig.get_config_var('DESTSHARED'))"]).stdout.strip()
    real = sorted(str(p) for p in Path(dynload).glob("*.so"))
    paths = [*real, *(str(tmp_path / f"missing{index}.so") for index in range(20_000)), *real]
    parallel = inspect_files(paths, jobs=3)
    assert parallel == [inspect_binary(p) for p in paths]
    assert {i.reason for i in parallel[len(real):-len(real)]} == {"cannot read file: No such file or directory"}


def test_reading_leaves_no_reference_cycles(ft_python: str) -> None:
    """Everything a read builds is freed by reference counting: a cycle per file would leave
    each image to the cyclic collector, whose every pass walks the whole heap (a free-threaded
    build has no generations), several times in each worker of an environment's scan.
    ELF (x86-64 and aarch64), PE and Mach-O, with their relocation readers used."""
    dynload = run([ft_python, "-c", "import sysconfig; print(sysconfig.get_config_var('DESTSHARED'))"]).stdout.strip()
    binaries = [(p.name, p.read_bytes()) for p in sorted(Path(dynload).glob("*.so"))]
    for platform in ("manylinux_2_28_aarch64", "win_amd64", "macosx_11_0_arm64", "macosx_10_13_x86_64"):
        with zipfile.ZipFile(download_wheel("markupsafe", platform)) as archive:
            binaries += [(n, archive.read(n)) for n in archive.namelist() if n.endswith((".so", ".pyd"))]
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        read = [inspect_bytes(data, name, python=python) for name, data in binaries for python in ((3, 13), (3, 15))]
        found = gc.collect()
    finally:
        if enabled:
            gc.enable()
    assert {r.format for r in read} == {"elf", "pe", "macho"}
    assert sum(r.evidence != () for r in read) > len(binaries)  # slot arrays were looked for and found
    assert found == 0
