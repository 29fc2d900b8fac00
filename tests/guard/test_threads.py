"""The guard under free threading: 16 threads released at once by a barrier import the same
module (through an explicit loader, which the import system's per-module locks do not
serialise) and different ones, on a cold cache. No double warning, no double decision, no
deadlock, no crash, and a cache file that is whole afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from guard_support import DECLARED, UNDECLARED, Modules, run_guarded

pytestmark = pytest.mark.freethreaded

THREADS = 16

SCRIPT = """
import importlib, importlib.machinery, importlib.util, json, marshal, sys, threading, traceback, warnings
from nogil_toolkit.guard import GilRequiredImportError

NAMES = {names!r}
FOLDER = {folder!r}
SUFFIX = {suffix!r}
warned, errors, refused, spawned = [], [], [], []
warnings.simplefilter("always")
warnings.showwarning = lambda message, category, *rest: warned.append([category.__name__, str(message).split()[0], str(message)])
sys.addaudithook(lambda event, args: spawned.append(marshal.loads(bytes.fromhex(args[1][-1]))["path"])
                 if event == "os.posix_spawn" else None)
barrier = threading.Barrier({threads})

def explicit(name):
    path = f"{{FOLDER}}/{{name}}{{SUFFIX}}"
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    return importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path, loader=loader))

def worker(index):
    barrier.wait()
    for load in (lambda: explicit("legacy_a"), lambda: importlib.import_module(NAMES[index % len(NAMES)]),
                 lambda: explicit("declared")):
        try:
            load()
        except GilRequiredImportError as exc:
            refused.append(exc.name)
        except BaseException:
            errors.append(traceback.format_exc())

threads = [threading.Thread(target=worker, args=(i,)) for i in range({threads})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(timeout=240)
print(json.dumps({{"alive": sum(t.is_alive() for t in threads), "errors": errors, "warned": warned,
                  "refused": refused, "spawned": spawned, "gil": sys._is_gil_enabled()}}))
"""


def _script(modules: Modules) -> str:
    return SCRIPT.format(names=list(DECLARED + UNDECLARED), folder=str(modules.folder), suffix=modules.suffix,
                         threads=THREADS)


def _whole_cache(cache: Path) -> dict:
    files = list(cache.glob("check-env-*.json"))
    assert len(files) == 1
    return json.loads(files[0].read_text())["files"]


def test_unsafe_nogil_threads_warn_once_per_module(ft_python: str, guard_modules: Modules, cache: Path) -> None:
    result = run_guarded(ft_python, _script(guard_modules), mode="unsafe-nogil", modules=guard_modules, cache=cache,
                         env={"PYTHON_GIL": "0"})
    assert result.returncode == 0, result.stderr
    data = result.data
    assert data["alive"] == 0 and data["errors"] == [] and data["refused"] == []
    assert sorted(name for category, name, _ in data["warned"]) == sorted(UNDECLARED)
    assert {category for category, _, _ in data["warned"]} == {"UndeclaredModuleWarning"}
    assert data["gil"] is False
    # One decision per file at most, whatever the number of threads asking at once.
    assert len(data["spawned"]) == len(set(data["spawned"]))
    assert set(data["spawned"]) <= {str(guard_modules.path(n)) for n in DECLARED + UNDECLARED}
    assert {str(guard_modules.path(n)) for n in DECLARED + UNDECLARED} <= set(_whole_cache(cache))


def test_nogil_threads_are_all_refused_and_declared_modules_load(ft_python: str, guard_modules: Modules,
                                                                 cache: Path) -> None:
    result = run_guarded(ft_python, _script(guard_modules), mode="nogil", modules=guard_modules, cache=cache)
    assert result.returncode == 0, result.stderr
    data = result.data
    assert data["alive"] == 0 and data["errors"] == [] and data["warned"] == []
    # Every thread was refused legacy_a, plus the undeclared module it imported by name (an
    # import that failed is tried again by the next thread importing that name).
    expected = ["legacy_a"] * THREADS + [n for i in range(THREADS)
                                         if (n := (DECLARED + UNDECLARED)[i % 9]) in UNDECLARED]
    assert sorted(data["refused"]) == sorted(expected)
    assert data["gil"] is False
    assert len(data["spawned"]) == len(set(data["spawned"]))


def test_serialize_threads_lock_each_module_once(ft_python: str, guard_modules: Modules, cache: Path) -> None:
    result = run_guarded(ft_python, _script(guard_modules) + """
import declared, legacy_a
print(json.dumps([type(declared.answer).__name__, type(legacy_a.answer).__name__, legacy_a.answer()]))
""", mode="serialize", modules=guard_modules, cache=cache, env={"PYTHON_GIL": "0"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.splitlines()[-2])
    assert data["alive"] == 0 and data["errors"] == [] and data["refused"] == []
    # One coverage line per undeclared module imported by name (the explicit loads only create
    # legacy_a, they never execute it); none for declared modules.
    assert sorted(message.split()[1].rstrip(":") for _, _, message in data["warned"]) == sorted(UNDECLARED)
    assert {category for category, _, _ in data["warned"]} == {"SerializeCoverageWarning"}
    assert data["gil"] is False
    assert result.data == ["builtin_function_or_method", "function", 42]
