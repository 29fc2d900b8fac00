"""Inspect many files at once, in worker processes where that is cheap.

The inspector is pure Python; on a GIL interpreter threads would take turns, so the work is
shared between forked processes, which start in milliseconds and inherit everything already
imported. Where ``fork`` is not available (Windows, or a failing fork) the files are read one
after the other: same answers, only slower. Small batches are not worth a pool.
"""

from __future__ import annotations

import multiprocessing
import signal
from typing import Callable, Optional, Sequence

from nogil_toolkit.inspect.core import inspect_binary
from nogil_toolkit.inspect.verdict import ModuleInspection

PARALLEL_THRESHOLD = 64
"""Below this many files the pool's start-up costs more than it saves."""


def _quiet_worker() -> None:
    """Workers leave interruptions to the parent: Ctrl-C reaches the whole process group, and
    the parent's handlers (inherited through fork) would print a traceback per worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_quietly)


def _exit_quietly(signum: int, frame: object) -> None:
    """SIGTERM (the pool's own terminate, or one sent to every process) ends a worker without
    a traceback: ``multiprocessing`` exits quietly on SystemExit. Dying at once instead could
    leave the task queue's lock held (an idle worker holds it while it waits), and the
    parent's terminate would wait for that lock forever."""
    raise SystemExit(128 + signum)


def inspect_files(paths: Sequence[str], jobs: int = 1,
                  progress: Optional[Callable[[int, int], None]] = None) -> list[ModuleInspection]:
    """:func:`inspect_binary` for each path, in order, with up to ``jobs`` processes."""
    total = len(paths)
    if jobs > 1 and total >= PARALLEL_THRESHOLD and "fork" in multiprocessing.get_all_start_methods():
        try:
            with multiprocessing.get_context("fork").Pool(min(jobs, total), initializer=_quiet_worker) as pool:
                results = []
                chunk = max(1, total // (jobs * 8))
                for done, result in enumerate(pool.imap(inspect_binary, paths, chunksize=chunk), start=1):
                    results.append(result)
                    if progress and done % 25 == 0:
                        progress(done, total)
                return results
        except OSError:
            pass  # no fork today (process limits): the serial path gives the same answers
    results = []
    for done, path in enumerate(paths, start=1):
        results.append(inspect_binary(path))
        if progress and done % 25 == 0:
            progress(done, total)
    return results
