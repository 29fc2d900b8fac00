"""Inspecting many files in worker processes gives exactly the serial answers, in order."""

from __future__ import annotations

from pathlib import Path

from nogil_toolkit.inspect import inspect_binary, inspect_files
from nogil_toolkit.inspect.parallel import PARALLEL_THRESHOLD
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
