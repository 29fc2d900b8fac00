"""What does the runtime guard cost a process that imports heavy packages?

    python3 benchmarks/guard_overhead.py [--python FT_PYTHON] [--venv DIR] [--runs N]

Builds (or reuses, with ``--venv``) a venv of a free-threaded CPython with pinned ``cp313t``
wheels of numpy and pandas, then times whole processes, interleaved, in the same run:

- ``import numpy`` without the guard and under ``NOGIL_MODE=nogil`` with a warm verdict cache
  (every numpy module declares it runs without the GIL: the guard's common case);
- ``import numpy, pandas`` with ``PYTHON_GIL=0`` on both sides, without the guard and under
  ``NOGIL_MODE=unsafe-nogil`` (pandas 2.3.3's extension modules declare nothing: each is
  judged from the cache and warned about, the warnings silenced with ``-W``);
- the cold cost: the guarded ``import numpy`` with an empty cache (first start ever).

The guarded processes are started the way ``nogil-toolkit run`` starts them (its folder first
on ``PYTHONPATH``). Prints medians of wall-clock and CPU time and their ratios (target: at
most 1.05 warm). It is a measurement, not a test: times are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from nogil_toolkit.guard.envhook import run_folder  # noqa: E402

PINS = ("numpy==2.3.4", "pandas==2.3.3", "python-dateutil==2.9.0.post0", "pytz==2025.2", "tzdata==2025.2",
        "six==1.17.0")
CATEGORY = "nogil_toolkit.guard.UndeclaredModuleWarning"


def find_ft_python() -> str:
    out = subprocess.run([sys.executable, str(REPO / ".ci" / "provision_freethreaded.py"), "--find-only"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def make_venv(python: str, folder: Path) -> Path:
    venv_python = folder / "bin" / "python"
    if not venv_python.exists():
        subprocess.run([python, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(venv_python), "-m", "pip", "install", "-q", "--only-binary=:all:", "--no-deps", *PINS],
                       check=True)
    return venv_python


def timed(argv: Sequence[str], env: Dict[str, str]) -> Tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one whole process. CPU time is the
    steadier of the two on a shared machine: waiting for a core does not count."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def base_env() -> Dict[str, str]:
    """Bytecode is written and read as usual; nothing forces the GIL or the guard."""
    drop = ("PYTHONDONTWRITEBYTECODE", "PYTHON_GIL", "PYTHONPATH", "PYTHONWARNINGS", "NOGIL_MODE", "NOGIL_ALLOW",
            "NOGIL_PROJECT")
    return {k: v for k, v in os.environ.items() if k not in drop}


def guarded_env(mode: str, cache: Path, **extra: str) -> Dict[str, str]:
    env = base_env()
    env.update(NOGIL_MODE=mode, NOGIL_PROJECT="", NOGIL_TOOLKIT_CACHE=str(cache),
               PYTHONPATH=str(run_folder(cache)), **extra)
    return env


def compare(label: str, python: str, code: str, plain: Dict[str, str], guarded: Dict[str, str], runs: int,
            args: Sequence[str] = ()) -> Tuple[float, float]:
    """Median wall and CPU times of both, interleaved (the order alternates), after one
    warm-up each; returns the (wall, CPU) ratios."""
    argv = [python, *args, "-c", code]
    timed(argv, plain)
    timed(argv, guarded)
    times: Dict[str, List[Tuple[float, float]]] = {"plain": [], "guarded": []}
    for index in range(runs):
        order = ("plain", "guarded") if index % 2 == 0 else ("guarded", "plain")
        for name in order:
            times[name].append(timed(argv, plain if name == "plain" else guarded))
    print(label)
    ratios = []
    for column, kind in ((0, "wall"), (1, "cpu ")):
        plain_median = statistics.median(t[column] for t in times["plain"])
        guarded_median = statistics.median(t[column] for t in times["guarded"])
        ratios.append(guarded_median / plain_median)
        print(f"  {kind}  without guard {plain_median * 1000:8.1f} ms   guarded {guarded_median * 1000:8.1f} ms   "
              f"ratio {ratios[-1]:.3f}   (medians of {runs})")
    return ratios[0], ratios[1]


def cold(python: str, code: str, plain: Dict[str, str], runs: int, scratch: Path) -> None:
    """The guarded start with an empty cache each time, against the plain start."""
    cold_times, plain_times = [], []
    for index in range(runs):
        cache = scratch / f"cold-{index}"
        cold_times.append(timed([python, "-c", code], guarded_env("nogil", cache))[0])
        plain_times.append(timed([python, "-c", code], plain)[0])
        shutil.rmtree(cache, ignore_errors=True)
    extra = statistics.median(cold_times) - statistics.median(plain_times)
    print(f"cold start (empty cache), import numpy\n  guarded {statistics.median(cold_times) * 1000:8.1f} ms   "
          f"cost over the plain start {extra * 1000:+.1f} ms   (medians of {runs})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", help="a free-threaded CPython (default: the provisioned one)")
    parser.add_argument("--venv", type=Path, help="reuse (or create) the benchmark venv here")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each side (default: %(default)s)")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="guard-overhead-"))
    try:
        python = str(make_venv(args.python or find_ft_python(), args.venv or scratch / "venv"))
        version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        print(f"CPython {version} (free-threaded), {', '.join(PINS[:2])}; whole processes, interleaved\n")
        warm = scratch / "warm-cache"
        numpy = "import numpy, sys; assert not sys._is_gil_enabled()"
        ratios = [compare("import numpy (nogil mode, warm cache)", python, numpy, base_env(),
                          guarded_env("nogil", warm), args.runs)]
        both = "import numpy, pandas"
        ratios.append(compare("import numpy, pandas (PYTHON_GIL=0; unsafe-nogil, warm cache, pandas' modules undeclared)",
                              python, both, {**base_env(), "PYTHON_GIL": "0"},
                              guarded_env("unsafe-nogil", warm, PYTHON_GIL="0"), args.runs,
                              args=("-W", f"ignore::{CATEGORY}")))
        cold(python, numpy, base_env(), args.runs, scratch)
        print()
        for kind, ratio in zip(("wall-clock", "CPU-time"), ratios[0]):
            print(f"{'PASS' if ratio <= 1.05 else 'MISS'}: warm {kind} ratio {ratio:.3f} for import numpy "
                  "(target <= 1.05)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
