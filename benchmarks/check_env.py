"""Does ``nogil-check-env`` agree with real imports, and how much faster is it?

    python3 benchmarks/check_env.py [--python FT_PYTHON] [--venv DIR] [--jobs N]

Builds (or reuses, with ``--venv``) a venv of a free-threaded CPython holding pinned
``cp313t`` wheels from PyPI (binary only) of several families and code generators, then, in
one run:

1. the static check, cold (``--no-cache``), in-process, best and median of a few runs;
2. the static check with a warm verdict cache;
3. whole processes, start to exit, as a user runs them (median of at least 5 runs each, wall
   clock and CPU time, the latter including the children it waited for): the bare interpreter,
   ``nogil-check-env --version``, a cached re-check and ``--no-cache``, the toolkit imported from
   this checkout with its bytecode compiled, each as a ratio to its target;
4. the import probe of every importable module, one fresh subprocess each.

It prints the environment's size, the static verdicts, the agreement between static
verdicts and probes (each disagreement with its evidence), the speed ratios, and one
PASS/MISS line per target of the issue. It is a measurement, not a test: the exit status is
0 unless the script itself fails; wall-clock times are printed, never asserted.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from nogil_toolkit.environment import ExtensionFile, find_extensions  # noqa: E402
from nogil_toolkit.inspect import Verdict  # noqa: E402
from nogil_toolkit.main_check_env import main as check_env_main  # noqa: E402
from nogil_toolkit.probe import ProbeResult, probe_modules  # noqa: E402
from nogil_toolkit.target import query_target, search_path  # noqa: E402

# The distributions the benchmark is about: (pin, family, how its modules are generated).
# Every one has a cp313t manylinux x86_64 wheel on PyPI. Families without a cp313t wheel of
# any version at the time of writing (pyyaml, orjson, msgspec, cryptography, cffi, lxml,
# zstandard, ujson, msgpack, a compiled Cython) are represented by their nearest kin.
PACKAGES: Tuple[Tuple[str, str, str], ...] = (
    ("numpy==2.4.6", "numeric", "C + Cython (random)"),
    ("scipy==1.17.1", "numeric", "C, Fortran/f2py, Cython, pybind11"),
    ("pandas==2.2.3", "numeric", "Cython (first cp313t release, declares nothing)"),
    ("scikit-learn==1.8.0", "numeric", "Cython"),
    ("numexpr==2.14.1", "numeric", "C++"),
    ("Bottleneck==1.6.0", "numeric", "C"),
    ("ml_dtypes==0.5.4", "numeric", "C++"),
    ("contourpy==1.3.3", "numeric / plotting", "pybind11"),
    ("kiwisolver==1.5.0", "plotting", "C++ (cppy)"),
    ("matplotlib==3.11.1", "plotting", "pybind11 + C"),
    ("shapely==2.1.2", "geometry", "C + Cython"),
    ("pillow==12.2.0", "imaging", "C"),
    ("scikit-image==0.26.0", "imaging", "Cython"),
    ("PyWavelets==1.9.0", "imaging / signal", "Cython"),
    ("bcrypt==5.0.0", "crypto", "PyO3"),
    ("pycryptodome==3.24.1", "crypto", "plain shared libraries loaded by ctypes (not modules)"),
    ("xxhash==3.8.2", "hashing", "C"),
    ("google-crc32c==1.7.1", "hashing", "C (declares nothing)"),
    ("pydantic_core==2.41.4", "serialization", "PyO3"),
    ("jiter==0.15.0", "serialization", "PyO3"),
    ("PyYAML-ft==8.0.0", "serialization", "Cython/C"),
    ("pyzmq==27.1.0", "serialization / messaging", "Cython"),
    ("lz4==4.4.5", "compression", "C"),
    ("backports.zstd==1.3.0", "compression", "C"),
    ("MarkupSafe==3.0.3", "text", "C"),
    ("regex==2026.8.31", "text", "C"),
    ("RapidFuzz==3.14.5", "text", "Cython + C++"),
    ("tiktoken==0.13.0", "text", "PyO3"),
    ("frozenlist==1.8.0", "web / build tooling (aio-libs)", "Cython"),
    ("multidict==6.6.4", "web", "C"),
    ("yarl==1.20.1", "web", "Cython"),
    ("propcache==0.3.2", "web", "Cython"),
    ("rpds-py==2026.5.1", "data structures", "PyO3"),
    ("psutil==7.2.2", "system", "C"),
    ("greenlet==3.2.2", "concurrency", "C++ (declares nothing)"),
    ("watchfiles==1.2.0", "dev / build tooling (reloaders)", "PyO3"),
)
# Their dependencies, pinned too so that a run today and a run next year see the same files.
DEPENDENCIES = (
    "anyio==4.16.0", "certifi==2026.10.19.post1", "charset-normalizer==3.5.3", "cloudpickle==3.1.3",
    "cycler==0.12.1", "fonttools==4.68.0", "idna==3.20", "ImageIO==2.38.1", "joblib==1.6.0",
    "lazy-loader==0.6", "networkx==3.7", "packaging==26.4", "pyparsing==3.3.3", "python-dateutil==4.0.0",
    "pytz==2026.6", "requests==2.34.2", "threadpoolctl==3.8.0", "tifffile==2026.11.8",
    "typing_extensions==4.16.0", "tzdata==2026.6", "urllib3==2.8.0",
)

TARGET_MODULES = 150
COLD_SECONDS, WARM_SECONDS, PROBE_RATIO = 0.5, 0.1, 300
REPEAT = 5
# Whole-process targets (issue 7 §5): --version over a bare start, cached and cold checks.
VERSION_OVER_BARE, PROCESS_WARM, PROCESS_COLD = 0.040, 0.1, 0.3
# What the console script runs (pip's wrapper also imports re and sys).
CONSOLE = "import re, sys\nfrom nogil_toolkit.main_check_env import main\nsys.exit(main())"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def find_freethreaded(python: Optional[str]) -> str:
    if python:
        return python
    out = subprocess.run([sys.executable, str(REPO / ".ci" / "provision_freethreaded.py")],
                         capture_output=True, text=True, check=True, timeout=3600)
    return out.stdout.strip().splitlines()[-1]


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def prepare_venv(ft_python: str, venv: Path) -> Path:
    python = venv_python(venv)
    if not python.exists():
        log(f"creating a venv of {ft_python} in {venv}")
        subprocess.run([ft_python, "-m", "venv", str(venv)], check=True)
    pins = [p for p, _, _ in PACKAGES] + list(DEPENDENCIES)
    frozen = subprocess.run([str(python), "-m", "pip", "freeze", "--disable-pip-version-check"],
                            capture_output=True, text=True, check=True).stdout
    have = {_canonical(line) for line in frozen.splitlines() if "==" in line}
    if all(_canonical(p) in have for p in pins):
        log("the venv already holds every pinned distribution")
        return python
    log(f"installing {len(pins)} pinned distributions (binary wheels only; pip's cache is reused)")
    started = time.perf_counter()
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--only-binary=:all:", *pins], check=True)
    log(f"  installed in {time.perf_counter() - started:.0f} s")
    return python


def _canonical(pin: str) -> str:
    name, _, version = pin.partition("==")
    return f"{name.strip().lower().replace('_', '-').replace('.', '-')}=={version.strip()}"


def run_check(argv: Sequence[str]) -> Tuple[float, dict]:
    """One in-process ``nogil-check-env`` run: (seconds, its JSON document)."""
    buffer = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(buffer):
        check_env_main(list(argv))
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(buffer.getvalue())


def timed_runs(argv: Sequence[str], repeat: int) -> Tuple[List[float], dict]:
    times, document = [], {}
    for _ in range(repeat):
        seconds, document = run_check(argv)
        times.append(seconds)
    return times, document


def process_times(python: str, argv: Sequence[str], repeat: int) -> List[Tuple[float, float]]:
    """(wall-clock, CPU) seconds of ``repeat`` whole runs of ``python -c CONSOLE argv`` (one
    untimed run first, so that the timed ones find the bytecode and the disk cache warm). CPU
    is user + system of the process and the children it waited for (workers, the target query):
    on a shared machine it is the steadier of the two, since waiting for a core does not count."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env["PYTHONPATH"] = str(REPO / "src")
    command = [python, "-c", "pass"] if not argv else [python, "-c", CONSOLE, *argv]
    times = []
    for run in range(repeat + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if run:
            times.append((wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
    return times


def describe_times(times: List[float]) -> str:
    return f"best {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms over {len(times)} runs"


def verdict_of(module: dict) -> Optional[Verdict]:
    inspection = module.get("inspection")
    return Verdict(inspection["verdict"]) if inspection else None


def evidence_of(module: dict) -> str:
    inspection = module.get("inspection") or {}
    parts = []
    if inspection.get("generator"):
        parts.append(f"generator {inspection['generator']}")
    if inspection.get("reason"):
        parts.append(f"reason: {inspection['reason']}")
    for item in (inspection.get("evidence") or [])[:2]:
        parts.append(f"{item.get('kind')}: {item.get('detail')}")
    return "; ".join(parts) or "no evidence"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="a free-threaded CPython (default: provisioned like the tests)")
    parser.add_argument("--venv", type=Path, help="create or reuse the venv here (default: a temporary one)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="probes at once (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=60, help="per-module probe timeout")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="timed runs of each kind (at least 5)")
    parser.add_argument("--startup-only", action="store_true",
                        help="only the timings (steps 1-3): no import probe, no agreement report")
    args = parser.parse_args(argv)
    args.repeat = max(args.repeat, 5)

    ft_python = find_freethreaded(args.python)
    temp = None
    if args.venv is None:
        temp = tempfile.mkdtemp(prefix="nogil-bench-")
        venv = Path(temp) / "venv"
    else:
        venv = args.venv.absolute()
    try:
        python = prepare_venv(ft_python, venv)
        return measure(str(python), ft_python, args)
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def measure(python: str, tool_python: str, args: argparse.Namespace) -> int:
    cache_dir = tempfile.mkdtemp(prefix="nogil-bench-cache-")
    base = ["--python", python, "--format", "json", "--quiet", "--mode", "gil", "--no-project"]
    text = ["--python", python, "--quiet", "--mode", "gil", "--no-project"]
    try:
        log("static check, cold (--no-cache)")
        cold_times, document = timed_runs([*base, "--no-cache"], args.repeat)
        log("static check, priming the cache, then warm")
        prime_seconds, _ = run_check([*base, "--cache-dir", cache_dir])
        warm_times, warm_document = timed_runs([*base, "--cache-dir", cache_dir], args.repeat)
        version_times = timed_version(args.repeat)
        log(f"whole processes of {tool_python}: bare start, --version, cached re-check, --no-cache")
        compileall.compile_dir(str(REPO / "src" / "nogil_toolkit"), quiet=1)
        processes = {
            "bare": process_times(tool_python, (), args.repeat),
            "version": process_times(tool_python, ["--version"], args.repeat),
            "warm": process_times(tool_python, [*text, "--cache-dir", cache_dir], args.repeat),
            "cold": process_times(tool_python, [*text, "--no-cache"], args.repeat),
        }
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    if args.startup_only:
        report_processes(processes, version_times, warm_times, cold_times, len(document["modules"]))
        return 0
    target = query_target(python)
    files = find_extensions(target, search_path(target))
    modules = {m["path"]: m for m in document["modules"]}
    candidates: List[ExtensionFile] = [
        f for f in files if f.importable and verdict_of(modules[f.path]) not in (None, Verdict.NOT_A_MODULE)]
    log(f"probing {len(candidates)} modules, {args.jobs} at a time")
    started = time.perf_counter()
    probes: Dict[str, ProbeResult] = probe_modules(python, candidates, (), args.timeout, args.jobs)
    probe_seconds = time.perf_counter() - started

    report(document, warm_document, candidates, probes, cold_times, prime_seconds, warm_times, probe_seconds,
           target.name, args.jobs)
    report_processes(processes, version_times, warm_times, cold_times, len(document["modules"]))
    return 0


def timed_version(repeat: int) -> List[float]:
    """In-process ``main(["--version"])``: building the parser, printing, exiting."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            check_env_main(["--version"])
        times.append(time.perf_counter() - started)
    return times


def report_processes(processes: Dict[str, List[Tuple[float, float]]], version: List[float], warm: List[float],
                     cold: List[float], files: int) -> None:
    wall = {name: statistics.median(t for t, _ in times) for name, times in processes.items()}
    cpu = {name: statistics.median(c for _, c in times) for name, times in processes.items()}
    print()
    print(f"whole processes, start to exit (medians of {len(processes['bare'])}; CPU = user + system, children "
          f"included), next to in-process medians; load average now {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores:")
    print(f"  bare interpreter start               wall {wall['bare'] * 1000:4.0f} ms   CPU {cpu['bare'] * 1000:4.0f} ms")
    rows = (("nogil-check-env --version", "version", version), (f"cached re-check ({files} files)", "warm", warm),
            ("--no-cache", "cold", cold))
    for label, name, in_process in rows:
        print(f"  {label:<36} wall {wall[name] * 1000:4.0f} ms   CPU {cpu[name] * 1000:4.0f} ms   "
              f"(wall {(wall[name] - wall['bare']) * 1000:+.0f} ms over bare); "
              f"in-process {statistics.median(in_process) * 1000:.0f} ms")
    print()

    def line(ok: bool, text: str) -> None:
        print(f"{'PASS' if ok else 'MISS'}  {text}")

    print("startup targets (issue 7 §5), as ratios to the target (<= 1.00 passes):")
    for kind, times in (("wall", wall), ("CPU ", cpu)):
        over = times["version"] - times["bare"]
        line(over <= VERSION_OVER_BARE, f"{kind} --version within {VERSION_OVER_BARE * 1000:.0f} ms of a bare start: "
                                        f"{over * 1000:.0f} ms, {over / VERSION_OVER_BARE:.2f} of the target")
        for name, label, target in (("warm", "cached re-check", PROCESS_WARM), ("cold", "--no-cache", PROCESS_COLD)):
            line(times[name] <= target, f"{kind} {label} <= {target * 1000:.0f} ms: {times[name] * 1000:.0f} ms, "
                                        f"{times[name] / target:.2f} of the target")


def report(document: dict, warm_document: dict, candidates: List[ExtensionFile], probes: Dict[str, ProbeResult],
           cold_times: List[float], prime_seconds: float, warm_times: List[float], probe_seconds: float,
           target_name: str, jobs: int) -> None:
    modules = {m["path"]: m for m in document["modules"]}
    extension_modules = [m for m in document["modules"] if verdict_of(m) not in (None, Verdict.NOT_A_MODULE)]
    distributions = {m["distribution"]["name"] for m in extension_modules if m["distribution"]}
    verdicts = Counter(verdict_of(m).value for m in extension_modules)
    generators = Counter((m["inspection"] or {}).get("generator") or "none" for m in extension_modules)

    agree, worst, false_alarm, unknown, inconclusive = [], [], [], [], []
    by_dist_probe: Dict[str, Counter] = defaultdict(Counter)
    for file in candidates:
        module, probe = modules[file.path], probes[file.path]
        verdict = verdict_of(module)
        dist = module["distribution"]["name"] if module["distribution"] else "(none)"
        by_dist_probe[dist][{False: "off", True: "re-enabled", None: "inconclusive"}[probe.needs_gil]] += 1
        if verdict is Verdict.UNKNOWN:
            unknown.append((module, probe))
        elif probe.needs_gil is None:
            inconclusive.append((module, probe))
        elif (verdict is Verdict.NOT_USED) == (probe.needs_gil is False):
            agree.append((module, probe))
        elif verdict is Verdict.NOT_USED:
            worst.append((module, probe))
        else:
            false_alarm.append((module, probe))

    print(f"nogil-check-env benchmark: {target_name}")
    print(f"environment: {document['scan']['files']} shared libraries, {len(extension_modules)} extension modules, "
          f"{len(distributions)} distributions with modules, "
          f"{document['summary']['not-a-module']} shared libraries that are not modules")
    print("static verdicts: " + ", ".join(f"{k} {v}" for k, v in verdicts.most_common()))
    print("generators recognised: " + ", ".join(f"{k} {v}" for k, v in generators.most_common()))
    undeclaring = sorted(d for d, c in by_dist_probe.items() if c["re-enabled"])
    print(f"distributions with a module whose import re-enabled the GIL: {', '.join(undeclaring) or 'none'}")
    print()

    conclusive = len(agree) + len(worst) + len(false_alarm)
    print(f"agreement (static verdict vs. import probe, {len(candidates)} modules probed):")
    print(f"  agree                                {len(agree)} / {conclusive} decided and conclusively probed"
          f" ({100 * len(agree) / max(conclusive, 1):.1f} %)")
    print(f"  static not-used, probe re-enabled    {len(worst)}   <- the worst failure")
    print(f"  static used/undeclared, GIL stayed   {len(false_alarm)}")
    print(f"  static unknown                       {len(unknown)}")
    print(f"  probe inconclusive                   {len(inconclusive)}")
    if worst:
        print()
        print("!" * 78)
        print("!!! MODULES REPORTED AS DECLARING NOT_USED WHOSE IMPORT RE-ENABLED THE GIL !!!")
        for module, probe in worst:
            print(f"!!!   {module['module']}: {evidence_of(module)}; probe: {probe.summary}")
        print("!" * 78)
    for title, rows in (("disagreements (static used/undeclared, probe: GIL stayed disabled)", false_alarm),
                        ("static unknown", unknown), ("inconclusive probes", inconclusive)):
        if rows:
            print()
            print(f"{title}:")
            for module, probe in sorted(rows, key=lambda r: r[0]["module"]):
                dist = module["distribution"]["name"] if module["distribution"] else "?"
                print(f"  {module['module']} [{dist}]")
                print(f"      static: {verdict_of(module).value}; {evidence_of(module)}")
                print(f"      probe:  {probe.summary}")
    print()

    cold, warm = min(cold_times), min(warm_times)
    print("timing (in-process main(), target facts and file scan included):")
    print(f"  cold static check (--no-cache)       {describe_times(cold_times)}")
    print(f"  first run filling the cache          {prime_seconds * 1000:.0f} ms")
    print(f"  warm static check                    {describe_times(warm_times)} "
          f"({warm_document['scan']['cached']} verdicts from cache)")
    print(f"  import probe of {len(candidates)} modules           {probe_seconds:.1f} s with {jobs} jobs "
          f"({probe_seconds * jobs / max(len(candidates), 1) * 1000:.0f} ms CPU-slot per module)")
    print(f"  probe / cold static                  {probe_seconds / cold:.0f}x")
    print(f"  cold / warm                          {cold / warm:.1f}x")
    print()

    def line(ok: bool, text: str) -> None:
        print(f"{'PASS' if ok else 'MISS'}  {text}")

    print("targets:")
    line(len(extension_modules) >= TARGET_MODULES and bool(undeclaring),
         f"setup: {len(extension_modules)} extension modules (>= {TARGET_MODULES}) and a distribution that "
         f"does not declare ({len(undeclaring)})")
    unknown_but_probed = sum(1 for _, p in unknown if p.needs_gil is not None)
    line(conclusive > 0 and not worst and not false_alarm and not unknown_but_probed,
         f"static agrees with probe on 100 % of conclusively probed modules: {len(agree)} agree, "
         f"{len(worst) + len(false_alarm)} disagree, "
         f"{unknown_but_probed} static unknown with a conclusive probe")
    line(not worst, f"no undeclared module reported as declared: {len(worst)} static not-used whose import "
                    "re-enabled the GIL")
    line(cold < COLD_SECONDS, f"cold static check < {COLD_SECONDS} s: {cold * 1000:.0f} ms for "
                              f"{len(extension_modules)} modules")
    line(probe_seconds / cold >= PROBE_RATIO, f"cold static >= {PROBE_RATIO}x faster than probing: "
                                              f"{probe_seconds / cold:.0f}x (probes {jobs} at a time)")
    line(warm < WARM_SECONDS, f"warm re-check < {WARM_SECONDS} s: {warm * 1000:.0f} ms")


if __name__ == "__main__":
    sys.exit(main())
