"""The ``serialize`` mode on a real race: a C extension whose entry points do a non-atomic
read-modify-write of C state, hammered from 16 threads of the free-threaded interpreter. In
``unsafe-nogil`` it loses updates; in ``serialize`` it loses none, run after run, re-entering it
from a callback does not deadlock, declared modules are left alone, and each locked module's
coverage line names what could not be locked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from guard_support import Modules, build_module, run_guarded

from nogil_toolkit.main_run import guard_environment
from support import REPO, clean_env, make_venv, run

pytestmark = pytest.mark.freethreaded

SRC = REPO / "src"
RACY = Path(__file__).parent / "csrc" / "racy.c"
CYRACY = Path(__file__).parent / "csrc" / "cyracy.pyx"
COVERAGE = "nogil_toolkit.guard.SerializeCoverageWarning"
THREADS, CALLS, ROUNDS = 16, 1000, 4

# Calls each entry point CALLS times from THREADS threads, released together by a barrier,
# ROUNDS times; prints what each round counted. A thread still running after the join timeout
# is reported (a deadlock fails the test rather than hanging it).
HAMMER = f"""
import json, sys, threading
import racy

def hammer(target):
    barrier = threading.Barrier({THREADS})
    def work():
        barrier.wait()
        for _ in range({CALLS}):
            target()
    threads = [threading.Thread(target=work, daemon=True) for _ in range({THREADS})]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if any(thread.is_alive() for thread in threads):
        print(json.dumps({{"stuck": True}}))
        sys.stdout.flush()
        import os; os._exit(3)

counts = {{"function": [], "classmethod": [], "staticmethod": [], "method": [], "dunder": []}}
for _ in range({ROUNDS}):
    for entry, target in (("function", racy.add), ("classmethod", racy.Counter.make),
                          ("staticmethod", racy.Counter.bump)):
        racy.reset()
        hammer(target)
        counts[entry].append(racy.total())
    counter = racy.Counter()
    hammer(counter.add)
    counts["method"].append(counter.count)
    counter = racy.Counter()
    hammer(counter)
    counts["dunder"].append(counter.count)
print(json.dumps({{"counts": counts, "gil": sys._is_gil_enabled()}}))
"""
EXPECTED = THREADS * CALLS
ENTRIES = ("function", "classmethod", "staticmethod", "method", "dunder")


@pytest.fixture(scope="session")
def racy_module(ft_python: str, ft_abi: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Modules:
    folder = tmp_path_factory.mktemp("racy-module")
    build_module(ft_python, "racy", folder, ft_abi[1], declare=False, source=RACY)
    return Modules(folder, ft_abi[1])


@pytest.fixture(scope="session")
def single_phase_racy(ft_python: str, ft_abi: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Modules:
    folder = tmp_path_factory.mktemp("racy-single-phase")
    build_module(ft_python, "racy", folder, ft_abi[1], declare=False, source=RACY, defines=["SINGLE_PHASE"])
    return Modules(folder, ft_abi[1])


def test_unsafe_nogil_loses_updates(ft_python: str, racy_module: Modules, cache: Path) -> None:
    """The fixture really races: without a lock every round loses updates on every entry point."""
    result = run_guarded(ft_python, HAMMER, mode="unsafe-nogil", modules=racy_module, cache=cache,
                         env={"PYTHON_GIL": "0"}, args=["-W", "ignore::RuntimeWarning"])
    assert result.returncode == 0, result.stderr
    assert result.data["gil"] is False
    assert set(result.data["counts"]) == set(ENTRIES)
    for entry, counts in result.data["counts"].items():
        assert all(count < EXPECTED for count in counts), (entry, counts)


def test_serialize_loses_no_update(ft_python: str, racy_module: Modules, cache: Path) -> None:
    result = run_guarded(ft_python, HAMMER, mode="serialize", modules=racy_module, cache=cache,
                         env={"PYTHON_GIL": "0"})
    assert result.returncode == 0, result.stderr
    assert result.data == {"counts": {entry: [EXPECTED] * ROUNDS for entry in ENTRIES}, "gil": False}
    # One coverage line for the one undeclared module, naming what could not be locked.
    lines = [line for line in result.stderr.splitlines() if "SerializeCoverageWarning" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith("SerializeCoverageWarning: serialize: racy: 4 functions and 1 type locked; "
                             "not covered: racy.Counter.__new__, immutable type racy.Sealed, static type racy.Frozen, "
                             "capsule racy._C_API, "
                             "buffer racy.buffer, bound method racy.bound_add")


def test_single_phase_modules_and_explicit_loaders_are_locked(ft_python: str, single_phase_racy: Modules,
                                                               cache: Path) -> None:
    """A single-phase module is complete when create_dynamic returns; an explicit
    ExtensionFileLoader loads it past the import system: both are locked."""
    code = HAMMER.replace("import racy\n", f"""
