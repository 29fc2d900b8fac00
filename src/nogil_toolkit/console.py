"""Terminal conventions shared by every command: errors, warnings, colour, exit statuses.

Machine output goes to stdout; diagnostics and progress to stderr. Colour only on a
terminal, never with ``NO_COLOR``, always with ``FORCE_COLOR`` (https://no-color.org).
:func:`run_cli` is the one place where a command meets the outside world's interruptions:
signals and an output that cannot be written end it with one line and a documented status.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
import signal
import sys

TYPE_CHECKING = False  # typing is not imported at run time: every command's --version would pay for it
if TYPE_CHECKING:
    from typing import Callable, Iterator, Optional, Sequence, TextIO

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
"""Also: the output could not be written (closed pipe, full disk)."""
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM

EXIT_STATUS_HELP = f"""\
  {EXIT_INTERRUPTED}  interrupted (SIGINT, Ctrl-C)
  {EXIT_TERMINATED}  terminated (SIGTERM)"""
"""The statuses every command shares, for the ``--help`` epilogs."""

COLLECT_EVERY = 50_000
"""Container objects a command allocates (net) between two runs of the cyclic collector.

A command is a short batch whose objects mostly live until it ends, and a free-threaded
build's collector walks the whole heap each time (it has no generations): at the default
2,000, a cached check of 400 modules collected seven times for nothing, a cold one eight,
3-4 % of their run. Garbage cycles are still collected, only less often."""

_STYLES = {"red": "31", "yellow": "33", "green": "32", "bold": "1", "dim": "2"}


def use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def style(text: str, name: str, stream: TextIO) -> str:
    return f"\033[{_STYLES[name]}m{text}\033[0m" if use_colour(stream) else text


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1


def printable(text: str) -> str:
    """``text`` with its control characters escaped as Python writes them (``\\x1b``, ``\\n``,
    ``\\t``). Lines of output carry names read from files nobody vetted (distribution metadata,
    wheel members, file names, strings in binaries): printed raw, an escape sequence among them
    could clear the screen, retitle the terminal or draw a forged line, and a newline would
    split one line into two. Escape first, then :func:`style`: the colours are ours alone."""
    return _CONTROL.sub(lambda match: repr(match[0])[1:-1], text)


def plural(count: int, singular: str, plural_form: str = "") -> str:
    """``1 module``, ``2 modules``."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def error(message: str, where: str | None = None) -> None:
    """``error: <what> (<where>)`` on stderr."""
    suffix = f" ({printable(where)})" if where else ""
    print(f"{style('error', 'red', sys.stderr)}: {printable(message)}{suffix}", file=sys.stderr)


def warning(message: str) -> None:
    print(f"{style('warning', 'yellow', sys.stderr)}: {printable(message)}", file=sys.stderr)


def info(message: str) -> None:
    """A note on stderr, as written: notes may span lines (the build steps still to do)."""
    print(message, file=sys.stderr)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like ``KeyboardInterrupt`` for SIGINT, so that
    ``finally`` blocks and context managers clean up (temporary files, worker pools)."""


class _Interruptions:
    """SIGINT and SIGTERM while a command runs: each raises its exception in the main thread.

    Python runs a signal handler at the next bytecode, which may be inside a finaliser or an
    at-fork callback, where the exception is only printed as "Exception ignored" and the
    command goes on. Such a swallowed interruption is not printed, and the command, once it
    ends, still ends as interrupted. (The inspector's worker pool keeps these signals blocked
    while it forks.)"""

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self._pid = os.getpid()
        self._hook = sys.unraisablehook

    def handle(self, signum: int, frame: object) -> None:
        if os.getpid() != self._pid:
            # A forked child (a pool worker) before it set handlers of its own: it holds
            # nothing that needs cleaning up, and its parent reports the interruption.
            os._exit(128 + signum)
        self.received = signum
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated

    def unraisable(self, report: "sys.UnraisableHookArgs") -> None:
        if not (isinstance(report.exc_value, (KeyboardInterrupt, Terminated)) and self.received is not None):
            self._hook(report)

    def check(self) -> None:
        """At the end: an interruption was swallowed, and the command ran on to its end."""
        if self.received is not None:
            raise KeyboardInterrupt if self.received == signal.SIGINT else Terminated

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous: dict[int, object] = {}
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                current = signal.getsignal(signum)
                if current is signal.SIG_IGN:  # e.g. SIGINT of a background job: stays ignored
                    continue
                previous[signum] = signal.signal(signum, self.handle)
        except ValueError:  # not the main thread (a command called from a thread): leave it be
            pass
        self._hook, sys.unraisablehook = sys.unraisablehook, self.unraisable
        try:
            yield
        finally:
            sys.unraisablehook = self._hook
            for signum, handler in previous.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]


class _OutputError(Exception):
    """Writing the command's output failed; ``errno`` says why (EPIPE, ENOSPC, EIO)."""


