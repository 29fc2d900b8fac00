"""Facts about the interpreter whose environment is checked, asked without running its code.

The target is started once with ``-I -S``: isolated (no environment variables, no user site,
no current directory on the path) and without ``site``, because ``site`` executes the
``import`` lines of ``.pth`` files, which is installed code. What ``site`` would have added
(the venv's site-packages, system site-packages when ``pyvenv.cfg`` asks for them) is
computed by the same functions ``site`` uses, without its side effects.

The script goes through stdin, not ``-c``: a ``--python`` that is not a Python (``/bin/ls``)
then never sees it, so it cannot echo it back in an error message.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

if TYPE_CHECKING:
    import subprocess

QUERY_TIMEOUT = 10.0
"""Seconds a target has to answer. It normally needs well under one; a slow disk may need a
few. Not the minutes a hung ``--python`` (a script that sleeps) would otherwise cost."""
ANSWER_LIMIT = 4 * 1024 * 1024
"""Bytes a target may write to stdout, and to stderr. Real answers are a few KB; without a
bound, a ``--python`` that writes endlessly (``cat /dev/zero``) would fill memory."""

_FACTS_SCRIPT = r"""
import importlib.machinery, locale, os, site, sys, sysconfig

def as_json(value):
    # json's import (re, enum) was half the target's start-up: the facts are plain values
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(c if " " <= c <= "~" and c not in '"\\' else char_escape(ord(c)) for c in value) + '"'
    if isinstance(value, dict):
        return "{" + ",".join(as_json(k) + ":" + as_json(v) for k, v in value.items()) + "}"
    return "[" + ",".join(map(as_json, value)) + "]"

def char_escape(code):
    if code < 0x10000:
        return "\\u%04x" % code
    code -= 0x10000
    return "\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))

def pyvenv_cfg():
    exe_dir = os.path.dirname(os.path.abspath(sys.executable))
    for folder in (exe_dir, os.path.dirname(exe_dir)):
        path = os.path.join(folder, "pyvenv.cfg")
        if os.path.isfile(path):
            return path
    return None

cfg = pyvenv_cfg()
prefixes = [sys.prefix]
if cfg:
    prefixes = [os.path.dirname(cfg)]
    with open(cfg, encoding="utf-8") as stream:
        values = dict(line.split("=", 1) for line in stream if "=" in line)
    if values.get("include-system-site-packages", "").strip().lower() == "true":
        prefixes.append(sys.base_prefix)