import importlib.machinery, importlib.util
path = {str(single_phase_racy.path("racy"))!r}
loader = importlib.machinery.ExtensionFileLoader("racy", path)
spec = importlib.util.spec_from_file_location("racy", path, loader=loader)
racy = importlib.util.module_from_spec(spec)
loader.exec_module(racy)
""")
    result = run_guarded(ft_python, code, mode="serialize", modules=None, cache=cache, env={"PYTHON_GIL": "0"})
    assert result.returncode == 0, result.stderr
    assert result.data == {"counts": {entry: [EXPECTED] * ROUNDS for entry in ENTRIES}, "gil": False}
    assert "serialize: racy: 4 functions and 1 type locked" in result.stderr


def test_a_callback_that_re_enters_the_extension_does_not_deadlock(ft_python: str, racy_module: Modules,
                                                                    cache: Path) -> None:
    """racy.call(f) calls f from inside the extension (holding the lock); f calls the extension
    again on the same thread, from 16 threads at once."""
    code = HAMMER.split("counts = ")[0] + """
def nested():
    return racy.call(lambda: racy.call(racy.add))
racy.reset()
hammer(nested)
print(json.dumps({"total": racy.total(), "wrapped": hasattr(racy.call, "__wrapped__")}))
"""
    result = run_guarded(ft_python, code, mode="serialize", modules=racy_module, cache=cache,
                         env={"PYTHON_GIL": "0"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.data == {"total": 3 * EXPECTED, "wrapped": True}


def test_declared_and_allowed_modules_are_never_wrapped(ft_python: str, guard_modules: Modules, cache: Path) -> None:
    result = run_guarded(ft_python, """
import json, sys, warnings
warnings.simplefilter("always")
import declared, legacy_a, legacy_b
print(json.dumps({
    "declared": type(declared.answer).__name__, "legacy": type(legacy_a.answer).__name__,
    "allowed": type(legacy_b.answer).__name__,
    "original": type(legacy_a.answer.__wrapped__).__name__, "name": legacy_a.answer.__name__,
    "answers": [declared.answer(), legacy_a.answer()], "gil": sys._is_gil_enabled()}))
""", mode="serialize", modules=guard_modules, cache=cache, env={"PYTHON_GIL": "0", "NOGIL_ALLOW": "legacy_b=audited"})
    assert result.returncode == 0, result.stderr
    assert result.data == {"declared": "builtin_function_or_method", "legacy": "function",
                           "allowed": "builtin_function_or_method",
                           "original": "builtin_function_or_method", "name": "answer", "answers": [42, 42],
                           "gil": False}
    assert "serialize: legacy_a: 1 function and 0 types locked; all covered" in result.stderr
    assert "declared" not in result.stderr and "legacy_b" not in result.stderr


def test_w_filters_the_coverage_line_by_category_and_module(ft_python: str, guard_modules: Modules,
                                                             racy_module: Modules, cache: Path) -> None:
    code = f"import sys; sys.path.append({str(guard_modules.folder)!r}); import racy, legacy_a, legacy_b; print(racy.add())"
    base = dict(mode="serialize", cache=cache, env={"PYTHON_GIL": "0"}, modules=racy_module)
    silenced = run_guarded(ft_python, code, args=["-W", f"ignore::{COVERAGE}"], **base)  # type: ignore[arg-type]
    assert silenced.returncode == 0 and silenced.stdout.split() == ["1"], silenced.stderr
    assert silenced.stderr == ""
    one = run_guarded(ft_python, code, args=["-W", f"ignore::{COVERAGE}:racy"], **base)  # type: ignore[arg-type]
    assert "serialize: racy:" not in one.stderr
    assert "serialize: legacy_a:" in one.stderr and "serialize: legacy_b:" in one.stderr


def test_the_launcher_runs_a_command_in_serialize_mode(ft_python: str, racy_module: Modules, cache: Path) -> None:
    env = clean_env(NOGIL_TOOLKIT_CACHE=str(cache), PYTHONPATH=str(racy_module.folder), PYTHON_GIL="1")
    env.pop("NOGIL_MODE", None)
    code = ("import json, os, sys, racy; print(json.dumps([os.environ['NOGIL_MODE'], os.environ['PYTHON_GIL'], "
            "hasattr(racy.add, '__wrapped__'), sys._is_gil_enabled()]))")
    done = subprocess.run([sys.executable, "-m", "nogil_toolkit", "run", "--no-project", "--mode", "serialize", "--",
                           ft_python, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["serialize", "0", True, False]
    assert "SerializeCoverageWarning: serialize: racy:" in done.stderr


def test_install_in_process_and_the_environment_the_launcher_sets(ft_python: str, racy_module: Modules,
                                                                  cache: Path, tmp_path: Path) -> None:
    env = guard_environment("serialize", [], None, tmp_path, {"PYTHON_GIL": "1"})
    assert (env["NOGIL_MODE"], env["PYTHON_GIL"]) == ("serialize", "0")
    result = run_guarded(ft_python, f"""
