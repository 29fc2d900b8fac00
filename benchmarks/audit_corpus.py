"""How fast is ``nogil-toolkit audit`` on real code, and how much porting do real extensions need?

    python benchmarks/audit_corpus.py [--cache-dir DIR] [--repeat N]

Downloads the pinned sdists below once (``pip download``, into ``--cache-dir``), unpacks them,
and audits each as ``nogil-toolkit audit`` run in its folder would: the sources its build
configuration lists statically, else its whole tree. Prints a Markdown table per package (files,
findings by rule), files per second in-process (wall and CPU), and the whole-process time of
``python -m nogil_toolkit audit`` on numpy (median of ``--repeat`` runs, wall and CPU), since a
user pays the interpreter's start-up and the imports too.

numpy's build backend (meson-python) configures and compiles numpy just to answer pip's
"prepare metadata" step, which ``pip download`` runs; for numpy that one step is answered by a
stub backend that only states the pinned name and version. pip still downloads the file from
the index and checks its hash as usual.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from nogil_toolkit.audit import AuditResult, audit_paths, audit_project  # noqa: E402

CORPUS = {
    # requirement: what kind of extension it is
    "numpy==2.3.5": "C and C++, hand-written, meson",
    "pillow==12.0.0": "C, hand-written",
    "regex==2025.11.3": "C, hand-written",
    "psutil==7.1.3": "C, hand-written",
    "simplejson==3.20.2": "C, hand-written",
    "ujson==5.11.0": "C and C++, hand-written",
    "markupsafe==3.0.3": "C, hand-written",
    "bitarray==3.8.0": "C, hand-written",
    "zope.interface==8.1.1": "C, hand-written",
    "multidict==6.7.0": "C, hand-written",
    "greenlet==3.2.4": "C++, hand-written",
    "pyyaml==6.0.3": "Cython",
    "msgpack==1.1.2": "Cython",
}
WHOLE_TREE = ("numpy==2.3.5",)
"""Also audited as ``nogil-toolkit audit .`` (every source in the sdist, vendored code included)."""
STUB_METADATA = {"numpy": "mesonpy"}
"""Projects whose backend builds during pip's metadata step, and the backend module to stand in for."""

_STUB = '''\
import os
def prepare_metadata_for_build_wheel(directory, config_settings=None):
    name, version = os.environ["AUDIT_CORPUS_NAME"], os.environ["AUDIT_CORPUS_VERSION"]
    info = f"{name}-{version}.dist-info"
    os.makedirs(os.path.join(directory, info))
    with open(os.path.join(directory, info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n")
    return info
def get_requires_for_build_wheel(config_settings=None):
    return []
'''


def download(requirement: str, cache: Path) -> Path:
    """The unpacked sdist of ``requirement``, downloaded into ``cache`` the first time."""
    name, _, version = requirement.partition("==")
    stem = f"{name.replace('.', '_') if name == 'zope.interface' else name}-{version}"
    folder = cache / stem
    if folder.is_dir():
        return folder
    archive = cache / f"{stem}.tar.gz"
    if not archive.exists():
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name, "-d", str(cache),
                   requirement]
        env = dict(os.environ)
        if name in STUB_METADATA:
            stub = Path(tempfile.mkdtemp(prefix="audit-corpus-stub-"))
            (stub / f"{STUB_METADATA[name]}.py").write_text(_STUB)
            env.update(PYTHONPATH=str(stub), AUDIT_CORPUS_NAME=name, AUDIT_CORPUS_VERSION=version)
            command.insert(4, "--no-build-isolation")
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    with tarfile.open(archive) as tar:
        tar.extractall(cache, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return folder


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def whole_process(folder: Path, repeat: int) -> Tuple[float, float]:
    """Median wall and CPU seconds of ``python -m nogil_toolkit audit .`` run in ``folder``."""
    walls, cpus = [], []
    src = str(Path(__file__).resolve().parent.parent / "src")
    env = dict(os.environ, PYTHONPATH=src)
    for _ in range(repeat):
        cpu, start = _cpu_children(), time.perf_counter()
        subprocess.run([sys.executable, "-m", "nogil_toolkit", "audit", "--format", "json", "--fail-on", "never", "."],
                       cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu_children() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _audit_in(folder: Path, whole_tree: bool) -> Tuple[AuditResult, float]:
    """The audit as run in ``folder`` (default discovery, or every source with ``whole_tree``), and its CPU time."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        cpu = time.process_time()
        result = audit_paths([Path(".")]) if whole_tree else audit_project(Path("."))
        return result, time.process_time() - cpu
    finally:
        os.chdir(cwd)


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "nogil-toolkit" / "audit-corpus")
    parser.add_argument("--repeat", type=int, default=5, help="whole-process runs on numpy (median; default 5)")
    args = parser.parse_args(argv)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    folders = {requirement: download(requirement, args.cache_dir) for requirement in CORPUS}

    rows, total_files, total_wall, total_cpu = [], 0, 0.0, 0.0
    runs = [(r, f, False) for r, f in folders.items()] + [(r, folders[r], True) for r in WHOLE_TREE]
    for requirement, folder, whole_tree in runs:
        result, cpu = _audit_in(folder, whole_tree)
        total_files += result.audited
        total_wall += result.seconds
        total_cpu += cpu
        counts: Dict[str, int] = Counter(f.rule.id for f in result.findings)
        by_rule = ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        origin = "build config" if result.origin.startswith("the build configuration") else "tree"
        origin = "`audit .` (all)" if whole_tree else origin
        severe = sum(1 for f in result.findings if f.rule.severity >= 2)
        rows.append(f"| {requirement} | {CORPUS[requirement]} | {origin} | {result.audited} | {cpu:.2f} | "
                    f"{severe} | {by_rule or '-'} |")
        print(f"audited {requirement}: {result.audited} files in {result.seconds:.2f} s wall, {cpu:.2f} s CPU",
              file=sys.stderr)

    print("| package | kind | sources from | files | CPU s | warnings+errors | findings by rule |")
    print("| --- | --- | --- | ---: | ---: | ---: | --- |")
    print("\n".join(rows))
    print()
    print(f"in-process: {total_files} files in {total_wall:.2f} s wall ({total_files / total_wall:.0f} files/s), "
          f"{total_cpu:.2f} s CPU ({total_files / total_cpu:.0f} files/s)")
    numpy = folders["numpy==2.3.5"]
    wall, cpu = whole_process(numpy, args.repeat)
    print(f"whole process on numpy 2.3.5 (python -m nogil_toolkit audit ., median of {args.repeat}): "
          f"{wall:.2f} s wall, {cpu:.2f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
