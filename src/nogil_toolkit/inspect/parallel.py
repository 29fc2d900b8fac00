"""Inspect many files at once, in worker processes where that is cheap.

The inspector is pure Python; on a GIL interpreter threads would take turns, so the work is
shared between forked processes, which start in milliseconds and inherit everything already
imported. Where ``fork`` is not available (Windows, or a failing fork) the files are read one
after the other: same answers, only slower. Small batches are not worth a pool.
"""

from __future__ import annotations

import os
import signal
from typing import Callable, Optional, Sequence

from nogil_toolkit.inspect.core import inspect_binary
from nogil_toolkit.inspect.verdict import ModuleInspection

_INTERRUPTIONS = (signal.SIGINT, signal.SIGTERM)
PARALLEL_THRESHOLD = 64
"""Below this many files the pool's start-up costs more than it saves."""


def _quiet_worker() -> None:
    """Interruptions are the parent's business. A worker leaves the process group, so that a
    terminal's Ctrl-C or a signal sent to the group reaches the parent only: a worker that
    died in the middle of taking a task would leave the task queue's lock held or its pipe
    half read, and the parent's ``terminate`` would hang. The parent ends its workers with
    SIGTERM once it holds that lock itself; they then exit at once and print nothing (an
    exception could be swallowed, were the signal to land in a finaliser). The parent forked
    with both signals blocked: one sent meanwhile arrives now, with these handlers in place."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_at_once)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTIONS)


def _exit_at_once(signum: int, frame: object) -> None:
    os._exit(128 + signum)


def inspect_files(paths: Sequence[str], jobs: int = 1,
                  progress: Optional[Callable[[int, int], None]] = None,
                  modules: Optional[Sequence[Optional[str]]] = None,
                  python: Optional[tuple[int, ...]] = None) -> list[ModuleInspection]:
    """:func:`inspect_binary` for each path, in order, with up to ``jobs`` processes.

    ``modules``, parallel to ``paths``, gives each file's full dotted module name where known;
    ``python`` is the target CPython's version, as for :func:`inspect_binary`.
    """
    total = len(paths)
    items = [(path, module, python) for path, module in zip(paths, modules if modules is not None else [None] * total)]
    if jobs > 1 and total >= PARALLEL_THRESHOLD:
        # Imported only for a batch worth a pool: a cached or one-file check never pays for it.
        import multiprocessing

        if "fork" in multiprocessing.get_all_start_methods():
            try:
                # Interruptions wait until the workers exist: in the at-fork callbacks that run
                # meanwhile, the parent's KeyboardInterrupt would only be printed, not raised; and
                # the workers start with them blocked until _quiet_worker has set their handlers.
                # They are let through inside the with block, whose exit then ends the workers.
                blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTIONS)
                try:
                    pool = multiprocessing.get_context("fork").Pool(min(jobs, total), initializer=_quiet_worker)
                except BaseException:
                    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                    raise
                with pool:
                    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                    results = []
                    chunk = max(1, total // (jobs * 8))
                    for done, result in enumerate(pool.imap(_inspect_item, items, chunksize=chunk), start=1):
                        results.append(result)
                        if progress and done % 25 == 0:
                            progress(done, total)
                    return results
            except OSError:
                pass  # no fork today (process limits): the serial path gives the same answers
    results = []
    for done, item in enumerate(items, start=1):
        results.append(_inspect_item(item))
        if progress and done % 25 == 0:
            progress(done, total)
    return results


def _inspect_item(item: tuple[str, Optional[str], Optional[tuple[int, ...]]]) -> ModuleInspection:
    """One (path, module name, target version); a module-level function so that workers can run it."""
    return inspect_binary(*item)
