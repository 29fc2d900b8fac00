"""Confirm static verdicts by importing each module in a fresh subprocess of the target.

Opt-in (``nogil-check-env --probe``): importing runs the module's code. Each module is
loaded alone, from its file, by a new interpreter started with ``-I`` (which also ignores
``PYTHON_GIL``), with a timeout, several at a time. The GIL's state after the load, and the
module named by CPython's "GIL has been enabled to load module 'X'" warning, say whether
the module needs the GIL. When another module (one the probed module imported) re-enabled
it first, the probe cannot tell, and says so rather than guessing.

The GIL's state is read right after the module object is created, before its code runs:
CPython acts on a module's declaration when it creates the module, so that moment answers for
this module alone. Running its code afterwards may import its own package (which a normal
import would have loaded first: a circular import when the file is loaded alone) or other
modules that re-enable the GIL; neither says anything about this module's declaration.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple, Optional, Protocol, Sequence

from nogil_toolkit.target import end_session, start_session

if TYPE_CHECKING:
    import subprocess

# Loads the file directly, so that a package's __init__ runs only if the module itself
# imports it. The verdict is taken once the module is created (its declaration acted on) and
# printed at once, so that module code that then crashes the process cannot take it away;
# a failure of that code is reported on a second line. Lines start with _TAG: the module's
# own code may print too.
_SCRIPT = r"""
import importlib.machinery, importlib.util, json, re, sys, warnings
name, path, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path[:0] = extra
def blamed_by(caught):
    for w in caught:
        match = re.search(r"enabled to load module '([^']+)'", str(w.message))
        if match:
            return match.group(1)
    return None
error = exec_error = module = None
loader = importlib.machinery.ExtensionFileLoader(name, path)
spec = importlib.util.spec_from_file_location(name, path, loader=loader)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        module = importlib.util.module_from_spec(spec)  # runs the module's init: it may raise anything
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    print("\n" + TAG + json.dumps({"gil": sys._is_gil_enabled(), "blamed": blamed_by(caught), "error": error}),
          flush=True)
    if module is not None:
        sys.modules[name] = module
        try:
            loader.exec_module(module)  # the module's own code: SystemExit included
        except BaseException as exc:
            exec_error = f"{type(exc).__name__}: {exc}"
print("\n" + TAG + json.dumps({"exec_error": exec_error}), flush=True)
"""
_TAG = "nogil-toolkit-probe:"


class ProbedFile(Protocol):
    """What the probe needs to know about a file (an ``ExtensionFile`` has it)."""

    @property
    def path(self) -> str: ...

    @property
    def module(self) -> Optional[str]: ...


class ProbeResult(NamedTuple):
    """What loading one module in a fresh free-threaded interpreter did."""

    gil_enabled: Optional[bool]
    blamed: Optional[str]
    """The module CPython named when it re-enabled the GIL."""
    error: Optional[str]
    """Why the module could not be created (its declaration was never acted on)."""
    module: str
    exec_error: Optional[str] = None
    """The module was created, then its code failed when run alone (for example a circular
    import of its own package, which a normal import loads first). Does not affect the verdict."""

    @property
    def needs_gil(self) -> Optional[bool]:
        """True: this module re-enabled the GIL. False: loaded and the GIL stayed off.
        None: the load failed, or another module re-enabled the GIL first."""
        if self.gil_enabled is False and self.error is None:
            return False
        if self.blamed == self.module:
            return True
        return None

    @property
    def summary(self) -> str:
        if self.needs_gil is False:
            if self.exec_error:
                return ("created with the GIL still disabled (its code then failed when loaded alone: "
                        f"{self.exec_error})")
            return "loaded; the GIL stayed disabled"
        if self.needs_gil:
            return "loading it re-enabled the GIL"
        if self.error:
            return f"could not be loaded: {self.error}"
        return f"inconclusive: {self.blamed or 'another module'} re-enabled the GIL first"


def probe_module(python: str, file: ProbedFile, extra_paths: Sequence[str] = (), timeout: float = 30,
                 children: Optional[_Children] = None) -> ProbeResult:
    """Load ``file`` as ``file.module`` alone in a fresh ``python``; never raises (but for an
    interruption, which ends the probe's process first)."""
    import subprocess  # only probing runs processes: a cached check never pays for the import

    children = children if children is not None else _Children()
    name = file.module or ""
    # -I already ignores PYTHON_GIL; dropping it as well keeps the probe honest on
    # interpreters whose -I does not cover it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    argv = [python, "-I", "-c", f"TAG = {_TAG!r}\n{_SCRIPT}", name, file.path, *extra_paths]
    try:
        process = children.start(argv, env)
    except OSError as exc:
        return ProbeResult(None, None, f"could not start {python}: {exc}", name)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return ProbeResult(None, None, f"timed out after {timeout:g} s", name)
    finally:
        children.end(process)
    data: dict = {}
    for line in stdout.splitlines():
        if line.startswith(_TAG):
            try:
                data.update(json.loads(line[len(_TAG):]))
            except ValueError:
                pass
    died = (stderr.strip().splitlines() or [f"exit code {process.returncode}"])[-1]
    if "gil" not in data:
        return ProbeResult(None, None, f"the interpreter died: {died}", name)
    exec_error = data["exec_error"] if "exec_error" in data else f"the interpreter died: {died}"
    return ProbeResult(data["gil"], data["blamed"], data["error"], name, exec_error)


class _Children:
    """The probe processes running now. Each runs in a session of its own (a terminal's Ctrl-C
    reaches this process only, and whatever a module's code starts goes with its probe);
    :meth:`end_all`, on an interruption, kills them and refuses to start more."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self._closed = False

    def start(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        import subprocess

        with self._lock:
            if self._closed:
                raise OSError("the check was interrupted")
            process = start_session(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            self._running.add(process)
            return process

    def end(self, process: subprocess.Popen[str]) -> None:
        """Forget a probe; one still running (timed out, interrupted) is killed with its session.
        (A reaped one is left alone: its id may already belong to another process.)"""
        with self._lock:
            self._running.discard(process)
        if process.returncode is None:
            end_session(process)

    def end_all(self) -> None:
        with self._lock:
            self._closed = True
            running = list(self._running)
        for process in running:
            if process.returncode is None:
                end_session(process)


def probe_modules(python: str, files: Iterable[ProbedFile], extra_paths: Sequence[str] = (),
                  timeout: float = 30, jobs: int = 4,
                  progress: Optional[Callable[[int, int], None]] = None) -> dict[str, ProbeResult]:
    """Probe each file, ``jobs`` at a time; results keyed by file path.

    An interruption (Ctrl-C, SIGTERM) cancels the probes not yet started and kills the running
    ones before it goes on up: nothing is left running, and nothing waits for them."""
    todo = list(files)
    results: dict[str, ProbeResult] = {}
    children = _Children()
    if len(todo) == 1 or jobs <= 1:
        try:
            for done, file in enumerate(todo, start=1):
                results[file.path] = probe_module(python, file, extra_paths, timeout, children)
                if progress:
                    progress(done, len(todo))
        except BaseException:
            children.end_all()
            raise
        return results
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {pool.submit(probe_module, python, f, extra_paths, timeout, children): f for f in todo}
        for done, future in enumerate(futures, start=1):
            results[futures[future].path] = future.result()
            if progress:
                progress(done, len(todo))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        children.end_all()
        raise
    finally:
        pool.shutdown(wait=True)  # quick: what is running was killed, the rest cancelled
    return results