class _Output:
    """Stands for ``sys.stdout`` while a command runs, so that a failure to write its output
    is told apart from the same ``OSError`` raised by a file the command itself handles.

    ``None`` is a process started with its standard output closed (``>&-``): the command
    runs, and fails as an unwritable output only if it has something to write."""

    def __init__(self, stream: Optional[TextIO]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if self._stream is None:
            raise _OutputError("standard output is closed")
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise _OutputError(exc.strerror or str(exc)) from None

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except OSError as exc:
            raise _OutputError(exc.strerror or str(exc)) from None

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's flush at exit, which would write
    what is still buffered to the dead output, neither fails nor prints a traceback."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (an in-process caller captured it): nothing flushes it at exit
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)


def _say(message: str) -> None:
    """The one line, unless stderr itself is gone."""
    with contextlib.suppress(OSError, ValueError):
        error(message)
        sys.stderr.flush()


def run_cli(main: Callable[[Optional[Sequence[str]]], int]) -> Callable[[Optional[Sequence[str]]], int]:
    """Wrap a command's ``main``: every console entry point goes through this.

    - SIGINT and SIGTERM end the command with ``error: interrupted`` / ``error: terminated``
      and status 130 / 143, after ``finally`` blocks ran (no traceback);
    - an output that cannot be written (``| head -1``, ``> /dev/full``) ends it with one line
      and status 2; everything is flushed here, so no write is left for the interpreter's exit;
    - paths that are not valid in the output's encoding are escaped, not a traceback;
    - the cyclic collector runs every :data:`COLLECT_EVERY` allocations, not every 2,000;
    - a process started with stderr closed (``2>&-``) says nothing, rather than sending its
      diagnostics (``print(file=None)``) into stdout, where they would corrupt a JSON report.
    """

    @functools.wraps(main)
    def entry(argv: Optional[Sequence[str]] = None) -> int:
        real_stdout, real_stderr = sys.stdout, sys.stderr
        if real_stderr is None:
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - closed when the command ends
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError):
                stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        sys.stdout = _Output(real_stdout)  # type: ignore[assignment]
        interruptions = _Interruptions()
        thresholds = gc.get_threshold()
        gc.set_threshold(COLLECT_EVERY, *thresholds[1:])
        try:
            with interruptions.installed():
                try:
                    code = main(argv)
                finally:  # also for argparse's SystemExit (--help, --version, usage errors)
                    sys.stdout.flush()
                interruptions.check()
                return code
        except KeyboardInterrupt:
            _say("interrupted")
            return EXIT_INTERRUPTED
        except Terminated:
            _say("terminated")
            return EXIT_TERMINATED
        except _OutputError as exc:
            _silence_stdout()
            _say(f"cannot write the output ({exc})")
            return EXIT_USAGE
        finally:
            gc.set_threshold(*thresholds)
            sys.stdout = real_stdout
            if real_stderr is None:
                sys.stderr.close()
                sys.stderr = real_stderr

    return entry
