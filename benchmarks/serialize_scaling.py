"""What does the ``serialize`` mode buy over the GIL, and what does its lock cost per call?

    python3 benchmarks/serialize_scaling.py [--python FT_PYTHON] [--threads N] [--runs R]

Builds the tests' racy C extension (``tests/guard/csrc/racy.c``, which declares nothing about
the GIL) with gcc for the free-threaded interpreter, then times whole processes, interleaved,
started the way ``nogil-toolkit run --mode gil``, ``--mode serialize`` and ``--mode unsafe-nogil``
start them. Each
process imports the undeclared module and then:

- runs a pure-Python CPU-bound workload in N threads (default: ``os.cpu_count()``), each
  thread doing the same fixed amount of work, and calling into the undeclared module once
  every ``--every`` iterations (so the lock is taken, and contended, during the parallel part);
- times single-threaded calls of a cheap function of the undeclared module: in serialize
  mode both the locked wrapper and the original it wraps (``__wrapped__``).

Prints the median wall-clock time of the parallel part per mode, the speed-up ratio
gil/serialize (target: close to N) beside gil/unsafe-nogil (the same without any lock: what the
machine allows at that moment), and the lock's cost in ns per call. It is a measurement,
not a test: times are printed, never asserted. On a shared machine with few cores, other
load takes cores away from the parallel part: read the ratio against the cores actually free.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from nogil_toolkit.guard.envhook import run_folder  # noqa: E402
from nogil_toolkit.main_run import guard_environment  # noqa: E402

RACY = REPO / "tests" / "guard" / "csrc" / "racy.c"
CATEGORIES = ("nogil_toolkit.guard.SerializeCoverageWarning", "nogil_toolkit.guard.UndeclaredModuleWarning")
MODES = {"gil": (True, False), "serialize": (False, True), "unsafe-nogil": (False, False)}
"""Each mode measured, with what its process must report: (GIL on, calls locked)."""

CHILD = """
import json, sys, threading, time
import racy

threads, work, every, calls = (int(a) for a in sys.argv[1:5])

def spin(work, every, call):
    # Locals only: on 3.13t two threads touching the same global objects (an int, a module)
    # contend on their reference counts, which would hide the scaling being measured.
    total = 0
    for i in range(work):
        total += i * i % 7
        if i % every == 0:
            call()
    return total

def parallel():
    barrier = threading.Barrier(threads + 1)
    def run():
        barrier.wait()
        spin(work, every, racy.total)
    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return time.perf_counter() - start

def per_call(function):
    best = float("inf")
    for _ in range(5):  # the fastest of five rounds: the least disturbed by other load
        start = time.perf_counter_ns()
        for _ in range(calls // 5):
            function()
        best = min(best, (time.perf_counter_ns() - start) / (calls // 5))
    return best

elapsed = parallel()
original = getattr(racy.total, "__wrapped__", racy.total)
print(json.dumps({"parallel": elapsed, "gil": sys._is_gil_enabled(), "locked": original is not racy.total,
                  "ns_called": per_call(racy.total), "ns_original": per_call(original)}))
"""


def find_ft_python() -> str:
    out = subprocess.run([sys.executable, str(REPO / ".ci" / "provision_freethreaded.py"), "--find-only"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def build_racy(python: str, folder: Path) -> None:
    """The undeclared extension, compiled against ``python``'s headers."""
    query = "import sysconfig; print(sysconfig.get_path('include')); print(sysconfig.get_config_var('EXT_SUFFIX'))"
    include, suffix = subprocess.run([python, "-c", query], capture_output=True, text=True,
                                     check=True).stdout.split()
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", f"-I{include}", "-o", str(folder / f"racy{suffix}"),
                    str(RACY)], check=True)


def measure(python: str, mode: str, folder: Path, cache: Path, args: Sequence[str]) -> Dict[str, Any]:
    env = guard_environment(mode, [], None, run_folder(cache), os.environ)
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(folder)])
    env["NOGIL_TOOLKIT_CACHE"] = str(cache)
    warnings = [option for category in CATEGORIES for option in ("-W", f"ignore::{category}")]
    done = subprocess.run([python, *warnings, "-c", CHILD, *args], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"error: the {mode} process failed: {done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if (result["gil"], result["locked"]) != MODES[mode]:
        sys.exit(f"error: the {mode} process ran with gil={result['gil']} locked={result['locked']}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="a free-threaded CPython (default: the provisioned 3.13t)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", type=int, default=3_000_000, help="loop iterations per thread")
    parser.add_argument("--every", type=int, default=1000, help="call the undeclared module every N iterations")
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls timed for the per-call cost")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    python = args.python or find_ft_python()
    child_args = [str(args.threads), str(args.work), str(args.every), str(args.calls)]
    with tempfile.TemporaryDirectory(prefix="serialize-scaling-") as temp:
        folder, cache = Path(temp) / "modules", Path(temp) / "cache"
        folder.mkdir()
        build_racy(python, folder)
        measure(python, "serialize", folder, cache, [child_args[0], "1000", "1", "10"])  # warm the verdict cache
        results: Dict[str, List[Dict[str, Any]]] = {mode: [] for mode in MODES}
        for _ in range(args.runs):
            for mode in results:
                results[mode].append(measure(python, mode, folder, cache, child_args))
    median = {mode: {key: statistics.median(r[key] for r in runs) for key in ("parallel", "ns_called", "ns_original")}
              for mode, runs in results.items()}
    print(f"{python}: {args.threads} threads x {args.work:,} iterations, one call into the undeclared module "
          f"every {args.every} iterations; {args.runs} runs per mode, interleaved; os.cpu_count() = {os.cpu_count()}"
          f", load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for mode in results:
        runs = ", ".join(f"{r['parallel']:.3f}" for r in results[mode])
        print(f"  {mode:12}  parallel part {median[mode]['parallel']:.3f} s (median; runs: {runs})")
    print(f"  speed-up serialize over gil: {median['gil']['parallel'] / median['serialize']['parallel']:.2f}x "
          f"(target: close to {args.threads}); unsafe-nogil (no lock at all) over gil: "
          f"{median['gil']['parallel'] / median['unsafe-nogil']['parallel']:.2f}x")
    locked, original = median["serialize"]["ns_called"], median["serialize"]["ns_original"]
    print(f"  per call into the undeclared module (one thread): {original:.0f} ns unwrapped, {locked:.0f} ns "
          f"locked: the lock costs {locked - original:.0f} ns per call (gil mode: {median['gil']['ns_called']:.0f} ns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
