"""Inspect many files at once, in forked worker processes where that is cheap.

The inspector is pure Python; on a GIL interpreter threads would take turns, so the work is
shared between forked processes, which start in a millisecond and inherit everything already
imported. Each worker takes every ``jobs``-th file and writes each answer to a pipe of its own;
this process reads the pipes as answers come.

Not ``multiprocessing.Pool``: its shutdown is a conversation with its workers and three
threads of its own (queue locks, sentinels, a handler that replaces workers that died), which
an interruption during start-up could leave waiting forever; and importing and starting it
cost more than reading a few hundred binaries. Here the workers share nothing with this
process but their pipes, so an interruption ends them with SIGKILL, reaps them, and is done.

Where ``fork`` is not available (Windows, or a failing fork) the files are read one after the
other: same answers, only slower. Small batches are not worth the workers.
"""

from __future__ import annotations

import marshal
import os
import signal
from typing import Callable, Iterator, Optional, Sequence

from nogil_toolkit.inspect.core import inspect_binary
from nogil_toolkit.inspect.verdict import ModuleInspection, inspection_from_json, inspection_to_json

_INTERRUPTIONS = (signal.SIGINT, signal.SIGTERM)
PARALLEL_THRESHOLD = 64
"""Below this many files the workers' start-up costs more than it saves."""
_Item = tuple[str, Optional[str], Optional[tuple[int, ...]]]
_CAN_FORK = hasattr(os, "fork") and hasattr(signal, "pthread_sigmask")  # not on Windows


def inspect_files(paths: Sequence[str], jobs: int = 1,
                  progress: Optional[Callable[[int, int], None]] = None,
                  modules: Optional[Sequence[Optional[str]]] = None,
                  python: Optional[tuple[int, ...]] = None) -> list[ModuleInspection]:
    """:func:`inspect_binary` for each path, in order, with up to ``jobs`` processes.

    ``modules``, parallel to ``paths``, gives each file's full dotted module name where known;
    ``python`` is the target CPython's version, as for :func:`inspect_binary`.
    """
    total = len(paths)
    items: list[_Item] = [(path, module, python)
                          for path, module in zip(paths, modules if modules is not None else [None] * total)]
    results: list[Optional[ModuleInspection]] = [None] * total
    workers = None
    parallel = jobs > 1 and total >= PARALLEL_THRESHOLD and _CAN_FORK
    # Interruptions wait while workers are forked, so that none is left unrecorded; a pending
    # one arrives as they are let through again, inside the try: every worker is then killed.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTIONS) if parallel else set()
    try:
        if parallel:
            workers = _start_workers(items, min(jobs, total), blocked)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        answers = workers.answers() if workers is not None else (
            (index, _inspect_item(item)) for index, item in enumerate(items))
        for done, (index, inspection) in enumerate(answers, start=1):
            results[index] = inspection
            if progress and done % 25 == 0:
                progress(done, total)
    except BaseException:
        if workers is not None:
            workers.close(kill=True)
        raise
    finally:
        if parallel:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    if workers is not None:
        failed = workers.close(kill=False)
        if failed:
            raise RuntimeError(f"an inspection worker failed ({failed})")
    return results  # type: ignore[return-value]  # every index was answered


def _inspect_item(item: _Item) -> ModuleInspection:
    """One (path, module name, target version): what each worker runs."""
    return inspect_binary(*item)


def _start_workers(items: list[_Item], jobs: int, mask: set[signal.Signals]) -> Optional[_Workers]:
    """The workers, or None when they cannot be forked today (process limits): the serial path
    gives the same answers."""
    workers = _Workers(items)
    try:
        for worker in range(jobs):
            workers.fork(items, worker, jobs, mask)
    except OSError:
        workers.close(kill=True)
        return None
    return workers


class _Workers:
    """Forked workers and the read ends of their pipes. Workers leave this process group (a
    terminal's Ctrl-C is this process's to handle) and die of SIGTERM at once (its default
    action); SIGKILL ends them whatever they do."""

    def __init__(self, items: list[_Item]) -> None:
        self._items = items
        self._pids: list[int] = []
        self._pipes: dict[int, bytearray] = {}  # read end -> bytes read but not yet decoded

    def fork(self, items: list[_Item], worker: int, jobs: int, mask: set[signal.Signals]) -> None:
        """Start worker number ``worker`` of ``jobs``; ``mask`` is the signal mask it works with."""
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # the worker: it never returns from here
            os.close(read_end)
            _work(items, worker, jobs, write_end, mask)
        os.close(write_end)
        self._pids.append(pid)
        self._pipes[read_end] = bytearray()

    def answers(self) -> Iterator[tuple[int, ModuleInspection]]:
        """(index, inspection) pairs as the workers write them, until every pipe is closed."""
        import selectors  # only a batch worth the workers gets here

        with selectors.DefaultSelector() as selector:
            for pipe in self._pipes:
                selector.register(pipe, selectors.EVENT_READ)
            while selector.get_map():
                for key, _ in selector.select():
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        selector.unregister(key.fd)
                        continue
                    buffer = self._pipes[key.fd]
                    buffer += chunk
                    yield from _answers(buffer, self._items)

    def close(self, kill: bool) -> Optional[str]:
        """Reap every worker (killing them first if ``kill``), close the pipes; returns how a
        worker that did not exit cleanly ended, if one did not."""
        failed = None
        for pid in self._pids:
            if kill:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0 and failed is None:
                failed = f"exit status {os.waitstatus_to_exitcode(status)}"
        self._pids.clear()
        for pipe in self._pipes:
            os.close(pipe)
        self._pipes.clear()
        return failed


def _answers(buffer: bytearray, items: list[_Item]) -> Iterator[tuple[int, ModuleInspection]]:
    """The complete answers at the front of ``buffer`` (a 4-byte length, then an answer in
    :mod:`marshal`: ``(index, plain inspection, None)`` or ``(index, None, what failed)``),
    removed from it. A worker's exception (a reader bug) is raised here: it must surface, not
    pass. Marshal, not pickle: the answers are plain data, and importing pickle cost a cold
    check more than reading ten binaries."""
    while len(buffer) >= 4:
        size = int.from_bytes(buffer[:4], "little")
        if len(buffer) < 4 + size:
            return
        index, answer, failure = marshal.loads(buffer[4:4 + size])
        del buffer[:4 + size]
        if failure is not None:
            raise RuntimeError(f"an inspection worker failed reading {items[index][0]}: {failure}")
        yield index, inspection_from_json(items[index][0], answer)


def _work(items: list[_Item], worker: int, jobs: int, pipe: int, mask: set[signal.Signals]) -> None:
    """A worker's life: every ``jobs``-th item from ``worker`` on, each answer written as it comes."""
    status = 1
    try:
        os.setpgrp()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        with open(pipe, "wb") as out:
            for index in range(worker, len(items), jobs):
                try:
                    answer = (index, inspection_to_json(_inspect_item(items[index])), None)
                except Exception:  # sent to the parent, which raises it
                    import traceback

                    answer = (index, None, traceback.format_exc())
                data = marshal.dumps(answer)
                out.write(len(data).to_bytes(4, "little") + data)
        status = 0
    finally:
        os._exit(status)  # no cleanup of the parent's state: atexit handlers, buffers, finalisers