print(as_json({
    "executable": sys.executable,
    "implementation": sys.implementation.name,
    "version": list(sys.version_info[:3]),
    "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "extension_suffixes": list(importlib.machinery.EXTENSION_SUFFIXES),
    "platform": sysconfig.get_platform(),
    "site_packages": site.getsitepackages(prefixes),
    "user_site": site.getusersitepackages(),
    "stdlib_extensions": sysconfig.get_config_var("DESTSHARED") or "",
    "venv": os.path.dirname(cfg) if cfg else None,
    # What site.addpackage decodes .pth files with: 3.13+ tries UTF-8 first, then this.
    "pth_encoding": locale.getencoding() if sys.version_info >= (3, 13) else locale.getpreferredencoding(False),
}))
"""


class TargetError(RuntimeError):
    """The target interpreter could not be started or did not answer as expected."""


class TargetInterpreter(NamedTuple):
    """The facts the checker needs about the interpreter that will run the application."""

    executable: str
    implementation: str
    version: tuple[int, int, int]
    free_threaded: bool
    extension_suffixes: tuple[str, ...]
    platform: str
    site_packages: tuple[str, ...]
    user_site: str
    stdlib_extensions: str
    venv: Optional[str]
    pth_encoding: Optional[str] = None
    """The encoding ``site`` reads ``.pth`` files with (its fallback after UTF-8 on 3.13+)."""

    @property
    def name(self) -> str:
        """``CPython 3.13.5 (free-threaded)``."""
        flavour = "free-threaded" if self.free_threaded else "with GIL"
        return f"{'CPython' if self.implementation == 'cpython' else self.implementation} " \
               f"{'.'.join(map(str, self.version))} ({flavour})"

    @property
    def loads_abi3(self) -> bool:
        """abi3 modules assume the GIL build's object layout: free-threaded 3.13 and 3.14 cannot
        load them (their suffix is still in the import system's list), 3.15 brings abi3t."""
        return not self.free_threaded

    @classmethod
    def current(cls) -> TargetInterpreter:
        """The running interpreter, asked in-process: the runtime guard judges modules inside
        the application and cannot start a subprocess for it. ``site`` has already run here, so
        its prefixes are the ones the script above reconstructs."""
        import importlib.machinery
        import site
        import sysconfig

        in_venv = sys.prefix != sys.base_prefix
        return cls(sys.executable, sys.implementation.name, tuple(sys.version_info[:3]),  # type: ignore[arg-type]
                   bool(sysconfig.get_config_var("Py_GIL_DISABLED")), tuple(importlib.machinery.EXTENSION_SUFFIXES),
                   sysconfig.get_platform(), tuple(site.getsitepackages()), site.getusersitepackages(),
                   sysconfig.get_config_var("DESTSHARED") or "", sys.prefix if in_venv else None)

    @classmethod
    def from_json(cls, data: dict) -> TargetInterpreter:
        return cls(
            executable=data["executable"],
            implementation=data["implementation"],
            version=tuple(data["version"]),  # type: ignore[arg-type]
            free_threaded=data["free_threaded"],
            extension_suffixes=tuple(data["extension_suffixes"]),
            platform=data["platform"],
            site_packages=tuple(data["site_packages"]),
            user_site=data["user_site"],
            stdlib_extensions=data["stdlib_extensions"],
            venv=data["venv"],
            pth_encoding=data.get("pth_encoding"),
        )

    def to_json(self) -> dict:
        return {
            "executable": self.executable,
            "implementation": self.implementation,
            "version": list(self.version),
            "free_threaded": self.free_threaded,
            "extension_suffixes": list(self.extension_suffixes),
            "platform": self.platform,
            "site_packages": list(self.site_packages),
            "user_site": self.user_site,
            "stdlib_extensions": self.stdlib_extensions,
            "venv": self.venv,
            "pth_encoding": self.pth_encoding,
        }


def ask_target(python: Optional[str], script: str, *args: str, timeout: float = QUERY_TIMEOUT,
               while_waiting: Optional[Callable[[], object]] = None) -> Any:
    """Run ``script`` in ``python`` (default: the running interpreter) with ``-I -S`` and return
    the JSON it prints. The one way the toolkit questions a target interpreter.

    The child runs in a session of its own, so that on a timeout, an answer longer than
    :data:`ANSWER_LIMIT` (or an interruption) the whole group goes: a shell script that runs
    ``sleep`` leaves no ``sleep`` behind. ``while_waiting`` is called once the child has its
    script: work the caller will need anyway, done while the target starts (its start-up is
    most of the wait)."""
    import subprocess  # a cached check never asks: not worth importing up front

    executable = python or sys.executable
    if os.path.isdir(executable):
        raise TargetError(f"{executable} is a directory, not a Python interpreter")
    try:
        process = start_session([executable, "-I", "-S", "-", *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise TargetError(f"no interpreter at {executable}") from None
    except OSError as exc:
        raise TargetError(f"cannot run {executable}: {exc.strerror or exc}") from None
    try:
        _hand_over(process, script.encode())
        if while_waiting is not None:
            while_waiting()
        out, err = _collect(process, timeout)
    except subprocess.TimeoutExpired:
        end_session(process)
        raise TargetError(f"{executable} did not answer within {timeout:g} s; is it a Python interpreter?") from None
    except _AnswerTooLong:
        end_session(process)
        raise TargetError(f"{executable} wrote more than {ANSWER_LIMIT // (1024 * 1024)} MiB instead of the "
                          "expected JSON; is it a Python interpreter?") from None
    except BaseException:
        end_session(process)
        raise
    if process.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        detail = f"exit status {process.returncode}" + (f": {_shorten(lines[-1])}" if lines else "")
        raise TargetError(f"{executable} is not a usable Python interpreter ({detail})")
    try:
        return json.loads(out.decode(errors="replace"))
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json.loads goes
        what = "no answer" if not out.strip() else "an answer that is not the expected JSON"
        raise TargetError(f"{executable} gave {what}; is it a Python interpreter?") from None


def _hand_over(process: subprocess.Popen[Any], script: bytes) -> None:
    """Write the whole script to the child's stdin and close it. The script is far smaller than
    a pipe's buffer, so this never waits for the child; a child that exits without reading it
    is reported by its exit status."""
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        process.stdin.write(script)
    with contextlib.suppress(BrokenPipeError):
        process.stdin.close()


class _AnswerTooLong(Exception):
    """The child wrote more than :data:`ANSWER_LIMIT` bytes to stdout or stderr."""


def _collect(process: subprocess.Popen[Any], timeout: float) -> tuple[bytes, bytes]:
    """The child's stdout and stderr once it has closed both and ended, as ``communicate``
    returns them, but never more than :data:`ANSWER_LIMIT` bytes of either (_AnswerTooLong):
    ``communicate`` has no bound. subprocess.TimeoutExpired after ``timeout`` seconds in all.
    The caller ends the session on either. Each pipe is drained by a thread of its own, as
    ``communicate`` does on Windows, where pipes cannot be waited for with ``select``; the
    threads are daemons, so one left reading a pipe a grandchild still holds never keeps
    this process from exiting."""
    import queue
    import subprocess
    import threading
    import time

    deadline = time.monotonic() + timeout
    output: dict[Any, bytearray] = {process.stdout: bytearray(), process.stderr: bytearray()}
    ended: queue.SimpleQueue[Any] = queue.SimpleQueue()  # each stream, once its reader stops

    def drain(stream: Any) -> None:
        try:
            while len(output[stream]) <= ANSWER_LIMIT:
                chunk = stream.read1(65536)
                if not chunk:
                    break
                output[stream] += chunk
        except (OSError, ValueError):  # ValueError: closed by end_session
            pass
        finally:
            ended.put(stream)

    for stream in output:
        threading.Thread(target=drain, args=(stream,), daemon=True).start()
    for _ in output:
        try:
            stream = ended.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            raise subprocess.TimeoutExpired(process.args, timeout) from None
        if len(output[stream]) > ANSWER_LIMIT:
            raise _AnswerTooLong
    for stream in output:
        stream.close()
    process.wait(max(deadline - time.monotonic(), 0))
    return bytes(output[process.stdout]), bytes(output[process.stderr])


def start_session(argv: list[str], **popen: Any) -> subprocess.Popen[Any]:
    """``Popen(argv, start_new_session=True, **popen)``, with SIGINT and SIGTERM held back until
    the child is in hand: an interruption raised inside ``Popen`` would leave the child running,
    unknown to anyone. One that arrived meanwhile is raised once it is, after ending the child."""
    import signal
    import subprocess

    interruptions = (signal.SIGINT, signal.SIGTERM)
    can_block = hasattr(signal, "pthread_sigmask")  # not on Windows
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, interruptions) if can_block else set()
    try:
        process = subprocess.Popen(argv, start_new_session=True, **popen)
    except BaseException:
        if can_block:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise
    try:
        if can_block:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending interruption is raised here
    except BaseException:
        end_session(process)
        raise
    return process


def end_session(process: subprocess.Popen[Any]) -> None:
    """Kill a child started with ``start_new_session=True`` and its process group, reap the
    child, close the pipes (which a grandchild that left the group may still hold: nothing more
    is read from them)."""
    import signal

    if hasattr(os, "killpg"):  # not on Windows, where the child alone is killed
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def query_target(python: Optional[str] = None, timeout: float = QUERY_TIMEOUT,
                 while_waiting: Optional[Callable[[], object]] = None) -> TargetInterpreter:
    """Ask ``python`` (default: the running interpreter) for its facts (``while_waiting`` as
    for :func:`ask_target`)."""
    data = ask_target(python, _FACTS_SCRIPT, timeout=timeout, while_waiting=while_waiting)
    try:
        return TargetInterpreter.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise TargetError(f"{python or sys.executable} answered, but not with an interpreter's facts; "
                          "is it a Python interpreter?") from None


def interpreter_identity(python: Optional[str]) -> tuple[str, int, int]:
    """The interpreter's path as given, with the size and mtime of the binary it leads to: a
    cached answer is valid while these hold. The path is not resolved: a venv's ``python`` is a
    link to its base interpreter, and each venv is a target of its own."""
    given = os.path.abspath(python or sys.executable)
    stat = os.stat(given)
    return given, stat.st_size, stat.st_mtime_ns


def search_path(target: TargetInterpreter, extra: tuple[str, ...] = (), include_stdlib: bool = False) -> list[str]:
    """Directories the target imports extension modules from, in import order."""
    folders = [*extra, *target.site_packages]
    if os.path.isdir(target.user_site) and target.venv is None:
        folders.append(target.user_site)
    if include_stdlib and target.stdlib_extensions:
        folders.insert(0, target.stdlib_extensions)
    return list(dict.fromkeys(os.path.realpath(f) for f in folders if os.path.isdir(f)))
