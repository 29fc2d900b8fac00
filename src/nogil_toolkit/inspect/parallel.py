"""Inspect many files at once, in forked worker processes where that is cheap.

The inspector is pure Python; on a GIL interpreter threads would take turns, so the work is
shared between forked processes, which start in a millisecond and inherit everything already
imported. The workers take the files from one queue (a pipe), largest first, and write each
answer to a pipe of their own; this process reads the pipes as answers come and, once the
whole queue is in the pipe, takes files from it too: ``jobs`` processes read, one of them this
one, which saves a fork and the passing of a share of the answers.

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
_TASKS = object()
"""Marks the task pipe's write end among the pipes this process waits on."""
_PIPE_BUF = 512
"""Bytes of a pipe write that POSIX makes atomic at least (Linux: 4096): tasks are written in
pieces of this size, a multiple of an index's 4 bytes."""


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
            workers = _start_workers(items, min(jobs, total) - 1, blocked)
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
        workers.queue_tasks()
        for _ in range(jobs):
            workers.fork(mask)
    except OSError:
        workers.close(kill=True)
        return None
    return workers


class _Workers:
    """Forked workers, the queue of tasks they share and the read ends of their answer pipes.

    The tasks are item indexes, 4 bytes each, largest file first, in one pipe every worker
    reads from: whoever is free takes the next, so a worker slowed by a big file or by a busy
    core does not hold the others back. Writes of at most ``PIPE_BUF`` bytes to a pipe are
    atomic, and this process writes whole indexes, so each 4-byte read takes exactly one.
    Workers leave this process group (a terminal's Ctrl-C is this process's to handle) and die
    of SIGTERM at once (its default action); SIGKILL ends them whatever they do."""

    def __init__(self, items: list[_Item]) -> None:
        self._items = items
        self._pids: list[int] = []
        self._pipes: dict[int, bytearray] = {}  # read end -> bytes read but not yet decoded
        self._tasks = b"".join(index.to_bytes(4, "little") for index in _largest_first(items))
        self._sent = 0  # bytes of the tasks written so far
        self._task_reader = -1
        self._task_writer: Optional[int] = None  # open while tasks remain to be written
        self._queue_ended = False  # this process read the end of the queue

    def queue_tasks(self) -> None:
        """Open the task pipe and put in what it takes now; :meth:`answers` writes the rest."""
        self._task_reader, self._task_writer = os.pipe()
        os.set_blocking(self._task_writer, False)
        self._feed()

    def _feed(self) -> None:
        """Write the next tasks, in atomic pieces, as far as the pipe takes them; close its write
        end after the last one (the workers then read the end of the queue)."""
        assert self._task_writer is not None
        while self._sent < len(self._tasks):
            try:
                self._sent += os.write(self._task_writer, self._tasks[self._sent:self._sent + _PIPE_BUF])
            except BlockingIOError:
                return
        os.close(self._task_writer)
        self._task_writer = None

    def fork(self, mask: set[signal.Signals]) -> None:
        """Start one more worker; ``mask`` is the signal mask it works with."""
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # the worker: it never returns from here
            os.close(read_end)
            if self._task_writer is not None:
                os.close(self._task_writer)  # the end of the queue is seen once this process's copy is closed
            _work(self._items, self._task_reader, write_end, mask)
        os.close(write_end)
        self._pids.append(pid)
        self._pipes[read_end] = bytearray()

    def answers(self) -> Iterator[tuple[int, ModuleInspection]]:
        """(index, inspection) pairs as the workers write them and as this process reads files
        itself, until the queue is empty and every pipe is closed; the tasks the queue could not
        take at once are written as it drains (only then does this process take any: with tasks
        of its own still to write, a read of the queue could wait for itself)."""
        import selectors  # only a batch worth the workers gets here

        with selectors.DefaultSelector() as selector:
            for pipe in self._pipes:
                selector.register(pipe, selectors.EVENT_READ)
            if self._task_writer is not None:
                selector.register(self._task_writer, selectors.EVENT_WRITE, data=_TASKS)
            open_pipes = len(self._pipes)
            while open_pipes or not self._queue_ended:
                taking = self._task_writer is None and not self._queue_ended
                if taking:
                    # Every task is in the pipe: this process takes the next as a worker does (a
                    # blocking read returns a task or, the write end being closed, the end).
                    task = os.read(self._task_reader, 4)
                    if not task:
                        # The loop's condition decides what is left: the workers may all have
                        # ended already, and waiting on no pipe at all would never return.
                        self._queue_ended = True
                        continue
                    index = int.from_bytes(task, "little")
                    yield index, _inspect_item(self._items[index])
                for key, _ in selector.select(0 if taking else None):
                    if key.data is _TASKS:
                        self._feed()
                        if self._task_writer is None:  # closed: every task is in the pipe
                            selector.unregister(key.fd)
                        continue
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        selector.unregister(key.fd)
                        open_pipes -= 1
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
        for end in (self._task_writer, self._task_reader):
            if end is not None and end >= 0:
                os.close(end)
        self._task_writer, self._task_reader = None, -1
        return failed


def _largest_first(items: list[_Item]) -> list[int]:
    """Item indexes, largest file first: the big files start early and the small ones fill the
    gaps at the end, so the workers finish together."""
    def size(index: int) -> int:
        try:
            return os.stat(items[index][0]).st_size
        except (OSError, ValueError):
            return 0

    return sorted(range(len(items)), key=size, reverse=True)


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


def _work(items: list[_Item], tasks: int, pipe: int, mask: set[signal.Signals]) -> None:
    """A worker's life: take the next index from the queue, inspect that item, write the answer,
    until the queue ends."""
    status = 1
    try:
        os.setpgrp()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        with open(pipe, "wb") as out:
            while True:
                task = os.read(tasks, 4)
                if not task:
                    break
                index = int.from_bytes(task, "little")
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
