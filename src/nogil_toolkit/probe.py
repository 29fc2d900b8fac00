"""Confirm static verdicts by importing each module in a fresh subprocess of the target.

Opt-in (``nogil-check-env --probe``): importing runs the module's code. Each module is
loaded alone, from its file, by a new interpreter started with ``-I`` (which also ignores
``PYTHON_GIL``), with a timeout, several at a time. The GIL's state after the load, and the
module named by CPython's "GIL has been enabled to load module 'X'" warning, say whether
the module needs the GIL. When another module (one the probed module imported) re-enabled
it first, the probe cannot tell, and says so rather than guessing.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

from nogil_toolkit.environment import ExtensionFile

# Loads the file directly, so that a package's __init__ runs only if the module itself
# imports it. Prints one JSON line.
_SCRIPT = r"""
import importlib.machinery, importlib.util, json, re, sys, warnings
name, path, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path[:0] = extra
blamed, error = None, None
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        loader = importlib.machinery.ExtensionFileLoader(name, path)
        spec = importlib.util.spec_from_file_location(name, path, loader=loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
for w in caught:
    match = re.search(r"enabled to load module '([^']+)'", str(w.message))
    if match:
        blamed = match.group(1)
print(json.dumps({"gil": sys._is_gil_enabled(), "blamed": blamed, "error": error}))
"""


@dataclass(frozen=True)
class ProbeResult:
    """What loading one module in a fresh free-threaded interpreter did."""

    gil_enabled: Optional[bool]
    blamed: Optional[str]
    """The module CPython named when it re-enabled the GIL."""
    error: Optional[str]
    module: str

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
            return "loaded; the GIL stayed disabled"
        if self.needs_gil:
            return "loading it re-enabled the GIL"
        if self.error:
            return f"could not be loaded: {self.error}"
        return f"inconclusive: {self.blamed or 'another module'} re-enabled the GIL first"


def probe_module(python: str, file: ExtensionFile, extra_paths: Sequence[str] = (), timeout: float = 30) -> ProbeResult:
    name = file.module or ""
    try:
        out = subprocess.run([python, "-I", "-c", _SCRIPT, name, file.path, *extra_paths],
                             capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ProbeResult(None, None, f"timed out after {timeout:g} s", name)
    except OSError as exc:
        return ProbeResult(None, None, f"could not start {python}: {exc}", name)
    try:
        data = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        detail = (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]
        return ProbeResult(None, None, f"the interpreter died: {detail}", name)
    return ProbeResult(data["gil"], data["blamed"], data["error"], name)


def probe_modules(python: str, files: Iterable[ExtensionFile], extra_paths: Sequence[str] = (),
                  timeout: float = 30, jobs: int = 4,
                  progress: Optional[Callable[[int, int], None]] = None) -> dict[str, ProbeResult]:
    """Probe each file in parallel; results keyed by file path."""
    todo = list(files)
    results: dict[str, ProbeResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(probe_module, python, f, extra_paths, timeout): f for f in todo}
        for done, future in enumerate(futures, start=1):
            results[futures[future].path] = future.result()
            if progress:
                progress(done, len(todo))
    return results
