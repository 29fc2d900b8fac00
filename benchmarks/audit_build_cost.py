"""What the build-time audit costs: whole builds of a real sdist with the setuptools plugin,
``[tool.nogil.audit] build = "warn"`` against ``"off"``.

    python benchmarks/audit_build_cost.py [--sdist NAME==VERSION] [--repeat N] [--python PY]

The sdist (default: simplejson, one C extension of 3,500 lines, declared here with
``[tool.nogil] thread-safe = true``) is downloaded once into ``--cache-dir``. A venv of
``--python`` gets setuptools, wheel and this checkout's toolkit and plugin; each build is
``pip wheel --no-build-isolation`` of a fresh copy of the sources (so nothing is reused from a
previous build), with the audit on and off in alternation. Printed: the median wall time of
each (``--repeat`` builds each, default 5), their ratio, and the time of the audit alone on
the same extension sources (in-process, median of 20), which is what the audit adds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(HERE))

from audit_corpus import download  # noqa: E402

DECLARATION = "\n[tool.nogil]\nthread-safe = true\n[tool.nogil.audit]\nbuild = \"{mode}\"\n"

def venv_with_plugin(python: str, folder: Path) -> Path:
    """A venv of ``python`` with this checkout's toolkit and setuptools plugin, made once."""
    venv = folder / "venv"
    interpreter = venv / "bin" / "python"
    if not interpreter.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(interpreter), "-m", "pip", "install", "-q", "setuptools>=77", "wheel",
                        str(REPO), str(REPO / "setuptools_plugin")], check=True)
    return interpreter


def declared_copy(sdist: Path, work: Path, mode: str) -> Path:
    """A fresh copy of the unpacked sdist with ``[tool.nogil]`` and the audit's mode appended."""
    project = work / f"{sdist.name}-{mode}"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(sdist, project)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text("utf-8") if pyproject.exists() else ""
    pyproject.write_text(text + DECLARATION.format(mode=mode), "utf-8")
    return project


def build_seconds(python: Path, project: Path) -> tuple[float, str]:
    """Wall time of one whole ``pip wheel`` of ``project``, and its output."""
    start = time.perf_counter()
    result = subprocess.run([str(python), "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                             "-w", str(project / "dist"), str(project)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"error: the build of {project.name} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return seconds, result.stdout + result.stderr


_AUDIT_ONLY = """
import json, statistics, sys, time
from pathlib import Path
from nogil_toolkit.audit.build import audit_module
from nogil_toolkit.config import load_config
config = load_config(sys.argv[1])
extensions = json.loads(sys.argv[2])
times = []
for _ in range(20):
    start = time.perf_counter()
    audits = [audit_module(config, name, [Path(sys.argv[1]) / s for s in sources]) for name, sources in extensions]
    times.append(time.perf_counter() - start)
files = sum(a.result.audited for a in audits if a is not None)
print(statistics.median(times), files)
"""

def extension_sources(python: Path, project: Path) -> list[tuple[str, list[str]]]:
    """(module, sources) of each extension, as setuptools itself reads the project."""
    code = ("import json, os, sys\nos.chdir(sys.argv[1])\nsys.path.insert(0, sys.argv[1])\n"
            "import setuptools\nfrom distutils.core import run_setup\n"
            "dist = run_setup('setup.py', stop_after='config') if os.path.exists('setup.py') else None\n"
            "if dist is None:\n    from setuptools.dist import Distribution\n"
            "    dist = Distribution(); dist.parse_config_files()\n"
            "print(json.dumps([(e.name, list(e.sources) + list(e.depends or [])) for e in dist.ext_modules or []]))")
    out = subprocess.run([str(python), "-c", code, str(project)], capture_output=True, text=True, check=True)
    return [tuple(pair) for pair in json.loads(out.stdout.strip().splitlines()[-1])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", default="simplejson==3.20.2", help="pinned sdist to build (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="builds per mode (default: 5)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to build with (default: this one)")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "nogil-audit-build-cost")
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    sdist = download(args.sdist, args.cache_dir)
    python = venv_with_plugin(args.python, args.cache_dir)
    work = Path(tempfile.mkdtemp(prefix="audit-build-cost-"))
    times: dict[str, List[float]] = {"warn": [], "off": []}
    try:
        for _ in range(args.repeat):
            for mode in ("warn", "off"):
                seconds, output = build_seconds(python, declared_copy(sdist, work, mode))
                audited = "nogil: audited " in output
                if audited != (mode == "warn"):
                    sys.exit(f"error: build with build = \"{mode}\" {'did not audit' if mode == 'warn' else 'audited'}")
                times[mode].append(seconds)
        project = declared_copy(sdist, work, "warn")
        extensions = extension_sources(python, project)
        out = subprocess.run([str(python), "-c", _AUDIT_ONLY, str(project), json.dumps(extensions)],
                             capture_output=True, text=True, check=True)
        audit_seconds, files = out.stdout.split()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    on, off = statistics.median(times["warn"]), statistics.median(times["off"])
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version.split()[0], sys.abiflags)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    print(f"{args.sdist} on Python {version}: {len(extensions)} extension(s), {files} file(s) audited")
    print(f"whole build, median of {args.repeat}: audit on {on:.2f} s, off {off:.2f} s, ratio on/off {on / off:.3f}")
    print(f"  on:  {', '.join(f'{t:.2f}' for t in times['warn'])}")
    print(f"  off: {', '.join(f'{t:.2f}' for t in times['off'])}")
    print(f"audit alone on the extensions' sources: {float(audit_seconds) * 1000:.1f} ms (median of 20, in-process), "
          f"{float(audit_seconds) / off:.2%} of the build without it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
