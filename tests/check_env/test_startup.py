"""What a ``nogil-check-env`` process imports, and the cached environment scan that spares it.

Startup time is the deterministic proxy here (wall-clock times are measured by
``benchmarks/check_env.py``, never asserted): each test runs the tool in a real subprocess
and reads ``sys.modules`` as the process ends. ``--version`` must not load the checker, and a
re-check answered from the cache must not load what only a cold scan needs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from support import install, make_venv, run, site_packages

from nogil_toolkit.inspect.parallel import PARALLEL_THRESHOLD

pytestmark = pytest.mark.freethreaded

# Runs the CLI as its console script does, then writes the modules the process imported.
RUNNER = """
import sys
out, argv = sys.argv[1], sys.argv[2:]
try:
    from nogil_toolkit.main_check_env import main
    code = main(argv)
except SystemExit as exc:
    code = exc.code
with open(out, "w") as stream:
    stream.write("\\n".join(sorted(sys.modules)))
sys.exit(code)
"""

NEVER_AT_STARTUP = {"tomlkit", "tomllib", "multiprocessing", "concurrent.futures", "subprocess", "hashlib",
                    "importlib.metadata", "email", "zipfile", "difflib"}
"""Modules only a cold scan, a probe, a pyproject.toml or declare need."""
CHECKER = {"nogil_toolkit.check", "nogil_toolkit.check_env", "nogil_toolkit.environment", "nogil_toolkit.inspect",
           "nogil_toolkit.inspect.core", "nogil_toolkit.cache", "nogil_toolkit.report", "dataclasses", "json"}
READERS = {"nogil_toolkit.inspect.core", "nogil_toolkit.inspect.elf", "nogil_toolkit.inspect.slots",
           "nogil_toolkit.inspect.parallel"}
NOT_FOR_VERSION = {"typing", "pathlib", "tempfile", "nogil_toolkit.config"}
"""--version prints a constant: even these, which a check needs, cost it more than the rest of its run."""
NOT_FOR_A_CACHED_CHECK = {"dataclasses", "inspect", "tempfile", "nogil_toolkit.config", "tomllib", "selectors",
                          "pickle"}
"""The record types are named tuples (dataclasses import ``inspect`` and build each class from
source); the policy is not read without a pyproject.toml; nothing is saved or read in workers."""
NOT_FOR_A_COLD_CHECK = {"importlib.metadata", "email", "zipfile", "dataclasses", "inspect", "pickle"}
"""A cold check lists metadata folders itself, its readers' record types are named tuples, and
its workers answer in marshal: the cost of each of these imports is paid before any work starts."""


def imported_by(tmp_path: Path, *args: str | os.PathLike[str]) -> set[str]:
    """What the tool imported beyond what this interpreter's bare start already imports (a
    site's own ``.pth`` files may import anything, and the tool cannot avoid that)."""
    out = tmp_path / "modules.txt"
    result = run([sys.executable, "-c", RUNNER, out, *args], cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    bare = run([sys.executable, "-c", "import sys; print('\\n'.join(sys.modules))"], cwd=tmp_path).stdout.split()
    return set(out.read_text().split()) - set(bare)


@pytest.fixture(scope="module")
def venv(ft_python: str, ft_sample_wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = make_venv(ft_python, tmp_path_factory.mktemp("startup") / "venv")
    install(python, ft_sample_wheels["spine"])
    return python


def check_args(venv: Path, cache: Path, *extra: str) -> list[str]:
    return ["--python", str(venv), "--no-project", "--cache-dir", str(cache), "--format", "json", *extra]


def settle() -> None:
    """A scan of folders changed within the last second is not cached (their mtime may not
    show a second change in the same tick): let the fixture's writes age."""
    time.sleep(1.1)


def test_version_imports_no_checker(tmp_path: Path) -> None:
    modules = imported_by(tmp_path, "--version")
    unwanted = NEVER_AT_STARTUP | CHECKER | NOT_FOR_VERSION
    assert not modules & unwanted, modules & unwanted
    assert "nogil_toolkit.main_check_env" in modules


def test_each_check_imports_only_what_it_needs(venv: Path, ft_abi: tuple[str, str], tmp_path: Path) -> None:
    many = tmp_path / "many"  # enough files for the inspection workers
    many.mkdir()
    module = next((site_packages(venv) / "spine" / "legacy").glob("_old*.so"))
    for index in range(PARALLEL_THRESHOLD + 6):
        shutil.copy(module, many / f"_m{index}{ft_abi[1]}")
    settle()
    cold = imported_by(tmp_path, *check_args(venv, tmp_path / "cache", "--mode", "gil", "--path", str(many)))
    assert {"nogil_toolkit.inspect.core", "selectors"} <= cold  # the proxy can fail: workers ran
    assert not cold & NOT_FOR_A_COLD_CHECK, cold & NOT_FOR_A_COLD_CHECK
    # Without --no-project: the current directory has no pyproject.toml, so no policy is parsed.
    warm = imported_by(tmp_path, "--python", venv, "--cache-dir", tmp_path / "cache", "--format", "json",
                       "--mode", "gil", "--path", many)
    unwanted = NEVER_AT_STARTUP | READERS | NOT_FOR_A_CACHED_CHECK
    assert not warm & unwanted, warm & unwanted


def test_cached_scan_sees_a_module_added_deep_in_a_package(venv: Path, ft_abi: tuple[str, str],
                                                           tmp_path: Path) -> None:
    """The scan is cached with the mtime of every folder it listed: a module copied into a
    sub-package (where site-packages' own mtime does not change) is found on the next run."""
    settle()
    first = run([sys.executable, "-m", "nogil_toolkit.main_check_env", *check_args(venv, tmp_path)], check=False)
    site = site_packages(venv)
    deep = site / "spine" / "legacy" / f"_copy{ft_abi[1]}"
    shutil.copy(next((site / "spine" / "legacy").glob("_old*.so")), deep)
    try:
        again = run([sys.executable, "-m", "nogil_toolkit.main_check_env", *check_args(venv, tmp_path)], check=False)
    finally:
        deep.unlink()
    before = {m["module"] for m in json.loads(first.stdout)["modules"]}
    after = {m["module"]: m["status"] for m in json.loads(again.stdout)["modules"]}
    assert "spine.legacy._copy" not in before
    assert after["spine.legacy._copy"] == "needs-gil"


def test_cached_scan_follows_a_changed_pth_file(venv: Path, ft_abi: tuple[str, str], tmp_path: Path) -> None:
    """Rewriting a .pth file in place leaves its folder's mtime alone; the file's own counts."""
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(next((site_packages(venv) / "spine").glob("_multi*.so")), extra / f"_multi{ft_abi[1]}")
    pth = site_packages(venv) / "zz_startup_test.pth"
    pth.write_text("# nothing yet\n")
    try:
        settle()
        args = [sys.executable, "-m", "nogil_toolkit.main_check_env", *check_args(venv, tmp_path / "cache")]
        before = json.loads(run(args, check=False).stdout)
        pth.write_text(f"{extra}\n")
        after = json.loads(run(args, check=False).stdout)
    finally:
        pth.unlink()
    assert "_multi" not in {m["module"] for m in before["modules"]}
    assert "_multi" in {m["module"] for m in after["modules"]}


RESOLVE_ONE = """
import json, sys
from pathlib import Path
from nogil_toolkit.cache import CheckCache
from nogil_toolkit.check_env import ResolveCounts, resolve_modules
class One:
    path, module, importable = sys.argv[2], sys.argv[3], True
cache = CheckCache(Path(sys.argv[1]), "guard-like caller")
counts = ResolveCounts()
(result,) = resolve_modules([One()], cache, counts=counts)
cache.save()
print(json.dumps({"verdict": result.inspection.verdict.value, "inspected": counts.inspected,
                  "from_cache": counts.from_cache,
                  "pool": [m for m in ("multiprocessing", "concurrent.futures") if m in sys.modules]}))
"""


def test_one_file_is_resolved_in_process_then_from_the_cache(venv: Path, tmp_path: Path) -> None:
    """The runtime guard's use: one file, no worker process, the verdict cached for next time."""
    module = next((site_packages(venv) / "spine").glob("_multi*.so"))
    answers = [json.loads(run([sys.executable, "-c", RESOLVE_ONE, tmp_path, module, "spine._multi"]).stdout)
               for _ in range(2)]
    assert answers[0] == {"verdict": "not-used", "inspected": 1, "from_cache": 0, "pool": []}
    assert answers[1] == {"verdict": "not-used", "inspected": 0, "from_cache": 1, "pool": []}