import json, sys
sys.path.insert(0, {str(SRC)!r})
import nogil_toolkit.guard as guard
guard.install("serialize", cache_dir={str(cache)!r})
import racy
print(json.dumps([guard.active_mode(), hasattr(racy.add, "__wrapped__"), sys._is_gil_enabled()]))
""", mode=None, modules=racy_module, cache=cache, env={"PYTHON_GIL": "0"})
    assert result.returncode == 0, result.stderr
    assert result.data == ["serialize", True, False]


def test_serialize_without_python_gil_0_says_so_in_one_line(ft_python: str, racy_module: Modules,
                                                            cache: Path) -> None:
    result = run_guarded(ft_python, "import racy", mode="serialize", modules=racy_module, cache=cache,
                         args=["-W", f"ignore::{COVERAGE}", "-W", "ignore::RuntimeWarning"])
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: nogil-toolkit guard: NOGIL_MODE=serialize needs PYTHON_GIL=0 (or -X gil=0) when Python starts "
        "(nogil-toolkit run --mode serialize sets it); without it the first module that needs the GIL turns it on"]


def test_what_a_locked_type_looks_like(ft_python: str, racy_module: Modules, cache: Path) -> None:
    """Each kind of C entry point of a heap type is replaced by its Python form, which behaves
    as the original did."""
    result = run_guarded(ft_python, """
import json, racy
T = racy.Counter
kinds = {name: type(vars(T)[name]).__name__ for name in ("add", "make", "bump", "__call__", "count", "value")}
counter = T.make()
counter.add(); counter()
counter.value = 40
counter.value += 1
print(json.dumps({"kinds": kinds, "count": counter.count, "bump": T.bump(), "made": type(counter) is T,
                  "new": type(vars(T)["__new__"]).__name__, "frozen": type(vars(racy.Frozen)["__new__"]).__name__}))
""", mode="serialize", modules=racy_module, cache=cache, env={"PYTHON_GIL": "0"})
    assert result.returncode == 0, result.stderr
    assert result.data == {"kinds": {"add": "function", "make": "classmethod", "bump": "staticmethod",
                                     "__call__": "function", "count": "property", "value": "property"},
                           "count": 41, "bump": 2, "made": True,
                           "new": "builtin_function_or_method", "frozen": "builtin_function_or_method"}


@pytest.fixture(scope="session")
def cython_module(ft_python: str, ft_abi: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Modules:
    """``cyracy.pyx`` compiled with a pinned Cython for the free-threaded interpreter."""
    folder = tmp_path_factory.mktemp("cython-module")
    venv = make_venv(ft_python, folder / "venv")
    run([venv, "-m", "pip", "install", "-q", "--only-binary=:all:", "cython==3.1.4"])
    run([venv, "-m", "cython", "-3", "-o", folder / "cyracy.c", CYRACY])
    include = run([ft_python, "-c", "import sysconfig; print(sysconfig.get_path('include'))"]).stdout.strip()
    run(["gcc", "-shared", "-fPIC", "-O1", f"-I{include}", "-o", folder / f"cyracy{ft_abi[1]}", folder / "cyracy.c"])
    return Modules(folder, ft_abi[1])


def test_cython_functions_and_classes_are_locked(ft_python: str, cython_module: Modules, cache: Path) -> None:
    result = run_guarded(ft_python, """
import json, sys
import cyracy
P = cyracy.Plain
print(json.dumps({
    "add": [type(cyracy.add).__name__, type(cyracy.add.__wrapped__).__name__, cyracy.add(), cyracy.add()],
    "plain": {name: type(vars(P)[name]).__name__ for name in ("__new__", "method", "make", "helper")},
    "calls": [P().method(), type(P.make()).__name__, P.helper(), cyracy.Extension().method()],
    "static": type(vars(cyracy.Extension)["method"]).__name__, "gil": sys._is_gil_enabled()}))
""", mode="serialize", modules=cython_module, cache=cache, env={"PYTHON_GIL": "0"})
    assert result.returncode == 0, result.stderr
    assert result.data == {"add": ["function", "cython_function_or_method", 1, 2],
                           "plain": {"__new__": "staticmethod", "method": "function", "make": "classmethod", "helper": "staticmethod"},
                           "calls": [1, "Plain", 2, 3], "static": "cython_function_or_method", "gil": False}
    # The functions: add() and the unpickling helper Cython writes for the cdef class.
    assert result.stderr.strip().endswith("SerializeCoverageWarning: serialize: cyracy: 2 functions and 1 type "
                                          "locked; not covered: static type cyracy.Extension")
